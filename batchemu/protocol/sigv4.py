"""AWS Signature Version 4 checked on the server side: the Authorization header or a presigned query string.

`verify` recomputes the signature of a request from its method, raw path, query, headers and body with
one of the configured secrets, and raises AuthError with the code and message AWS gives when it refuses
a request (MissingAuthenticationToken, UnrecognizedClient, IncompleteSignature, InvalidSignature).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Protocol
from urllib.parse import quote, unquote

from botocore.utils import normalize_url_path

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=5)  # AWS refuses a request signed further from its clock than this
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
AMZ_DATE = "%Y%m%dT%H%M%SZ"
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."


class Headers(Protocol):
    """What `verify` reads of a request's headers, looked up case-insensitively by name (werkzeug's
    Headers is one, though not a Mapping: it iterates over (name, value) pairs)."""

    def get(self, key: str, /) -> str | None: ...

    def __getitem__(self, key: str, /) -> str: ...


class AuthError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def verify(
    *,
    method: str,
    raw_path: str,
    query: list[tuple[str, str]],
    headers: Headers,
    body: Callable[[], bytes],
    services: tuple[str, ...],
    credentials: Mapping[str, str],
    now: datetime,
) -> str:
    """The access key that signed the request; AuthError when none of `credentials` did.

    `query` is the raw (still percent-encoded) key/value pairs; `headers` is case-insensitive; `body` is read
    only once the key and date are known good."""
    params = {unquote(k): unquote(v) for k, v in query}
    if headers.get("Authorization"):
        auth = _from_header(headers["Authorization"])
        date_text, date_source = (headers.get("X-Amz-Date"), "x-amz-date")
        if not date_text:
            date_text, date_source = headers.get("Date"), "date"
        expires = None
    elif "X-Amz-Signature" in params or "X-Amz-Credential" in params:
        auth = _from_query(params)
        date_text, date_source = params.get("X-Amz-Date"), "X-Amz-Date"
        expires = params.get("X-Amz-Expires")
        query = [(k, v) for k, v in query if unquote(k) != "X-Amz-Signature"]
    else:
        raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token")
    access_key, scope_date, region, service, terminator = auth["scope"]
    secret = credentials.get(access_key)
    if secret is None:
        raise AuthError("UnrecognizedClientException", INVALID_TOKEN)
    if terminator != "aws4_request":
        raise AuthError(
            "InvalidSignatureException",
            f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'.",
        )
    if service not in services:
        raise AuthError(
            "InvalidSignatureException", f"Credential should be scoped to correct service: '{services[0]}'. "
        )
    signed_at = _signing_date(date_text, date_source)
    if scope_date != signed_at.strftime("%Y%m%d"):
        raise AuthError(
            "InvalidSignatureException",
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{scope_date}' != '{signed_at:%Y%m%d}', from '{date_source}'.",
        )
    _check_time(signed_at, expires, now)
    if "host" not in auth["signed_headers"]:
        raise AuthError(
            "IncompleteSignatureException",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        )
    canonical = "\n".join(
        [
            method.upper(),
            quote(normalize_url_path(raw_path), safe="/~"),
            _canonical_query(query),
            "".join(
                f"{name}:{' '.join((headers.get(name) or '').split())}\n" for name in auth["signed_headers"]
            ),
            ";".join(auth["signed_headers"]),
            hashlib.sha256(body()).hexdigest(),
        ]
    )
    scope = "/".join(auth["scope"][1:])
    string_to_sign = "\n".join(
        [ALGORITHM, signed_at.strftime(AMZ_DATE), scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret}".encode()
    for part in (scope_date, region, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, auth["signature"]):
        raise AuthError("InvalidSignatureException", BAD_SIGNATURE)
    return access_key


def _from_header(value: str) -> dict:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthError(
            "IncompleteSignatureException",
            f"Authorization header requires the {ALGORITHM} algorithm. Authorization={value[:60]}",
        )
    fields = {}
    for part in rest.split(","):
        name, _, text = part.strip().partition("=")
        fields[name] = text
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
    if missing:
        raise AuthError(
            "IncompleteSignatureException",
            " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
            + f" Authorization={value[:60]}",
        )
    return _parsed(fields["Credential"], fields["SignedHeaders"], fields["Signature"])


def _from_query(params: dict[str, str]) -> dict:
    missing = [
        name
        for name in (
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        )
        if not params.get(name)
    ]
    if missing:
        raise AuthError(
            "IncompleteSignatureException",
            " ".join(f"AWS query-string parameters must include '{name}'." for name in missing),
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise AuthError("IncompleteSignatureException", f"X-Amz-Algorithm must be {ALGORITHM}.")
    return _parsed(params["X-Amz-Credential"], params["X-Amz-SignedHeaders"], params["X-Amz-Signature"])


def _parsed(credential: str, signed_headers: str, signature: str) -> dict:
    scope = credential.split("/")
    if len(scope) != 5 or not all(scope):
        raise AuthError(
            "IncompleteSignatureException",
            f"Credential should be scoped to a valid region, service and terminator. Credential={credential}",
        )
    return {
        "scope": scope,
        "signed_headers": [h.strip().lower() for h in signed_headers.split(";")],
        "signature": signature.strip(),
    }


def _signing_date(text: str | None, source: str) -> datetime:
    if not text:
        raise AuthError(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    try:
        if source == "date":
            from email.utils import parsedate_to_datetime

            return parsedate_to_datetime(text).astimezone(timezone.utc)
        return datetime.strptime(text, AMZ_DATE).replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        raise AuthError(
            "IncompleteSignatureException", f"Date must be in ISO-8601 'basic format'. Got '{text}'."
        ) from None


def _check_time(signed_at: datetime, expires: str | None, now: datetime) -> None:
    """AWS's wording for a request signed too long ago (or too far ahead) of its clock."""
    stamp = AMZ_DATE
    if expires is not None:
        if not expires.isdigit() or not 0 < int(expires) <= MAX_PRESIGN_EXPIRES:
            raise AuthError(
                "InvalidSignatureException", f"X-Amz-Expires must be between 1 and {MAX_PRESIGN_EXPIRES}."
            )
        if now > signed_at + timedelta(seconds=int(expires)):
            raise AuthError(
                "InvalidSignatureException",
                f"Signature expired: {signed_at:{stamp}} is now earlier than {now:{stamp}}.",
            )
    elif signed_at < now - MAX_SKEW:
        raise AuthError(
            "InvalidSignatureException",
            f"Signature expired: {signed_at:{stamp}} is now earlier than "
            f"{now - MAX_SKEW:{stamp}} ({now:{stamp}} - 5 min.)",
        )
    if signed_at > now + MAX_SKEW:
        raise AuthError(
            "InvalidSignatureException",
            f"Signature not yet current: {signed_at:{stamp}} is still later "
            f"than {now + MAX_SKEW:{stamp}} ({now:{stamp}} + 5 min.)",
        )


def _canonical_query(pairs: list[tuple[str, str]]) -> str:
    """Each key and value decoded then encoded the one SigV4 way, sorted by key then value."""
    encoded = sorted((quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)
