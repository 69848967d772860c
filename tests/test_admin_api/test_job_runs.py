"""GET /jobs/{id}/runs (ids, pages, durations, scheduled_at) and POST /jobs/{id}/disable, /enable, /trigger."""
from __future__ import annotations

import time

from jobsvc.scheduling.schedules import Schedules
from tests.test_admin_api.support import NOOP, field_errors


def _fail_once(client, leases, job_id, queue="default", message="boom"):
    lease = leases.claim([queue], "host.1.w")
    assert lease is not None and lease.job_id == job_id
    assert leases.fail(lease, RuntimeError(message), retryable=True) in ("queued", "scheduled")


def _complete(leases, queue="default"):
    lease = leases.claim([queue], "host.1.w")
    assert lease is not None
    now = time.time()
    leases.complete(lease, 7, "host.1.w", now - 0.25, now)
    return lease


def test_every_run_has_an_id_and_a_duration_and_pages_by_cursor(api, client, leases):
    job_id = client.enqueue(NOOP, max_attempts=5, backoff="fixed").id
    for i in range(2):
        _fail_once(client, leases, job_id, message=f"no {i}")
        client.patch(job_id, run_at_ms=0)  # the retry's backoff, skipped
    _complete(leases)

    whole = api.get(f"/jobs/{job_id}/runs").get_json()
    assert whole["next_cursor"] is None
    runs = whole["runs"]
    assert [r["id"] for r in runs] == [f"{job_id}.1", f"{job_id}.2", f"{job_id}.3"]
    assert [r["outcome"] for r in runs] == ["retrying", "retrying", "completed"]
    assert [r["attempt"] for r in runs] == [1, 2, 3]
    assert all(r["job_id"] == job_id and r["scheduled_at"] is None for r in runs)
    assert all(isinstance(r["duration_ms"], (int, float)) and r["duration_ms"] >= 0 for r in runs)
    assert runs[2]["worker"] == "host.1.w" and runs[2]["started_at"] and runs[2]["ended_at"]

    first = api.get(f"/jobs/{job_id}/runs?limit=2").get_json()
    assert [r["id"] for r in first["runs"]] == [f"{job_id}.1", f"{job_id}.2"] and first["next_cursor"]
    second = api.get(f"/jobs/{job_id}/runs", query_string={"limit": 2, "cursor": first["next_cursor"]}).get_json()
    assert second == {"runs": [runs[2]], "next_cursor": None}


def test_a_successful_first_run_is_read_off_the_job_and_writes_no_history(api, client, leases, r, config):
    job_id = client.enqueue(NOOP).id
    _complete(leases)
    assert not r.exists(f"{config.key_prefix}runs:{job_id}")
    (run,) = api.get(f"/jobs/{job_id}/runs").get_json()["runs"]
    assert (run["id"], run["outcome"], run["attempt"]) == (f"{job_id}.1", "completed", 1)
    assert run["duration_ms"] >= 0


def test_runs_query_is_validated(api, client):
    job_id = client.enqueue(NOOP).id
    assert "cursor" in field_errors(api.get(f"/jobs/{job_id}/runs?cursor=abc"))
    assert "limit" in field_errors(api.get(f"/jobs/{job_id}/runs?limit=0"))
    assert "limit" in field_errors(api.get(f"/jobs/{job_id}/runs?limit=501"))
    assert api.get(f"/jobs/{job_id}/runs?cursor=99").get_json() == {"runs": [], "next_cursor": None}
    assert api.get("/jobs/nope/runs").status_code == 404


def test_runs_of_a_schedule_fired_job_carry_scheduled_at(api, client, leases):
    schedules = Schedules(client)
    schedules.create(id="every", interval=60, function=NOOP)
    job_id = schedules.execute("every")
    _complete(leases)
    (run,) = api.get(f"/jobs/{job_id}/runs").get_json()["runs"]
    scheduled = api.get("/schedules/every/runs").get_json()["runs"][0]
    assert scheduled["job_id"] == job_id
    assert run["scheduled_at"] == scheduled["scheduled_at"] and run["scheduled_at"] is not None


def test_a_disabled_job_is_not_claimed_until_enabled(api, client, leases):
    held = client.enqueue(NOOP).id
    other = client.enqueue(NOOP).id
    resp = api.post(f"/jobs/{held}/disable")
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["disabled"], resp.get_json()["state"]) == (True, "queued")
    assert client.get(held).disabled
    assert leases.claim(["default"], "w").job_id == other
    assert leases.claim(["default"], "w") is None
    assert client.get(held).state.value == "queued"  # still waiting in its queue

    again = api.post(f"/jobs/{held}/enable")
    assert again.status_code == 200 and again.get_json()["disabled"] is False
    assert leases.claim(["default"], "w").job_id == held
    assert api.post(f"/jobs/{held}/disable").get_json()["error"]["details"]["state"] == "running"
    assert api.post(f"/jobs/{held}/enable").status_code == 409
    actions = [e["action"] for e in api.get("/audit").get_json()["entries"]]
    assert actions[:4] == ["jobs.enable", "jobs.disable", "jobs.enable", "jobs.disable"]


def test_a_disabled_scheduled_job_keeps_its_time_and_waits_when_due(api, client, leases):
    job_id = client.enqueue(NOOP, delay=3600).id
    assert api.post(f"/jobs/{job_id}/disable").get_json()["state"] == "scheduled"
    assert api.post(f"/jobs/{job_id}/trigger").status_code == 409  # enable it first
    client.patch(job_id, run_at_ms=0)  # due now: queued, still held
    assert client.get(job_id).state.value == "queued"
    assert leases.claim(["default"], "w") is None
    api.post(f"/jobs/{job_id}/enable")
    assert leases.claim(["default"], "w").job_id == job_id


def test_disable_and_enable_refuse_unknown_and_finished_jobs(api, client, leases):
    assert api.post("/jobs/nope/disable").status_code == 404
    done = client.enqueue(NOOP).id
    _complete(leases)
    assert api.post(f"/jobs/{done}/disable").status_code == 409
    assert not client.get(done).disabled
    assert api.post(f"/jobs/{done}/disable", json={"x": 1}).status_code == 422


def test_trigger_runs_a_scheduled_job_now_and_names_its_run(api, client, leases):
    job_id = client.enqueue(NOOP, delay=3600, max_attempts=3).id
    before = int(time.time() * 1000) - 5000
    resp = api.post(f"/jobs/{job_id}/trigger")
    assert resp.status_code == 200, resp.get_json()
    out = resp.get_json()
    assert (out["job_id"], out["run_id"]) == (job_id, f"{job_id}.1")
    assert out["triggered_at"].endswith("Z")
    assert client.get(job_id).state.value == "queued"
    assert client.get(job_id).enqueued_ms >= before
    _complete(leases)
    assert api.get(f"/jobs/{job_id}/runs").get_json()["runs"][-1]["id"] == out["run_id"]
    assert api.post(f"/jobs/{job_id}/trigger").get_json()["error"]["details"]["state"] == "completed"
    entry = api.get("/audit").get_json()["entries"][1]
    assert (entry["action"], entry["counts"]["run_id"]) == ("jobs.trigger", out["run_id"])


def test_trigger_refuses_queued_and_deferred_jobs(api, client):
    queued = client.enqueue(NOOP).id
    assert api.post(f"/jobs/{queued}/trigger").get_json()["error"]["details"]["state"] == "queued"
    deferred = client.enqueue(NOOP, depends_on=[queued]).id
    assert api.post(f"/jobs/{deferred}/trigger").get_json()["error"]["details"]["state"] == "deferred"
    assert api.post("/jobs/nope/trigger").status_code == 404


def test_a_read_key_may_list_runs_but_not_change_jobs(api, make_key, client):
    job_id = client.enqueue(NOOP, delay=60).id
    reader = api.as_key(make_key("jobs:read"))
    assert reader.get(f"/jobs/{job_id}/runs").status_code == 200
    for action in ("disable", "enable", "trigger"):
        assert reader.post(f"/jobs/{job_id}/{action}").status_code == 403
