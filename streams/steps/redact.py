"""Redaction of personal data and secrets, a pipeline step that runs before anything is indexed.

Kinds (``KINDS``): ``email`` addresses, ``card`` numbers (13-19 digits, spaces or dashes
allowed, kept unless the Luhn checksum holds), ``bearer`` tokens, ``cloud_key`` (AWS access key
ids and ``aws_secret_access_key=...`` values, Google API keys and OAuth access tokens) and
``url_password`` (the password of ``scheme://user:pass@host``; the user is kept). Each match is
replaced by ``[REDACTED:<kind>]``.

Applied to ``message``, ``event.original``, ``log.template`` and ``log.template_params`` (the
template miner runs before the steps and would otherwise index the values it extracted), and to
every string under ``attributes``. Counts per kind land in ``logriver.redactions``.

Enable it in a pipeline module: ``Pipeline(..., steps=[redaction_step()])``. Steps run in order,
so put it first to keep the secrets away from later steps too.

Cost: one cheap pre-check per string (a few substring tests and one short regex) before any
kind's pattern runs; lines without ``@``, ``://``, a digit run or a key prefix pay only that.
Every pattern has bounded repetitions, so none backtracks catastrophically.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from streams.pipeline import Event, Step

KINDS = ("url_password", "bearer", "cloud_key", "email", "card")
MAX_DEPTH = 16  # attributes nested deeper are left as they are (and flagged)


def mask(kind: str) -> str:
    return f"[REDACTED:{kind}]"


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_DIGIT_RUN = re.compile(r"\d{4}")

_URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s:/?#@\[\]]{1,256}):([^\s/?#@]{1,256})@"
)
_BEARER = re.compile(r"(?<![A-Za-z])([Bb]earer|BEARER)(\s{1,8})([A-Za-z0-9._~+/=-]{8,8192})")
_CLOUD = re.compile(
    r"(?<![A-Za-z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}(?![A-Za-z0-9])"
    r"|(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])"
    r"|(?<![A-Za-z0-9])ya29\.[0-9A-Za-z_-]{20,2048}"
)
_AWS_SECRET = re.compile(
    r"((?i:aws_?secret_?access_?key|secret_?access_?key)[\"']?\s{0,4}[:=]\s{0,4}[\"']?)"
    r"([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
)
_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})"
    r"(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
# A whole run of 13-19 digits (single spaces or dashes between them) starting like a card
# number does (2-6: Mastercard 2-series, Amex/JCB/Diners, Visa, Mastercard/Maestro, Discover/
# UnionPay), so 13-digit epoch milliseconds and similar ids are never candidates.
_CARD = re.compile(r"(?<![\w.])(?<!\d[ -])[2-6](?:[ -]?\d){12,18}(?!\w)(?![ -]\d)")


class Redactor:
    """Redacts strings and events; ``kinds`` selects what is redacted (default: all)."""

    def __init__(self, kinds: Iterable[str] = KINDS) -> None:
        self.kinds = tuple(k for k in KINDS if k in set(kinds))
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown redaction kinds {sorted(unknown)}: use {', '.join(KINDS)}")

    def text(self, s: str, counts: Counter[str] | None = None) -> str:
        """``s`` with every enabled kind masked; counts added to ``counts``."""
        if counts is None:
            counts = Counter()
        # The pre-check: substring tests are C-speed; most lines stop here.
        has_at = "@" in s
        has_url = has_at and "://" in s
        has_bearer = "earer" in s or "EARER" in s
        has_key = "AKIA" in s or "ASIA" in s or "AIza" in s or "ya29." in s or "A3T" in s or (
            "ecret" in s or "ECRET" in s
        )
        has_digits = _DIGIT_RUN.search(s) is not None
        if not (has_at or has_bearer or has_key or has_digits):
            return s
        kinds = self.kinds
        if has_url and "url_password" in kinds:
            s = _sub(_URL_PASSWORD, s, counts, "url_password", lambda m: f"{m[1]}:{mask('url_password')}@")
        if has_bearer and "bearer" in kinds:
            s = _sub(_BEARER, s, counts, "bearer", lambda m: f"{m[1]}{m[2]}{mask('bearer')}")
        if has_key and "cloud_key" in kinds:
            s = _sub(_CLOUD, s, counts, "cloud_key", lambda m: mask("cloud_key"))
            s = _sub(_AWS_SECRET, s, counts, "cloud_key", lambda m: f"{m[1]}{mask('cloud_key')}")
        if has_at and "email" in kinds:
            s = _sub(_EMAIL, s, counts, "email", lambda m: mask("email"))
        if has_digits and "card" in kinds:
            s = _sub_card(s, counts)
        return s

    def __call__(self, event: Event) -> Event:
        counts: Counter[str] = Counter()
        msg = event.get("message")
        if isinstance(msg, str):
            event["message"] = self.text(msg, counts)
        ev = event.get("event")
        if isinstance(ev, dict) and isinstance(ev.get("original"), str):
            ev["original"] = self.text(ev["original"], counts)
        log = event.get("log")
        if isinstance(log, dict):
            if isinstance(log.get("template"), str):
                log["template"] = self.text(log["template"], counts)
            params = log.get("template_params")
            if isinstance(params, list):
                log["template_params"] = [
                    self.text(p, counts) if isinstance(p, str) else p for p in params
                ]
        attrs = event.get("attributes")
        if isinstance(attrs, (dict, list)) and self._walk(attrs, counts, 0):
            flags = event.setdefault("logriver", {}).setdefault("flags", [])
            if "redaction_depth" not in flags:
                flags.append("redaction_depth")
        if counts:
            lr = event.setdefault("logriver", {})
            prev = lr.get("redactions") or {}
            for kind, n in counts.items():
                prev[kind] = prev.get(kind, 0) + n
            lr["redactions"] = prev
        return event

    def _walk(self, node: Any, counts: Counter[str], depth: int) -> bool:
        """Redact strings in place; True when something was too deep to visit."""
        if depth > MAX_DEPTH:
            return True
        too_deep = False
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            if isinstance(value, str):
                node[key] = self.text(value, counts)
            elif isinstance(value, (dict, list)):
                too_deep |= self._walk(value, counts, depth + 1)
        return too_deep


def _sub(
    pattern: re.Pattern[str], s: str, counts: Counter[str], kind: str,
    repl: Callable[[re.Match[str]], str],
) -> str:
    n = 0

    def one(m: re.Match[str]) -> str:
        nonlocal n
        n += 1
        return repl(m)

    out = pattern.sub(one, s)
    if n:
        counts[kind] += n
    return out


def _sub_card(s: str, counts: Counter[str]) -> str:
    n = 0

    def one(m: re.Match[str]) -> str:
        nonlocal n
        run = m[0]
        digits = run.replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            n += 1
            return mask("card")
        return run

    out = _CARD.sub(one, s)
    if n:
        counts["card"] += n
    return out


def redaction_step(kinds: Iterable[str] = KINDS, id: str = "redact") -> Step:
    """The pipeline step (``Pipeline(steps=[redaction_step()])``)."""
    return Step(id, Redactor(kinds))
