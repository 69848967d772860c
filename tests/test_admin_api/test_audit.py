"""Every mutating call lands in the audit log (key id, action, parameters, counts, outcome, time); reads do not."""
import time

import pytest

from jobsvc.admin import audit, redact
from tests.test_admin_api.support import ADMIN_KEY, NOOP


def _entries(api, query=""):
    return api.get(f"/audit{query}").get_json()["entries"]


def test_create_is_recorded_with_key_action_params_counts(api):
    before = time.time()
    job_id = api.post("/jobs", json={"function": NOOP, "queue": "mail"}).get_json()["id"]
    (entry,) = _entries(api)
    assert (entry["key_id"], entry["action"], entry["status"]) == ("admin", "jobs.create", 201)
    assert entry["params"] == {"function": NOOP, "queue": "mail"}
    assert entry["counts"] == {"created": 1, "job_id": job_id}
    assert before - 1 < _epoch(entry["time"]) < time.time() + 1


def _epoch(iso):
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_reads_are_not_recorded(api, client):
    job_id = client.enqueue(NOOP).id
    for path in ("/jobs", f"/jobs/{job_id}", "/jobs/stats", "/queues", "/workers", "/keys"):
        api.get(path)
    assert _entries(api) == []


def test_refused_calls_are_recorded_with_their_status(api, client):
    job_id = client.enqueue(NOOP).id
    api.post(f"/jobs/{job_id}/retry")
    (entry,) = _entries(api)
    assert (entry["action"], entry["status"], entry["params"]) == ("jobs.retry", 409, {"job_id": job_id})


def test_scoped_key_calls_record_the_key_id(api, make_key):
    secret = make_key("jobs:write")
    api.as_key(secret).post("/jobs", json={"function": NOOP})
    assert _entries(api)[0]["key_id"] == secret.split("_")[1]


def test_forbidden_calls_are_recorded_unauthenticated_ones_are_not(api, make_key, client):
    job_id = client.enqueue(NOOP).id
    api.as_key(None).post(f"/jobs/{job_id}/cancel")
    api.as_key("wrong").post(f"/jobs/{job_id}/cancel")
    api.as_key(make_key("jobs:read")).post(f"/jobs/{job_id}/cancel")
    entries = _entries(api)
    assert [(e["action"], e["status"]) for e in entries] == [("jobs.cancel", 403)]


@pytest.mark.parametrize("call", [
    lambda api, job: api.patch(f"/jobs/{job}", json={"priority": 1}),
    lambda api, job: api.post(f"/jobs/{job}/cancel"),
    lambda api, job: api.delete(f"/jobs/{job}"),
    lambda api, job: api.post("/jobs/batch", json={"jobs": [{"function": NOOP}]}),
    lambda api, job: api.post("/queues/default/pause"),
    lambda api, job: api.post("/queues/default/resume"),
    lambda api, job: api.post("/keys", json={"name": "k", "scopes": ["jobs:read"]}),
], ids=["patch", "cancel", "delete", "batch", "pause", "resume", "key-create"])
def test_each_mutating_call_is_recorded(api, client, call):
    job_id = client.enqueue(NOOP).id
    call(api, job_id)
    assert len(_entries(api)) == 1


def test_key_creation_never_records_the_secret(api):
    secret = api.post("/keys", json={"name": "k", "scopes": ["jobs:read"]}).get_json()["secret"]
    text = api.get("/audit").get_data(as_text=True)
    assert secret.split("_", 2)[2] not in text and ADMIN_KEY not in text


def test_audit_pages_newest_first_with_a_cursor(api):
    for i in range(5):
        api.post("/jobs", json={"function": NOOP, "description": f"job {i}"})
    first = api.get("/audit?limit=2").get_json()
    second = api.get(f"/audit?limit=2&cursor={first['next_cursor']}").get_json()
    third = api.get(f"/audit?limit=2&cursor={second['next_cursor']}").get_json()
    got = [e["params"]["description"] for page in (first, second, third) for e in page["entries"]]
    assert got == [f"job {i}" for i in range(4, -1, -1)]
    assert third["next_cursor"] is None


@pytest.mark.parametrize("query", ["cursor=abc", "cursor=1-2-3", "cursor=99999999999999999999-0", "limit=0",
                                   "limit=501", "other=1"])
def test_bad_audit_queries_are_422(api, query):
    assert api.get(f"/audit?{query}").status_code == 422


def test_cursor_zero_is_an_empty_page(api):
    api.post("/jobs", json={"function": NOOP})
    assert api.get("/audit?cursor=0-0").get_json() == {"entries": [], "next_cursor": None}


def _stored_params(r, config) -> list[str]:
    """The params field of every entry as stored, oldest first."""
    return [f[b"params"].decode() for _, f in r.xrange(audit.stream_key(config.key_prefix))]


def test_large_params_are_cut_to_the_small_fields_and_sizes(r, config):
    params = {"function": NOOP, "queue": "mail", "args": ["x" * 100_000], "kwargs": {"to": "ada", "blob": "y" * 5000}}
    audit.record(r, config.key_prefix, "admin", "jobs.create", params)
    (stored,) = _stored_params(r, config)
    assert len(stored) <= audit.PARAMS_MAX
    (entry,), _ = audit.list_entries(r, config.key_prefix)
    assert entry.params["_truncated"] is True and entry.params["_size"] > 100_000
    assert (entry.params["function"], entry.params["queue"]) == (NOOP, "mail")
    assert entry.params["args"] == "<100,004 characters>"
    assert entry.params["kwargs"] == {"to": "ada", "blob": "<5,002 characters>"}


def test_a_create_with_big_arguments_stores_at_most_2_kb_and_no_secrets(api, r, config):
    kwargs = {"password": "hunter2", "db": {"api_key": "k-123", "host": "db1"}, "notes": "n" * 9000}
    resp = api.post("/jobs", json={"function": NOOP, "kwargs": kwargs, "meta": {"refresh_token": "t-456"}})
    assert resp.status_code == 201
    (stored,) = _stored_params(r, config)
    assert len(stored) <= 2048
    for secret in ("hunter2", "k-123", "t-456"):
        assert secret not in stored and secret not in api.get("/audit").get_data(as_text=True)
    params = _entries(api)[0]["params"]
    assert params["kwargs"]["password"] == params["kwargs"]["db"]["api_key"] == redact.MASK
    assert params["meta"] == {"refresh_token": redact.MASK}
    assert params["kwargs"]["db"]["host"] == "db1" and params["_truncated"] is True


def test_small_params_are_kept_whole_but_redacted(api):
    api.post("/jobs", json={"function": NOOP, "kwargs": {"user": "ada", "Password": "x"}})
    assert _entries(api)[0]["params"] == {"function": NOOP, "kwargs": {"user": "ada", "Password": redact.MASK}}


def test_the_dashboard_and_the_api_share_one_redaction():
    from admin_api.dashboard import redact as dashboard_redact

    assert dashboard_redact.redact is redact.redact and dashboard_redact.MASK == redact.MASK


def test_a_key_past_its_allowance_this_minute_gets_short_params(r, config, monkeypatch):
    monkeypatch.setattr(audit, "PARAMS_PER_MINUTE", 3)
    big = {"function": NOOP, "kwargs": {"text": "x" * 1500}}
    for _ in range(5):
        audit.record(r, config.key_prefix, "k1", "jobs.create", big)
    audit.record(r, config.key_prefix, "k2", "jobs.create", big)  # another key keeps its own allowance
    sizes = [len(p) for p in _stored_params(r, config)]
    assert all(n > audit.PARAMS_MAX_FLOOD for n in sizes[:3])
    assert all(n <= audit.PARAMS_MAX_FLOOD for n in sizes[3:5])
    assert sizes[5] > audit.PARAMS_MAX_FLOOD
    assert len(sizes) == 6  # every call is still on record
    assert 0 < r.pttl(audit.rate_key(config.key_prefix, "k1")) <= audit.RATE_WINDOW_MS


def test_text_a_python_caller_passes_that_utf8_cannot_encode_reads_back(r, config, api):
    audit.record(r, config.key_prefix, "cli", "jobs.cancel", {"id": "j\udc00"})
    assert _entries(api)[0]["params"] == {"id": "j\\udc00"}  # shown as an escape, not lost


def test_stream_is_capped(r, config, monkeypatch):
    monkeypatch.setattr(audit, "MAXLEN", 10)
    for i in range(500):
        audit.record(r, config.key_prefix, "admin", "x", {"i": i})
    assert r.xlen(audit.stream_key(config.key_prefix)) < 500
