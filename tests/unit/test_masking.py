"""Masking of log messages, from general knowledge of log formats (no data set's conventions):
each case is what a template should keep of a message the first time it is seen."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.templates import TemplateMiner, mask_token
from streams.templates.masking import COMPARISON, WILDCARD, FormCache, form_of, variables_of


def first(message: str) -> str:
    """The template a fresh miner gives ``message``."""
    return TemplateMiner().match(message).template


@pytest.mark.parametrize(("message", "template"), [
    # IPv4 and IPv6, with or without a port; host:port; host names and FQDNs
    ("connect to 10.1.2.3 failed", "connect to <*> failed"),
    ("connect to 10.1.2.3:5432 failed", "connect to <*> failed"),
    ("accepted from /192.168.0.7:41234", "accepted from <*>"),
    ("peer fe80::1ff:fe23:4567:890a up", "peer <*> up"),
    ("listening on [2001:db8::1]:443", "listening on [<*>]:<*>"),
    ("resolved db.internal.example.com", "resolved <*>"),
    ("proxy.example.edu.hk:5070 open through proxy", "<*> open through proxy"),
    ("upstream api.default.svc.cluster.local:8080 ready", "upstream <*> ready"),
    ("web-01.example.org GET /index.html", "<*> GET <*>"),
    # URLs and paths (Unix, relative, home, Windows)
    ("fetching https://example.com/a/b?x=1&y=2 now", "fetching <*> now"),
    ("opened /var/log/app/current.log", "opened <*>"),
    ("running ./scripts/run.sh", "running <*>"),
    ("config ~/.kube/config loaded", "config <*> loaded"),
    (r"Loaded C:\Windows\System32\cbscore.dll", "Loaded <*>"),
    ("pod kube-system/coredns-5d78c9869d-x2x7q ready", "pod <*> ready"),
    # UUIDs, hex ids and hashes, numbers
    ("request 123e4567-e89b-12d3-a456-426614174000 done", "request <*> done"),
    ("flags 0x7f3a set", "flags <*> set"),
    ("mask ffffffff applied", "mask <*> applied"),
    ("digest 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "digest <*>"),
    ("retry 3 of 10", "retry <*> of <*>"),
    ("balance -12.50 EUR", "balance <*> EUR"),
    # numbers with units, durations
    ("took 12ms", "took <*>"),
    ("took 1.5s to sync", "took <*> to sync"),
    ("heap 3.2GiB of 4GiB", "heap <*> of <*>"),
    ("disk 95% full", "disk <*> full"),
    ("took 12 ms", "took <*> ms"),
    ("lifetime <1 sec", "lifetime <*>"),
    ("lifetime 00:02", "lifetime <*>"),
    ("latency >=250 ms over", "latency <*> over"),
    ("elapsed 1h30m12s", "elapsed <*>"),
    # timestamps and dates inside messages: one variable however many words
    ("started at 2024-01-02T03:04:05.678Z", "started at <*>"),
    ("started at 2024-01-02 03:04:05,678 by cron", "started at <*> by cron"),
    ("connection at Sun Jul 24 02:38:23 2005", "connection at <*>"),
    ("last login Jan 5 10:00:00 from console", "last login <*> from console"),
    ("[02/Jan/2024:10:00:00 +0000] request", "[<*>] request"),
    # key=value, key:value, quoted strings
    ("session opened (uid=0)", "session opened (uid=<*>)"),
    ("ready=true,policy=3,mode=false", "ready=<*>,policy=<*>,mode=<*>"),
    ("Processed session termination for sessionid: 0x24f0557806a0010", "Processed session termination for sessionid: <*>"),
    ("got type:create and sessionid:0x14", "got type:create and sessionid:<*>"),
    ("enabled=null", "enabled=<*>"),
    ('acquire lock, tag="wake 17 lock", pid=2227', 'acquire lock, tag="<*>", pid=<*>'),
    ('"GET /api/v1/items/42 HTTP/1.1" 200', '"GET <*>" <*>'),
    # values in () [] {}
    ("interrupt (12) on cpu[3]", "interrupt (<*>) on cpu[<*>]"),
    ("AppWindowToken{9f4ef63 token=Token{a64f992}}", "AppWindowToken{<*> token=Token{<*>}}"),
    ("nodes [1,2,3] joined", "nodes [<*>] joined"),
    ("peers 10.0.0.1,10.0.0.2 up", "peers <*> up"),
    ("handler QuorumServer@6c7d1b6c", "handler QuorumServer@<*>"),
    # names with digits stay (they name code, not values)
    ("jk2_init() Found child 6725 in scoreboard slot 10", "jk2_init() Found child <*> in scoreboard slot <*>"),
    # punctuation glued to a value stays out of it
    ("listening on port 8080.", "listening on port <*>."),
    ("host www.example.com, retrying", "host <*>, retrying"),
    ("id 42: not found!", "id <*>: not found!"),
    # e-mail and MAC addresses, versions, booleans, literal wildcards
    ("mail from alice@example.com rejected", "mail from <*> rejected"),
    ("BSSID changed to 5c:50:15:36:bc:03", "BSSID changed to <*>"),
    ("Loaded Servicing Stack v6.1.7601.23505", "Loaded Servicing Stack <*>"),
    ("isOverlap:false, done", "isOverlap:<*>, done"),
    ("value <*> kept", "value <*> kept"),
    # words are not variables
    ("instruction cache parity error corrected", "instruction cache parity error corrected"),
    ("Starting mapred.task.id and org.apache.Foo", "Starting mapred.task.id and org.apache.Foo"),
])
def test_masking_of_common_log_values(message, template):
    assert first(message) == template


def test_parameters_are_the_values_with_their_words():
    m = TemplateMiner().match("connection from 1.2.3.4 (host-5.example.com) at Sun Jul 24 02:38:23 2005")
    assert m.template == "connection from <*> (<*>) at <*>"
    assert m.params == ["1.2.3.4", "host-5.example.com", "Sun Jul 24 02:38:23 2005"]
    m = TemplateMiner().match("lifetime <1 sec, session (uid=0)")
    assert m.params == ["<1 sec", "0"]
    m = TemplateMiner().match('127.0.0.1 - - [02/Jan/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200')
    assert m.params == ["127.0.0.1", "02/Jan/2024:10:00:00 +0000", "/a HTTP/1.1", "200"]


def test_mask_token_keeps_what_surrounds_the_value():
    assert mask_token("(HWID=1973)") == ("(HWID=<*>)", ["1973"])
    assert mask_token("blk_-6952295868487656571") == ("<*>", ["blk_-6952295868487656571"])
    assert mask_token('tag="View') == ('tag="View', [])
    assert mask_token("0042") == ("<*>", ["0042"])
    assert mask_token("terminating") == ("terminating", [])
    assert mask_token("Set(yarn,") == ("Set(yarn,", [])


tokens = st.text(alphabet=st.sampled_from(list("aZz09_-.:/=,;()[]{}<>\"'@#%+!? xfF")), min_size=1,
                 max_size=24).map(lambda s: s.replace(" ", ""))


@settings(max_examples=600)
@given(tokens)
def test_shortcuts_agree_with_the_rules(token):
    """form_of and the per-miner cache take shortcuts for common shapes (and reuse the form of
    a token with the same shape): they must give what mask_token gives."""
    if not token:
        return
    expected = mask_token(token)[0]
    assert form_of(token) in (expected, COMPARISON if expected == WILDCARD else expected)
    cache = FormCache()
    for t in (token, token.replace("1", "7"), token + "9"):
        got = cache[t]
        assert (WILDCARD if got == COMPARISON else got) == mask_token(t)[0], t


@settings(max_examples=400)
@given(tokens)
def test_variables_are_what_the_form_leaves_out(token):
    """Parameters are read from a token and its form alone (no second masking): the same
    variables mask_token finds."""
    if not token:
        return
    form, variables = mask_token(token)
    if form != WILDCARD:
        assert list(variables_of(form, token)) == variables
