"""POST /jobs and POST /jobs/batch."""
import time
from datetime import datetime, timedelta, timezone

import pytest

from jobsvc import State
from tests.test_admin_api.support import NOOP

ADD = "tests.jobfuncs.add"


def test_create_returns_201_and_the_queued_job(api, client):
    resp = api.post("/jobs", json={"function": ADD, "args": [1, 2], "queue": "mail", "priority": 2})
    assert resp.status_code == 201
    job = resp.get_json()
    assert (job["function"], job["args"], job["queue"], job["priority"], job["state"]) == (ADD, [1, 2], "mail", 2,
                                                                                          "queued")
    assert client.get(job["id"]).state == State.QUEUED


def test_create_with_foundation_options_stores_them(api, client):
    body = {"function": ADD, "kwargs": {"a": 1, "b": 2}, "namespace": "billing", "max_attempts": 7,
            "backoff": {"type": "linear", "base": 2, "cap": 60}, "timeout": 30, "result_ttl": 60,
            "failure_ttl": 120, "description": "adds", "meta": {"team": "x"}}
    job = api.post("/jobs", json=body).get_json()
    info = client.get(job["id"])
    assert (info.namespace, info.max_attempts, info.timeout, info.kwargs) == ("billing", 7, 30, {"a": 1, "b": 2})
    assert (info.raw["js_backoff"], info.raw["result_ttl"], info.raw["failure_ttl"]) == ("linear", "60", "120")
    assert job["max_attempts"] == 7 and job["namespace"] == "billing"


def test_create_with_delay_is_scheduled_with_a_run_time(api):
    before = time.time()
    job = api.post("/jobs", json={"function": NOOP, "delay": 60}).get_json()
    assert (job["state"], job["trigger"]) == ("scheduled", "delayed")
    run_at = datetime.fromisoformat(job["run_at"].replace("Z", "+00:00")).timestamp()
    assert before + 59 < run_at < time.time() + 61


def test_create_with_run_at_is_scheduled_for_that_time(api):
    at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    job = api.post("/jobs", json={"function": NOOP, "run_at": at.isoformat()}).get_json()
    assert (job["state"], job["trigger"]) == ("scheduled", "scheduled")
    assert job["run_at"] == at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_create_run_at_without_zone_is_utc(api):
    at = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None) + timedelta(hours=1)
    job = api.post("/jobs", json={"function": NOOP, "run_at": at.isoformat()}).get_json()
    assert job["run_at"] == at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_create_with_a_matching_trigger_is_accepted(api):
    assert api.post("/jobs", json={"function": NOOP, "delay": 5, "trigger": "delayed"}).status_code == 201


def test_create_with_a_trigger_that_contradicts_the_timing_is_422(api):
    resp = api.post("/jobs", json={"function": NOOP, "trigger": "delayed"})
    assert resp.status_code == 422


def test_same_idempotency_key_returns_200_and_the_same_job(api):
    first = api.post("/jobs", json={"function": NOOP, "idempotency_key": "order-1"})
    second = api.post("/jobs", json={"function": NOOP, "idempotency_key": "order-1"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json()["id"] == second.get_json()["id"]


@pytest.mark.parametrize("body", [
    {"function": NOOP, "unknown": 1},
    {"function": "not an import path"},
    {"function": "nodots"},
    {"args": []},
    {"function": NOOP, "priority": 0},
    {"function": NOOP, "priority": "1"},
    {"function": NOOP, "max_attempts": 21},
    {"function": NOOP, "timeout": 0},
    {"function": NOOP, "delay": -1},
    {"function": NOOP, "delay": 1, "run_at": "2030-01-01T00:00:00Z"},
    {"function": NOOP, "run_at": "tomorrow"},
    {"function": NOOP, "queue": "bad queue"},
    {"function": NOOP, "queue": "default\n"},
    {"function": NOOP, "namespace": "a:b"},
    {"function": NOOP, "backoff": {"type": "random"}},
    {"function": NOOP, "backoff": {"type": "fixed", "extra": 1}},
    {"function": NOOP, "args": {"not": "a list"}},
    {"function": NOOP, "idempotency_key": ""},
    {"function": NOOP, "result_ttl": -2},
], ids=lambda b: ",".join(f"{k}={v!r}" for k, v in b.items())[:60])
def test_create_validation_errors_are_422_and_create_nothing(api, r, body):
    resp = api.post("/jobs", json=body)
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["code"] == "validation_error" and err["message"]
    assert api.get("/jobs").get_json()["jobs"] == []


def test_unknown_field_is_named_in_the_422(api):
    details = api.post("/jobs", json={"function": NOOP, "qeue": "x"}).get_json()["error"]["details"]
    assert details["fields"] == {"qeue": ["Unknown field."]}


def test_args_nested_too_deep_are_422(api):
    deep: list = []
    for _ in range(40):
        deep = [deep]
    assert api.post("/jobs", json={"function": NOOP, "args": deep}).status_code == 422


def test_batch_creates_every_job_in_order(api):
    body = {"jobs": [{"function": ADD, "args": [i, i]} for i in range(5)]}
    resp = api.post("/jobs/batch", json=body)
    assert resp.status_code == 201
    out = resp.get_json()
    assert [j["args"] for j in out["jobs"]] == [[i, i] for i in range(5)]
    assert out["created"] == [True] * 5


def test_batch_is_all_or_nothing(api):
    body = {"jobs": [{"function": ADD}, {"function": ADD, "priority": 99}, {"function": ADD}]}
    resp = api.post("/jobs/batch", json=body)
    assert resp.status_code == 422
    assert "1" in resp.get_json()["error"]["details"]["fields"]["jobs"]
    assert api.get("/jobs").get_json()["jobs"] == []


def test_batch_contradicting_trigger_fails_the_whole_batch(api):
    body = {"jobs": [{"function": ADD}, {"function": ADD, "trigger": "scheduled"}]}
    resp = api.post("/jobs/batch", json=body)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"]["fields"]["jobs"].keys() == {"1"}
    assert api.get("/jobs").get_json()["jobs"] == []


def test_batch_of_100_is_accepted(api):
    assert api.post("/jobs/batch", json={"jobs": [{"function": NOOP}] * 100}).status_code == 201


@pytest.mark.parametrize("n", [0, 101])
def test_batch_outside_1_to_100_is_422(api, n):
    assert api.post("/jobs/batch", json={"jobs": [{"function": NOOP}] * n}).status_code == 422


def test_batch_reports_idempotency_hits(api):
    api.post("/jobs", json={"function": NOOP, "idempotency_key": "k1"})
    out = api.post("/jobs/batch", json={"jobs": [{"function": NOOP, "idempotency_key": "k1"},
                                                 {"function": NOOP}]}).get_json()
    assert out["created"] == [False, True]


def finish_and_sweep(r, config, job_id):
    """Run the job to completion, then let the TTL sweep delete it (its result TTL moved into the past)."""
    from jobsvc.engine.keys import Keys
    from jobsvc.engine.leases import Leases
    from jobsvc.maintenance.ttl_sweeper import TtlSweeper

    leases = Leases(r, config)
    lease = leases.claim(["default"], "w")
    assert lease.job_id == job_id
    leases.complete(lease, None, "w", 1.0, 2.0)
    r.zadd(Keys.finished("default"), {job_id: 1})
    assert TtlSweeper(r, config).run_once().details["deleted"] == 1


def test_idempotency_key_of_a_job_gone_at_its_ttl_answers_200_deleted_and_creates_nothing(api, r, config):
    body = {"function": ADD, "args": [1, 2], "idempotency_key": "order-9", "result_ttl": 1}
    first = api.post("/jobs", json=body).get_json()
    finish_and_sweep(r, config, first["id"])
    again = api.post("/jobs", json=body)
    assert again.status_code == 200
    job = again.get_json()
    assert (job["id"], job["state"], job["function"], job["args"]) == (first["id"], "deleted", ADD, [1, 2])
    assert api.get(f"/jobs/{first['id']}").status_code == 404
    assert api.get("/jobs").get_json()["jobs"] == []
    batch = api.post("/jobs/batch", json={"jobs": [body]}).get_json()
    assert batch["created"] == [False] and batch["jobs"][0]["state"] == "deleted"
    assert api.get("/jobs").get_json()["jobs"] == []


def test_deleting_a_job_frees_its_idempotency_key(api):
    first = api.post("/jobs", json={"function": NOOP, "idempotency_key": "order-10"}).get_json()
    assert api.delete(f"/jobs/{first['id']}").status_code == 204
    second = api.post("/jobs", json={"function": NOOP, "idempotency_key": "order-10"})
    assert second.status_code == 201 and second.get_json()["id"] != first["id"]
