"""Input every endpoint refuses before it writes anything: text UTF-8 cannot encode (lone surrogates, in a
value or an object key, at any depth, in bodies and query strings), booleans that are not JSON
true / false (query: `true` / `false`), idempotency keys that cannot travel as an HTTP header."""
from __future__ import annotations

import json
from typing import Any

import pytest

from jobsvc import State
from jobsvc.admin import audit
from jobsvc.engine.functions import Registry
from jobsvc.scheduling.schedules import Schedules
from tests.redis_state import state
from tests.test_admin_api.support import NOOP, make_failed

LONE = "\udc00"  # JSON: "\udc00"
CONFIRM = {"X-Confirm": "true"}
BULK = ["/jobs/batch/retry", "/jobs/batch/requeue_quarantined", "/jobs/prune", "/jobs/ttl/sweep",
        "/jobs/integrity/sweep"]


@pytest.fixture
def world(client, leases, r, config):
    """A job of each kind an endpoint may touch, a schedule, a registry function, and the lease of a
    running job (for acks)."""
    queued = client.enqueue(NOOP, delay=600).id
    failed = make_failed(client, leases, queue="q1", message="disk full")
    running = client.enqueue(NOOP, queue="pq").id
    lease = leases.claim(["pq"], "host.1.w")
    assert lease is not None and lease.job_id == running
    Schedules(client).create(id="nightly", cron="0 3 * * *", function=NOOP)
    Registry(client).register("ns", "fn", NOOP)
    return {"queued": queued, "failed": failed, "running": running, "token": lease.token}


def snapshot(r, config) -> dict[bytes, Any]:
    """Every key and its serialized value, the audit log's own keys aside (a refused call is audited)."""
    return state(r, skip=(audit.stream_key(config.key_prefix), config.key_prefix + "audit:rate:"))


def send(api, method: str, path: str, body: Any) -> Any:
    """`body` as JSON text, lone surrogates written as JSON's \\udc00 escape (what a client would send)."""
    return api.call(method, path, data=json.dumps(body), headers={"Content-Type": "application/json", **CONFIRM})


def _ack(w: dict[str, str], result: Any) -> dict[str, Any]:
    return {"token": w["token"], "status": "completed", "result": result}


# Each endpoint family: (method, path, body with the lone surrogate in a string value, body with it in an
# object key); every other field valid, so the surrogate is the only thing wrong.
CASES = {
    "jobs.create": lambda w: ("POST", "/jobs", {"function": NOOP, "description": LONE},
                              {"function": NOOP, "kwargs": {LONE: 1}}),
    "jobs.create.meta": lambda w: ("POST", "/jobs", {"function": NOOP, "meta": {"a": [LONE]}},
                                   {"function": NOOP, "meta": {"a": {LONE: 1}}}),
    "jobs.create.idempotency": lambda w: ("POST", "/jobs", {"function": NOOP, "idempotency_key": LONE},
                                          {"function": NOOP, "idempotency_key": "k", "kwargs": {"a": {LONE: 1}}}),
    "jobs.batch": lambda w: ("POST", "/jobs/batch", {"jobs": [{"function": NOOP}, {"function": NOOP, "args": [LONE]}]},
                             {"jobs": [{"function": NOOP}, {"function": NOOP, "kwargs": {LONE: 1}}]}),
    "jobs.patch": lambda w: ("PATCH", f"/jobs/{w['queued']}", {"args": [LONE]}, {"kwargs": {LONE: 1}}),
    "bulk.retry": lambda w: ("POST", "/jobs/batch/retry", {"error_contains": LONE}, {LONE: 1}),
    "bulk.prune": lambda w: ("POST", "/jobs/prune", {"function": LONE}, {"queue": "q1", LONE: 1}),
    "schedules.create": lambda w: ("POST", "/schedules", {"id": "s1", "function": NOOP, "interval": 60,
                                                          "description": LONE},
                                   {"id": "s1", "function": NOOP, "interval": 60, "kwargs": {LONE: 1}}),
    "schedules.patch": lambda w: ("PATCH", "/schedules/nightly", {"kwargs": {"a": LONE}}, {"kwargs": {LONE: 1}}),
    "functions.create": lambda w: ("POST", "/functions", {"name": "f2", "path": NOOP, "description": LONE},
                                   {"name": "f2", "path": NOOP, LONE: 1}),
    "functions.patch": lambda w: ("PATCH", "/functions/ns/fn", {"description": LONE}, {LONE: 1}),
    "keys.create": lambda w: ("POST", "/keys", {"name": LONE, "scopes": ["jobs:read"]},
                              {"name": "n", "scopes": ["jobs:read"], LONE: 1}),
    "pull.ack": lambda w: ("POST", f"/jobs/{w['running']}/ack", _ack(w, LONE), _ack(w, {LONE: 1})),
}


@pytest.mark.parametrize("where", ["value", "key"])
@pytest.mark.parametrize("family", sorted(CASES))
def test_a_lone_surrogate_anywhere_is_422_and_writes_nothing(api, r, config, world, family, where):
    method, path, with_value, with_key = CASES[family](world)
    body = with_value if where == "value" else with_key
    before = snapshot(r, config)
    resp = send(api, method, path, body)
    assert resp.status_code == 422, resp.get_data(as_text=True)
    err = resp.get_json()["error"]
    assert err["code"] == "validation_error" and "not valid Unicode text" in err["message"]
    assert snapshot(r, config) == before
    assert api.get("/audit").status_code == 200  # the refused call's entry reads back


def test_the_422_names_the_field_path(api):
    body = {"jobs": [{"function": NOOP}, {"function": NOOP, "kwargs": {"to": {LONE: 1}}}]}
    err = send(api, "POST", "/jobs/batch", body).get_json()["error"]
    assert "jobs[1].kwargs.to.\\udc00" in err["message"]
    assert err["details"]["fields"] == {"jobs": {"1": {"kwargs": {"to": {"\\udc00": [
        "this key is not valid Unicode text (a lone surrogate such as \\udc00, which UTF-8 cannot encode)"]}}}}}


def test_utf8_encoded_surrogate_bytes_are_refused_too(api, r, config):
    raw = b'{"function": "tests.jobfuncs.noop", "description": "\xed\xb0\x80"}'  # what json.loads reads as \udc00
    resp = api.call("POST", "/jobs", data=raw, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422 and resp.get_json()["error"]["details"]["fields"]["description"]
    assert snapshot(r, config) == {}


def test_surrogate_pairs_are_text_and_accepted(api):
    body = {"function": NOOP, "description": "\U0001f600", "kwargs": {"\U0001f600": "\U0001f600"}}
    resp = send(api, "POST", "/jobs", body)  # json.dumps writes the emoji as the pair \ud83d\ude00
    assert resp.status_code == 201
    assert resp.get_json()["kwargs"] == {"\U0001f600": "\U0001f600"}


@pytest.mark.parametrize("query", ["function=%ED%B0%80", "namespace=a%ED%B0%80", "%ED%B0%80=1", "cursor=%FF"])
def test_query_text_that_is_not_utf8_is_422(api, r, config, world, query):
    before = snapshot(r, config)
    resp = api.get(f"/jobs?{query}")
    assert resp.status_code == 422
    assert "not valid Unicode text" in resp.get_json()["error"]["message"]
    assert snapshot(r, config) == before


def test_a_query_with_plain_non_ascii_text_still_works(api, client):
    assert api.get("/jobs?function=%C3%A9t%C3%A9").status_code == 200  # "été"


# -- booleans ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, "true", "yes", None, "false", 0.0, [], {}])
@pytest.mark.parametrize("path", BULK)
def test_dry_run_takes_only_json_true_or_false(api, r, config, world, path, value):
    before = snapshot(r, config)
    resp = api.post(path, json={"dry_run": value}, headers=CONFIRM)
    assert resp.status_code == 422, resp.get_json()
    assert "dry_run" in resp.get_json()["error"]["details"]["fields"]
    assert snapshot(r, config) == before
    assert world["failed"] and api.get(f"/jobs/{world['failed']}").get_json()["state"] == State.FAILED.value


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/jobs", {"function": NOOP, "backoff": {"type": "fixed", "jitter": 1}}),
    ("POST", "/schedules", {"function": NOOP, "interval": 60, "enabled": "true"}),
    ("PATCH", "/schedules/nightly", {"enabled": 0}),
    ("POST", "/functions", {"name": "f2", "path": NOOP, "enabled": "yes"}),
    ("PATCH", "/functions/ns/fn", {"enabled": 1}),
    ("POST", "/functions/sync", {"namespace": "ns", "functions": [], "delete_missing": 1, "dry_run": True}),
    ("POST", "/functions/sync", {"namespace": "ns", "functions": [], "dry_run": 0}),
], ids=["jitter", "schedule-enabled", "schedule-patch", "function-enabled", "function-patch", "delete_missing",
        "sync-dry_run"])
def test_every_body_boolean_is_strict(api, r, config, world, method, path, body):
    before = snapshot(r, config)
    assert send(api, method, path, body).status_code == 422
    assert snapshot(r, config) == before


def test_ack_retryable_is_strict(api, r, config, world):
    body = {"token": world["token"], "status": "failed", "error": "boom", "retryable": 0}
    before = snapshot(r, config)
    assert send(api, "POST", f"/jobs/{world['running']}/ack", body).status_code == 422
    assert snapshot(r, config) == before


@pytest.mark.parametrize("path", ["/jobs?include_result={}", "/jobs/{job}?include_result={}",
                                  "/schedules?enabled={}"])
def test_query_booleans_are_true_or_false_only(api, world, path):
    url = path.replace("{job}", world["queued"])
    for bad in ("1", "0", "True", "yes", "on", ""):
        assert api.get(url.format(bad)).status_code == 422, bad
    for good in ("true", "false"):
        assert api.get(url.format(good)).status_code == 200, good


def test_true_and_false_still_work(api, world):
    assert api.post("/jobs/batch/retry", json={"dry_run": True}).get_json()["matched"] == 1
    assert api.post("/jobs/batch/retry", json={"dry_run": False}, headers=CONFIRM).get_json()["changed"] == 1


# -- idempotency keys --------------------------------------------------------------------------------------


BAD_KEYS = ["a\r\nX-Evil: 1", "line\n", "tab\there", "caf\u00e9", "\u043a\u043b\u044e\u0447", " lead", "trail ",
            "", "x" * 257, "nul\x00", "del\x7f"]


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: ascii(k)[:20])
def test_an_idempotency_key_that_cannot_be_a_header_is_422(api, r, config, key):
    for path, body in (("/jobs", {"function": NOOP, "idempotency_key": key}),
                       ("/jobs/batch", {"jobs": [{"function": NOOP}, {"function": NOOP, "idempotency_key": key}]})):
        resp = send(api, "POST", path, body)
        assert resp.status_code == 422, resp.get_json()
        assert "idempotency_key" in json.dumps(resp.get_json()["error"]["details"])
    assert snapshot(r, config) == {}


@pytest.mark.parametrize("key", ["order-7", "a b", "~!@#$%^&*()_+{}|:<>?", "x" * 256])
def test_printable_ascii_idempotency_keys_are_accepted(api, key):
    first = send(api, "POST", "/jobs", {"function": NOOP, "idempotency_key": key})
    again = send(api, "POST", "/jobs", {"function": NOOP, "idempotency_key": key})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
