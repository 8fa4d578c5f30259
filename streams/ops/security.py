"""Credentials and TLS for Kafka and Elasticsearch, from explicit arguments or the environment.

Secrets come from explicit arguments, environment variables or files named by ``*_FILE``
variables (what Kubernetes secrets mount), never from flags printed in process listings, and
are held in ``Secret`` so a repr, an f-string or a log line shows ``**********``. TLS
verification is on unless turned off explicitly (and then a warning is logged).

Kafka (``KafkaSecurity.from_env``):

- ``LOGRIVER_KAFKA_SECURITY_PROTOCOL``  PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL
- ``LOGRIVER_KAFKA_SASL_MECHANISM``     PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* only)
- ``LOGRIVER_KAFKA_USERNAME``           SASL user name
- ``LOGRIVER_KAFKA_PASSWORD``           SASL password (or ``LOGRIVER_KAFKA_PASSWORD_FILE``)
- ``LOGRIVER_KAFKA_CA_FILE``            PEM bundle of the CAs to trust (default: system CAs)
- ``LOGRIVER_KAFKA_CERT_FILE``          client certificate (PEM) for mutual TLS
- ``LOGRIVER_KAFKA_KEY_FILE``           its private key (PEM; default: inside the cert file)
- ``LOGRIVER_KAFKA_KEY_PASSWORD``       the key's passphrase (or ``..._KEY_PASSWORD_FILE``)
- ``LOGRIVER_KAFKA_VERIFY``             ``true`` (default) / ``false``: verify the broker

Elasticsearch (``ElasticsearchSecurity.from_env``):

- ``LOGRIVER_ES_API_KEY``     API key, base64 ``id:key`` (or ``LOGRIVER_ES_API_KEY_FILE``)
- ``LOGRIVER_ES_USERNAME``    basic-auth user (when there is no API key)
- ``LOGRIVER_ES_PASSWORD``    basic-auth password (or ``LOGRIVER_ES_PASSWORD_FILE``)
- ``LOGRIVER_ES_CA_FILE``     PEM bundle of the CAs to trust
- ``LOGRIVER_ES_VERIFY``      ``true`` (default) / ``false``: verify the server certificate

Explicit keyword arguments win over the environment. ``aiokafka_kwargs()``, ``faust_credentials()``
and ``elasticsearch_kwargs()`` hold the secrets in clear (the clients need them): pass them to
the client, never log them; log ``describe()`` instead.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MASK = "**********"
KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class SecurityConfigError(ValueError):
    """Security settings that cannot work together (one-line reason naming the variable)."""


class KafkaLoginError(ConnectionError):
    """Kafka refused the credentials (as opposed to being unreachable)."""


class Secret:
    """A secret string that never shows itself: ``repr``/``str``/``format`` print a mask;
    ``reveal()`` returns the value for the client that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:  # pickling would write the value to disk or a queue
        raise TypeError("a Secret cannot be pickled")


# ------------------------------------------------------------------- environment helpers


def _env_str(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value else None


def read_secret(env: Mapping[str, str], name: str) -> Secret | None:
    """``$NAME`` or the content of the file ``$NAME_FILE`` (trailing newline dropped); both
    set is an error, so a stale variable cannot silently win."""
    value = _env_str(env, name)
    path = _env_str(env, f"{name}_FILE")
    if value is not None and path is not None:
        raise SecurityConfigError(f"set {name} or {name}_FILE, not both")
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SecurityConfigError(
                f"{name}_FILE={path}: cannot read ({exc.strerror or type(exc).__name__})"
            ) from None
        return Secret(text.rstrip("\r\n"))
    return Secret(value) if value is not None else None


def _env_bool(env: Mapping[str, str], name: str, default: bool = True) -> bool:
    raw = _env_str(env, name)
    if raw is None:
        return default
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise SecurityConfigError(f"{name}={raw!r}: use true or false")


def _secret(value: str | Secret | None) -> Secret | None:
    return None if value is None else Secret(value)


def _check_file(name: str, path: str | None) -> None:
    if path is not None and not Path(path).is_file():
        raise SecurityConfigError(f"{name}: no file at {path}")


def _pick(explicit: Any, from_env: Any) -> Any:
    return explicit if explicit is not None else from_env


def _describe(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = MASK if isinstance(value, Secret) else value
    return out


# ------------------------------------------------------------------------------- Kafka


@dataclass(frozen=True)
class KafkaSecurity:
    """How clients authenticate to Kafka and verify it. ``repr`` masks the secrets."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: Secret | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    key_password: Secret | None = None
    verify: bool = True

    def __post_init__(self) -> None:
        protocol = self.protocol.upper()
        object.__setattr__(self, "protocol", protocol)
        if protocol not in KAFKA_PROTOCOLS:
            raise SecurityConfigError(
                f"Kafka security protocol {self.protocol!r}: use one of {', '.join(KAFKA_PROTOCOLS)}"
            )
        for name in ("password", "key_password"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Secret):
                object.__setattr__(self, name, Secret(value))
        if self.sasl:
            mechanism = (self.mechanism or "").upper()
            if mechanism not in SASL_MECHANISMS:
                raise SecurityConfigError(
                    f"{protocol} needs a SASL mechanism (LOGRIVER_KAFKA_SASL_MECHANISM): one of "
                    f"{', '.join(SASL_MECHANISMS)}, not {self.mechanism!r}"
                )
            object.__setattr__(self, "mechanism", mechanism)
            if not self.username or not self.password:
                raise SecurityConfigError(
                    f"{protocol} with {mechanism} needs LOGRIVER_KAFKA_USERNAME and "
                    "LOGRIVER_KAFKA_PASSWORD (or LOGRIVER_KAFKA_PASSWORD_FILE)"
                )
        elif self.mechanism:
            raise SecurityConfigError(
                f"a SASL mechanism ({self.mechanism}) needs protocol SASL_PLAINTEXT or SASL_SSL, "
                f"not {protocol}"
            )
        if not self.tls and (self.ca_file or self.cert_file or self.key_file):
            raise SecurityConfigError(
                f"TLS files are set but the Kafka protocol is {protocol}: use SSL or SASL_SSL"
            )
        _check_file("LOGRIVER_KAFKA_CA_FILE", self.ca_file)
        _check_file("LOGRIVER_KAFKA_CERT_FILE", self.cert_file)
        _check_file("LOGRIVER_KAFKA_KEY_FILE", self.key_file)
        if self.key_file and not self.cert_file:
            raise SecurityConfigError("LOGRIVER_KAFKA_KEY_FILE needs LOGRIVER_KAFKA_CERT_FILE")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        protocol: str | None = None,
        mechanism: str | None = None,
        username: str | None = None,
        password: str | Secret | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        key_password: str | Secret | None = None,
        verify: bool | None = None,
    ) -> KafkaSecurity:
        """Settings from the keyword arguments, then the ``LOGRIVER_KAFKA_*`` variables."""
        e = os.environ if env is None else env
        secret_pw = _secret(password) if password is not None else read_secret(e, "LOGRIVER_KAFKA_PASSWORD")
        secret_kp = (
            _secret(key_password)
            if key_password is not None
            else read_secret(e, "LOGRIVER_KAFKA_KEY_PASSWORD")
        )
        return cls(
            protocol=_pick(protocol, _env_str(e, "LOGRIVER_KAFKA_SECURITY_PROTOCOL")) or "PLAINTEXT",
            mechanism=_pick(mechanism, _env_str(e, "LOGRIVER_KAFKA_SASL_MECHANISM")),
            username=_pick(username, _env_str(e, "LOGRIVER_KAFKA_USERNAME")),
            password=secret_pw,
            ca_file=_pick(ca_file, _env_str(e, "LOGRIVER_KAFKA_CA_FILE")),
            cert_file=_pick(cert_file, _env_str(e, "LOGRIVER_KAFKA_CERT_FILE")),
            key_file=_pick(key_file, _env_str(e, "LOGRIVER_KAFKA_KEY_FILE")),
            key_password=secret_kp,
            verify=_pick(verify, _env_bool(e, "LOGRIVER_KAFKA_VERIFY")),
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context (None for PLAINTEXT / SASL_PLAINTEXT)."""
        if not self.tls:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        if self.cert_file:
            ctx.load_cert_chain(
                self.cert_file,
                self.key_file,
                password=self.key_password.reveal() if self.key_password else None,
            )
        if not self.verify:
            log.warning("kafka: TLS certificate verification is OFF (LOGRIVER_KAFKA_VERIFY=false)")
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient
        (secrets in clear: do not log)."""
        kw: dict[str, Any] = {"security_protocol": self.protocol}
        ctx = self.ssl_context()
        if ctx is not None:
            kw["ssl_context"] = ctx
        if self.sasl:
            assert self.password is not None
            kw["sasl_mechanism"] = self.mechanism
            kw["sasl_plain_username"] = self.username
            kw["sasl_plain_password"] = self.password.reveal()
        return kw

    def faust_credentials(self) -> Any:
        """``broker_credentials`` for ``faust.App`` (None for PLAINTEXT)."""
        import faust

        ctx = self.ssl_context()
        if self.sasl:
            assert self.password is not None
            return faust.SASLCredentials(
                username=self.username,
                password=self.password.reveal(),
                mechanism=self.mechanism,
                ssl_context=ctx,
            )
        if ctx is not None:
            return faust.SSLCredentials(ctx)
        return None

    def describe(self) -> dict[str, Any]:
        """The settings with secrets masked (safe to log)."""
        return _describe(self)


async def check_kafka_login(bootstrap: str, security: KafkaSecurity, timeout: float = 10.0) -> None:
    """Open one connection to the first reachable bootstrap server and authenticate.

    aiokafka reports a refused login only as "Unable to bootstrap"; this raises
    ``KafkaLoginError`` naming the user and mechanism when the broker rejected the credentials,
    and ``ConnectionError`` when no server could be reached. Call it at start-up."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import KafkaError, SaslAuthenticationFailed

    last: Exception | None = None
    for server in [b.strip() for b in bootstrap.split(",") if b.strip()]:
        host, _, port = server.rpartition(":")
        try:
            conn = await create_conn(
                host.strip("[]"), int(port), request_timeout_ms=int(timeout * 1000),
                client_id="logriver-login-check", **security.aiokafka_kwargs(),
            )
        except SaslAuthenticationFailed as exc:
            raise KafkaLoginError(
                f"kafka at {server} rejected the {security.mechanism} login of user "
                f"{security.username!r}: {exc.args[0] if exc.args else exc}"
            ) from None
        except (KafkaError, OSError, TimeoutError) as exc:
            last = exc
            continue
        conn.close()
        return
    raise ConnectionError(f"kafka at {bootstrap} is unreachable: {last}")


# ----------------------------------------------------------------------- Elasticsearch


@dataclass(frozen=True)
class ElasticsearchSecurity:
    """API key or basic auth, CA bundle, verification (on by default)."""

    api_key: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    ca_file: str | None = None
    verify: bool = True

    def __post_init__(self) -> None:
        for name in ("api_key", "password"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Secret):
                object.__setattr__(self, name, Secret(value))
        if self.api_key and (self.username or self.password):
            raise SecurityConfigError(
                "set LOGRIVER_ES_API_KEY or LOGRIVER_ES_USERNAME/LOGRIVER_ES_PASSWORD, not both"
            )
        if bool(self.username) != bool(self.password):
            raise SecurityConfigError(
                "basic auth needs both LOGRIVER_ES_USERNAME and LOGRIVER_ES_PASSWORD"
            )
        _check_file("LOGRIVER_ES_CA_FILE", self.ca_file)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        api_key: str | Secret | None = None,
        username: str | None = None,
        password: str | Secret | None = None,
        ca_file: str | None = None,
        verify: bool | None = None,
    ) -> ElasticsearchSecurity:
        e = os.environ if env is None else env
        explicit_auth = api_key is not None or username is not None or password is not None
        if explicit_auth:  # explicit credentials replace the environment's as a whole
            key, user, pw = _secret(api_key), username, _secret(password)
        else:
            key = read_secret(e, "LOGRIVER_ES_API_KEY")
            user = _env_str(e, "LOGRIVER_ES_USERNAME")
            pw = read_secret(e, "LOGRIVER_ES_PASSWORD")
        return cls(
            api_key=key,
            username=user,
            password=pw,
            ca_file=_pick(ca_file, _env_str(e, "LOGRIVER_ES_CA_FILE")),
            verify=_pick(verify, _env_bool(e, "LOGRIVER_ES_VERIFY")),
        )

    def elasticsearch_kwargs(self, url: str | None = None) -> dict[str, Any]:
        """Keyword arguments for ``AsyncElasticsearch`` / ``Elasticsearch`` (secrets in clear:
        do not log). TLS options are only given for https URLs (or when ``url`` is None)."""
        kw: dict[str, Any] = {}
        if self.api_key:
            kw["api_key"] = self.api_key.reveal()
        elif self.username and self.password:
            kw["basic_auth"] = (self.username, self.password.reveal())
        if url is None or url.lower().startswith("https:"):
            kw["verify_certs"] = self.verify
            if self.ca_file:
                kw["ca_certs"] = self.ca_file
            if not self.verify:
                log.warning("elasticsearch: TLS verification is OFF (LOGRIVER_ES_VERIFY=false)")
                kw["ssl_show_warn"] = False
        elif self.api_key or self.username:
            log.warning("elasticsearch: credentials are sent over plain http to %s", url)
        return kw

    def describe(self) -> dict[str, Any]:
        return _describe(self)
