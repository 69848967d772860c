"""HMAC-SHA256 signatures on the requests jobsvc sends to handler and callback URLs, and their verification.

Header format: `t=<unix seconds>,v1=<hex HMAC-SHA256 over b"<t>." + body>`. The timestamp is inside
the signed bytes, so a receiver that checks it against its clock also rejects replays of old requests.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from importlib import metadata

from .. import defaults
from ..errors import ValidationError

CONTENT_TYPE_HEADER = "Content-Type"
USER_AGENT_HEADER = "User-Agent"
JOB_ID_HEADER = "X-Jobsvc-Job-Id"
ATTEMPT_HEADER = "X-Jobsvc-Attempt"
IDEMPOTENCY_KEY_HEADER = "X-Jobsvc-Idempotency-Key"
TIMESTAMP_HEADER = "X-Jobsvc-Timestamp"
SIGNATURE_HEADER = "X-Jobsvc-Signature"

SCHEME = "v1"

try:
    _VERSION = metadata.version("jobsvc")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    _VERSION = "0.1"
USER_AGENT = f"jobsvc/{_VERSION}"

_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if not key:
        raise ValidationError("signing secret is empty")
    return key


def _digest(key: bytes, body: bytes, timestamp: int) -> str:
    return hmac.new(key, f"{timestamp}.".encode("ascii") + bytes(body), hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The signature header value for `body` sent at `timestamp` (unix seconds)."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValidationError(f"signature timestamp must be a non-negative integer, not {timestamp!r}")
    return f"t={timestamp},{SCHEME}={_digest(_key(secret), body, timestamp)}"


def _parse(header: str) -> tuple[int, list[str]] | None:
    """(timestamp, v1 signatures) of a header, or None when it is malformed; unknown schemes are skipped."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            return None
        if name == "t":
            if timestamp is not None or not _TIMESTAMP.match(value):
                return None
            timestamp = int(value)
        elif name == SCHEME:
            if not _HEX_DIGEST.match(value):
                return None
            signatures.append(value)
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify(secret: str | bytes, body: bytes, header: str, *, tolerance: int = defaults.SIGNATURE_TOLERANCE,
           now: float | None = None) -> bool:
    """Whether `header` is a valid, fresh signature of `body` under `secret`; never raises."""
    try:
        if not isinstance(header, str) or not isinstance(body, (bytes, bytearray, memoryview)):
            return False
        parsed = _parse(header)
        if parsed is None:
            return False
        timestamp, signatures = parsed
        current = time.time() if now is None else now
        if abs(current - timestamp) > tolerance:
            return False  # stale or from the future: a replay, or clocks too far apart
        expected = _digest(_key(secret), body, timestamp)
        # several v1 values may be sent while a secret is rotated; compare each in constant time
        matches = [hmac.compare_digest(expected, candidate) for candidate in signatures]
        return any(matches)
    except Exception:  # noqa: BLE001 - a receiver's check answers yes or no, whatever it was given
        return False


def headers(secret: str | bytes, body: bytes, *, job_id: str, attempt: int, idempotency_key: str | None,
            now: float | None = None) -> dict[str, str]:
    """The headers of a signed request; the idempotency key defaults to the job id so receivers can always dedupe."""
    timestamp = int(time.time() if now is None else now)
    return {
        CONTENT_TYPE_HEADER: "application/json",
        USER_AGENT_HEADER: USER_AGENT,
        JOB_ID_HEADER: job_id,
        ATTEMPT_HEADER: str(attempt),
        IDEMPOTENCY_KEY_HEADER: idempotency_key if idempotency_key is not None else job_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, body, timestamp),
    }
