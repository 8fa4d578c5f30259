"""AWS Signature Version 4, verified on the receiving side (the CloudWatch-compatible receiver).

``verify(request parts, credentials, service)`` rebuilds the canonical request exactly as the
AWS SDKs sign it (method, URI-encoded path, sorted query, the signed headers lower-cased with
their values trimmed and inner spaces folded, the SHA-256 of the body), derives the signing key
from the secret of the access key named in the ``Credential`` scope, and compares signatures in
constant time. It raises ``SigV4Error`` carrying the error AWS answers: ``MissingAuthentication
TokenException`` (no ``Authorization``), ``IncompleteSignatureException`` (malformed),
``UnrecognizedClientException`` (unknown access key or session token),
``InvalidSignatureException`` (wrong signature, or ``X-Amz-Date`` more than 5 minutes from
now: "Signature expired"). Only the ``Authorization`` header form is taken (no presigned
query strings). The returned ``Scope`` names the access key, date, region and service.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from streams.ops.security import Secret

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=5)
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^/\s,]+)/(\d{8})/([^/\s,]+)/([^/\s,]+)/aws4_request\s*,"
    r"\s*SignedHeaders=([a-z0-9;._-]+)\s*,\s*Signature=([0-9a-f]{64})\s*$"
)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class AwsCredential:
    """An access key the receiver accepts (``session_token`` for temporary credentials)."""

    access_key_id: str
    secret_access_key: Secret
    session_token: Secret | None = None


@dataclass(frozen=True)
class Scope:
    access_key_id: str
    date: str
    region: str
    service: str


class SigV4Error(Exception):
    """A refused signature: ``type`` is AWS's error code (``__type``), ``status`` the HTTP status."""

    def __init__(self, type_: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.type, self.message, self.status = type_, message, status


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    return _hmac(_hmac(_hmac(key, region), service), "aws4_request")


def _uri_encode(value: str, slash: bool) -> str:
    return quote(value, safe="-_.~" + ("/" if slash else ""))


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str],
                      signed: list[str], payload_hash: str) -> str:
    """The canonical request of SigV4 (path segments encoded once, as non-S3 services do)."""
    segments = [_uri_encode(unquote(s), False) for s in (path or "/").split("/")]
    canonical_path = "/".join(segments) or "/"
    pairs = []
    for part in query.split("&") if query else []:
        k, _, v = part.partition("=")
        pairs.append((_uri_encode(unquote(k), False), _uri_encode(unquote(v), False)))
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    lower = {k.lower(): v for k, v in headers.items()}
    canonical_headers = "".join(
        f"{h}:{_SPACES.sub(' ', lower.get(h, '').strip())}\n" for h in signed)
    return "\n".join([method.upper(), canonical_path, canonical_query, canonical_headers,
                      ";".join(signed), payload_hash])


def sign(secret: str, scope: Scope, amz_date: str, creq: str) -> str:
    string_to_sign = "\n".join([
        ALGORITHM, amz_date,
        f"{scope.date}/{scope.region}/{scope.service}/aws4_request",
        hashlib.sha256(creq.encode("utf-8")).hexdigest(),
    ])
    key = signing_key(secret, scope.date, scope.region, scope.service)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def verify(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes,
           credentials: Mapping[str, AwsCredential], service: str,
           now: datetime | None = None) -> Scope:
    """Check a request's SigV4 ``Authorization`` header; returns its scope or raises."""
    auth = headers.get("Authorization") or headers.get("authorization")
    if not auth:
        raise SigV4Error("MissingAuthenticationTokenException", "Missing Authentication Token", 400)
    m = _AUTH_RE.match(auth.strip())
    if m is None:
        raise SigV4Error("IncompleteSignatureException",
                         "Authorization header requires 'Credential', 'Signature' and "
                         "'SignedHeaders' of an AWS4-HMAC-SHA256 signature.", 400)
    key_id, date, region, svc, signed_headers, signature = m.groups()
    signed = signed_headers.split(";")
    amz_date = headers.get("X-Amz-Date") or headers.get("x-amz-date") or ""
    if "host" not in signed or "x-amz-date" not in signed or not amz_date.startswith(date):
        raise SigV4Error("IncompleteSignatureException",
                         "The signature must cover the host and x-amz-date headers of the "
                         "request's date.", 400)
    if svc != service:
        raise SigV4Error("InvalidSignatureException",
                         f"Credential should be scoped to correct service: '{service}'.")
    cred = credentials.get(key_id)
    if cred is None:
        raise SigV4Error("UnrecognizedClientException",
                         "The security token included in the request is invalid.")
    try:
        when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SigV4Error("IncompleteSignatureException", "X-Amz-Date is not a date.", 400) from None
    current = now or datetime.now(UTC)
    if abs(current - when) > MAX_SKEW:
        raise SigV4Error("InvalidSignatureException",
                         f"Signature expired: {amz_date} is now earlier or later than "
                         f"{current:%Y%m%dT%H%M%SZ} +/- 5 min.")
    payload_hash = hashlib.sha256(body).hexdigest()
    scope = Scope(key_id, date, region, svc)
    creq = canonical_request(method, path, query, headers, signed, payload_hash)
    expected = sign(cred.secret_access_key.reveal(), scope, amz_date, creq)
    if not hmac.compare_digest(expected, signature):
        raise SigV4Error("InvalidSignatureException",
                         "The request signature we calculated does not match the signature "
                         "you provided. Check your AWS Secret Access Key and signing method.")
    token = headers.get("X-Amz-Security-Token") or headers.get("x-amz-security-token")
    want = cred.session_token.reveal() if cred.session_token else None
    if (token or want) and not (token and want and hmac.compare_digest(token, want)):
        raise SigV4Error("UnrecognizedClientException",
                         "The security token included in the request is invalid.")
    return scope
