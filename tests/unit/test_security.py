"""streams.ops.security: settings from args/env/files, client kwargs, secrets never shown; receivers
bound to loopback by default."""

from __future__ import annotations

import asyncio
import logging
import pickle
import ssl
from pathlib import Path

import faust
import pytest

from streams.ops.security import (
    MASK,
    ElasticsearchSecurity,
    KafkaSecurity,
    Secret,
    SecurityConfigError,
    read_secret,
)
from streams.sources.base import ListPublisher
from streams.sources.receivers import base as receivers_base
from streams.sources.receivers.fluentd import FluentdReceiver
from streams.sources.receivers.gelf import GelfReceiver
from streams.sources.receivers.syslog import SyslogReceiver

PW = "s3cr3t-Pa55"


def test_secret_is_masked_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    s = Secret(PW)
    assert s.reveal() == PW
    shown_all = (repr(s), str(s), f"{s}", f"{s!r}", "%s" % s, format(s, ">20"), repr([s]))  # noqa: UP031
    for shown in shown_all:
        assert PW not in shown
        assert MASK in shown
    assert Secret(PW) == s and Secret("other") != s and Secret(s).reveal() == PW
    with pytest.raises(TypeError):
        pickle.dumps(s)
    sec = KafkaSecurity(protocol="SASL_PLAINTEXT", mechanism="PLAIN", username="u", password=PW)
    es = ElasticsearchSecurity(username="elastic", password=PW)
    api = ElasticsearchSecurity(api_key=PW)
    with caplog.at_level(logging.DEBUG):
        log = logging.getLogger("test.security")
        log.info("kafka %s %r", sec, sec)
        log.info("es %s %r %s", es, api, sec.describe())
        log.info("secret %s", s)
        log.info("password=%r", sec.password)
    assert caplog.records
    assert PW not in caplog.text
    for obj in (sec, es, api):
        assert PW not in repr(obj) and PW not in str(obj) and PW not in str(obj.describe())


def test_kafka_from_env_and_explicit_args_win(tmp_path: Path) -> None:
    env = {
        "LOGRIVER_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
        "LOGRIVER_KAFKA_SASL_MECHANISM": "scram-sha-512",
        "LOGRIVER_KAFKA_USERNAME": "envuser",
        "LOGRIVER_KAFKA_PASSWORD": PW,
    }
    sec = KafkaSecurity.from_env(env)
    assert (sec.protocol, sec.mechanism, sec.username) == ("SASL_PLAINTEXT", "SCRAM-SHA-512", "envuser")
    kw = sec.aiokafka_kwargs()
    assert kw == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "envuser",
        "sasl_plain_password": PW,
    }
    explicit = KafkaSecurity.from_env(env, username="argsuser", mechanism="PLAIN")
    assert (explicit.username, explicit.mechanism) == ("argsuser", "PLAIN")
    creds = sec.faust_credentials()
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.mechanism.value == "SCRAM-SHA-512" and creds.protocol.value == "SASL_PLAINTEXT"
    assert KafkaSecurity.from_env({}).aiokafka_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert KafkaSecurity.from_env({}).faust_credentials() is None


def test_password_from_file_and_not_both(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text(PW + "\n")
    env = {"LOGRIVER_KAFKA_PASSWORD_FILE": str(f)}
    assert read_secret(env, "LOGRIVER_KAFKA_PASSWORD") == Secret(PW)
    with pytest.raises(SecurityConfigError, match="not both"):
        read_secret({**env, "LOGRIVER_KAFKA_PASSWORD": "x"}, "LOGRIVER_KAFKA_PASSWORD")
    with pytest.raises(SecurityConfigError, match="cannot read") as info:
        read_secret({"LOGRIVER_ES_API_KEY_FILE": str(tmp_path / "missing")}, "LOGRIVER_ES_API_KEY")
    assert PW not in str(info.value)
    assert read_secret({}, "LOGRIVER_KAFKA_PASSWORD") is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"protocol": "SASL_SSL"}, "needs a SASL mechanism"),
        ({"protocol": "SASL_PLAINTEXT", "mechanism": "GSSAPI"}, "needs a SASL mechanism"),
        ({"protocol": "SASL_PLAINTEXT", "mechanism": "PLAIN", "username": "u"}, "PASSWORD"),
        ({"protocol": "PLAINTEXT", "mechanism": "PLAIN"}, "needs protocol SASL"),
        ({"protocol": "TLS"}, "use one of"),
        ({"protocol": "PLAINTEXT", "ca_file": "/etc/hostname"}, "use SSL or SASL_SSL"),
        ({"protocol": "SSL", "ca_file": "/nonexistent/ca.pem"}, "no file"),
    ],
)
def test_kafka_rejects_inconsistent_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(SecurityConfigError, match=match):
        KafkaSecurity(**kwargs)


def test_kafka_tls_verifies_by_default(caplog: pytest.LogCaptureFixture) -> None:
    sec = KafkaSecurity.from_env({"LOGRIVER_KAFKA_SECURITY_PROTOCOL": "SSL"})
    ctx = sec.ssl_context()
    assert ctx is not None
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert sec.aiokafka_kwargs()["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert isinstance(sec.faust_credentials(), faust.SSLCredentials)
    off = KafkaSecurity.from_env(
        {"LOGRIVER_KAFKA_SECURITY_PROTOCOL": "SSL", "LOGRIVER_KAFKA_VERIFY": "false"}
    )
    with caplog.at_level(logging.WARNING):
        assert off.ssl_context().verify_mode == ssl.CERT_NONE  # type: ignore[union-attr]
    assert "verification is OFF" in caplog.text
    sasl_ssl = KafkaSecurity(protocol="SASL_SSL", mechanism="SCRAM-SHA-256", username="u", password=PW)
    kw = sasl_ssl.aiokafka_kwargs()
    assert kw["security_protocol"] == "SASL_SSL" and kw["ssl_context"].check_hostname
    assert sasl_ssl.faust_credentials().protocol.value == "SASL_SSL"
    with pytest.raises(SecurityConfigError, match="true or false"):
        KafkaSecurity.from_env({"LOGRIVER_KAFKA_VERIFY": "maybe"})


def test_elasticsearch_kwargs(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("aWQ6a2V5\n")
    api = ElasticsearchSecurity.from_env({"LOGRIVER_ES_API_KEY_FILE": str(key_file)})
    assert api.elasticsearch_kwargs("https://es:9200") == {"api_key": "aWQ6a2V5", "verify_certs": True}
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    basic = ElasticsearchSecurity.from_env(
        {
            "LOGRIVER_ES_USERNAME": "elastic",
            "LOGRIVER_ES_PASSWORD": PW,
            "LOGRIVER_ES_CA_FILE": str(ca),
        }
    )
    assert basic.elasticsearch_kwargs("https://es:9200") == {
        "basic_auth": ("elastic", PW),
        "verify_certs": True,
        "ca_certs": str(ca),
    }
    assert basic.elasticsearch_kwargs("http://127.0.0.1:9200") == {"basic_auth": ("elastic", PW)}
    off = ElasticsearchSecurity.from_env({"LOGRIVER_ES_VERIFY": "false"})
    assert off.elasticsearch_kwargs("https://es")["verify_certs"] is False
    assert ElasticsearchSecurity.from_env({}).elasticsearch_kwargs() == {"verify_certs": True}
    # explicit credentials replace the environment's
    env = {"LOGRIVER_ES_USERNAME": "elastic", "LOGRIVER_ES_PASSWORD": PW}
    assert ElasticsearchSecurity.from_env(env, api_key="k").elasticsearch_kwargs("http://x") == {
        "api_key": "k"
    }
    with pytest.raises(SecurityConfigError, match="not both"):
        ElasticsearchSecurity(api_key="k", username="u", password="p")
    with pytest.raises(SecurityConfigError, match="both"):
        ElasticsearchSecurity.from_env({"LOGRIVER_ES_USERNAME": "elastic"})


def test_elasticsearch_kwargs_build_a_client() -> None:
    from elasticsearch import AsyncElasticsearch

    sec = ElasticsearchSecurity(username="elastic", password=PW)
    client = AsyncElasticsearch("https://127.0.0.1:9200", **sec.elasticsearch_kwargs("https://x"))
    assert PW not in repr(client)
    asyncio.run(client.close())


# ------------------------------------------------------------------------ receivers bind


def test_receivers_bind_loopback_by_default() -> None:
    assert receivers_base.DEFAULT_HOST == "127.0.0.1"

    async def bound() -> list[str]:
        pub = ListPublisher()
        hosts: list[str] = []
        for rec in (SyslogReceiver(pub), GelfReceiver(pub), FluentdReceiver(pub)):
            async with rec:
                assert rec.host == "127.0.0.1"
                for server in rec._servers:
                    hosts += [s.getsockname()[0] for s in server.sockets]
                for transport in rec._transports:
                    hosts.append(transport.get_extra_info("sockname")[0])
        return hosts

    hosts = asyncio.run(bound())
    assert hosts and set(hosts) == {"127.0.0.1"}


def test_collect_cli_listens_on_loopback_by_default() -> None:
    from streams.cli import collect

    text = Path(collect.__file__).read_text()
    assert '"--listen", default="127.0.0.1"' in text
