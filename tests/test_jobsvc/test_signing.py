"""Request signatures: what jobsvc signs, a receiver verifies; anything altered, stale or malformed fails."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from jobsvc.errors import ValidationError
from jobsvc.http import signing

SECRET = "whsec_test"
BODY = b'{"job_id":"j1","args":[1,2]}'
NOW = 1_700_000_000
NON_ASCII = "\u00e9"


def test_sign_format_matches_the_documented_recipe():
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signing.sign(SECRET, BODY, NOW) == f"t={NOW},v1={expected}"


def test_round_trip_verifies():
    header = signing.sign(SECRET, BODY, NOW)
    assert signing.verify(SECRET, BODY, header, now=NOW + 10)


def test_bytes_and_str_secrets_agree():
    assert signing.sign(SECRET, BODY, NOW) == signing.sign(SECRET.encode(), BODY, NOW)


def test_tampered_body_is_rejected():
    header = signing.sign(SECRET, BODY, NOW)
    assert not signing.verify(SECRET, BODY.replace(b"1", b"9"), header, now=NOW)


def test_wrong_secret_is_rejected():
    header = signing.sign(SECRET, BODY, NOW)
    assert not signing.verify("other", BODY, header, now=NOW)


def test_tampered_timestamp_is_rejected():
    digest = signing.sign(SECRET, BODY, NOW).split("v1=")[1]
    assert not signing.verify(SECRET, BODY, f"t={NOW + 1},v1={digest}", now=NOW)


@pytest.mark.parametrize("offset", [301, -301, 10_000])
def test_stale_or_future_timestamp_is_rejected(offset):
    header = signing.sign(SECRET, BODY, NOW)
    assert not signing.verify(SECRET, BODY, header, now=NOW + offset)


def test_tolerance_is_configurable():
    header = signing.sign(SECRET, BODY, NOW)
    assert signing.verify(SECRET, BODY, header, now=NOW + 500, tolerance=600)
    assert not signing.verify(SECRET, BODY, header, now=NOW + 5, tolerance=1)


def test_verify_uses_the_clock_when_now_is_not_given():
    import time
    ts = int(time.time())
    assert signing.verify(SECRET, BODY, signing.sign(SECRET, BODY, ts))


def test_any_matching_v1_signature_is_accepted():
    good = signing.sign(SECRET, BODY, NOW).split("v1=")[1]
    header = f"t={NOW},v1={'0' * 64},v1={good}"
    assert signing.verify(SECRET, BODY, header, now=NOW)


def test_unknown_schemes_are_ignored():
    header = signing.sign(SECRET, BODY, NOW) + ",v2=whatever"
    assert signing.verify(SECRET, BODY, header, now=NOW)


@pytest.mark.parametrize("header", [
    "",
    "garbage",
    "t=,v1=",
    f"t={NOW}",
    "v1=" + "a" * 64,
    f"t=abc,v1={'a' * 64}",
    f"t=-{NOW},v1={'a' * 64}",
    f"t={NOW},v1=zz",
    f"t={NOW},v1={'A' * 64}",
    f"t={NOW},t={NOW},v1={'a' * 64}",
    f"t={NOW},v1={NON_ASCII * 64}",
    f"t={NOW};v1={'a' * 64}",
    f"t={'9' * 400},v1={'a' * 64}",
    None,
    b"t=1,v1=00",
])
def test_malformed_header_is_rejected_without_raising(header):
    assert signing.verify(SECRET, BODY, header, now=NOW) is False


@pytest.mark.parametrize("secret", ["", b""])
def test_empty_secret_never_verifies(secret):
    header = signing.sign(SECRET, BODY, NOW)
    assert signing.verify(secret, BODY, header, now=NOW) is False


def test_empty_secret_cannot_sign():
    with pytest.raises(ValidationError):
        signing.sign("", BODY, NOW)


def test_str_body_is_rejected_without_raising():
    header = signing.sign(SECRET, BODY, NOW)
    assert signing.verify(SECRET, BODY.decode(), header, now=NOW) is False


def test_headers_are_complete_and_signed():
    h = signing.headers(SECRET, BODY, job_id="j1", attempt=2, idempotency_key="order-7", now=NOW + 0.9)
    assert h[signing.CONTENT_TYPE_HEADER] == "application/json"
    assert h[signing.USER_AGENT_HEADER].startswith("jobsvc/")
    assert h[signing.JOB_ID_HEADER] == "j1"
    assert h[signing.ATTEMPT_HEADER] == "2"
    assert h[signing.IDEMPOTENCY_KEY_HEADER] == "order-7"
    assert h[signing.TIMESTAMP_HEADER] == str(NOW)
    assert signing.verify(SECRET, BODY, h[signing.SIGNATURE_HEADER], now=NOW)


def test_headers_idempotency_key_defaults_to_job_id():
    h = signing.headers(SECRET, BODY, job_id="j1", attempt=1, idempotency_key=None, now=NOW)
    assert h["X-Jobsvc-Idempotency-Key"] == "j1"


def test_header_names():
    h = signing.headers(SECRET, BODY, job_id="j1", attempt=1, idempotency_key=None, now=NOW)
    assert set(h) == {"Content-Type", "User-Agent", "X-Jobsvc-Job-Id", "X-Jobsvc-Attempt",
                      "X-Jobsvc-Idempotency-Key", "X-Jobsvc-Timestamp", "X-Jobsvc-Signature"}
