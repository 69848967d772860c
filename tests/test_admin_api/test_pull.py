"""Pull workers over HTTP: POST /jobs/claim, /jobs/{id}/heartbeat, /ack, /callback."""
from __future__ import annotations

import pytest

from jobsvc.admin import apikeys
from jobsvc.engine.keys import Keys
from jobsvc.maintenance.reaper import Reaper
from tests.conftest import redis_ms, wait_for
from tests.test_admin_api.support import NOOP

CONFIRM = {"X-Confirm": "true"}


def claim(api, queue: str = "pq", **body):
    resp = api.post("/jobs/claim", {"queue": queue, **body})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["jobs"]


def ack(api, job, **body):
    return api.post(f"/jobs/{job['id']}/ack", {"token": job["token"], "status": "completed", **body})


def error_of(resp, status: int) -> dict:
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()["error"]


def test_claim_returns_jobs_with_their_leases(api, client, r):
    ids = [client.enqueue_pull("tests.jobfuncs.add", i, 1, queue="pq", meta={"k": i}).id for i in range(3)]
    before = redis_ms(r)
    jobs = claim(api, count=2, visibility_timeout=60)
    assert [j["id"] for j in jobs] == ids[:2]
    job = jobs[0]
    assert job["queue"] == "pq" and job["namespace"] == "default" and job["attempt"] == 1
    assert (job["function"], job["args"], job["kwargs"], job["payload"], job["meta"]) == (
        "tests.jobfuncs.add", [0, 1], {}, None, {"k": 0})
    assert job["timeout"] == 180 and len(job["token"]) == 32
    assert before + 60_000 <= job["lease_expires_ms"] <= redis_ms(r) + 60_000
    assert job["lease_expires_at"].endswith("Z")
    running = api.get(f"/jobs/{job['id']}").get_json()
    assert running["state"] == "running" and running["worker"] == "pull:admin"
    assert [j["id"] for j in claim(api, count=5)] == ids[2:]


def test_claim_defaults_and_empty_queue(api, client):
    client.enqueue_pull(NOOP, queue="pq")
    client.enqueue_pull(NOOP, queue="pq")
    (job,) = claim(api)
    assert job["lease_expires_ms"] > 0 and "meta" not in job
    assert len(claim(api, count=100)) == 1
    assert claim(api, count=100) == []
    assert claim(api, "never-used") == []


def test_claim_names_the_worker(api, client):
    job_id = client.enqueue_pull(NOOP, queue="pq").id
    claim(api, worker="billing-svc@host-1")
    assert api.get(f"/jobs/{job_id}").get_json()["worker"] == "billing-svc@host-1"


def test_heartbeat_extends_and_a_wrong_token_is_409(api, client, r):
    client.enqueue_pull(NOOP, queue="pq")
    (job,) = claim(api, visibility_timeout=5)
    resp = api.post(f"/jobs/{job['id']}/heartbeat", {"token": job["token"], "visibility_timeout": 600})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["id"] == job["id"] and body["lease_expires_ms"] >= job["lease_expires_ms"] + 590_000
    before = r.hgetall(Keys.job(job["id"]))
    err = error_of(api.post(f"/jobs/{job['id']}/heartbeat", {"token": "0" * 32}), 409)
    assert err["code"] == "lease_lost" and err["details"] == {"state": "running"}
    assert r.hgetall(Keys.job(job["id"])) == before


def test_ack_completes_and_the_result_is_readable(api, client):
    client.enqueue_pull(NOOP, queue="pq")
    (job,) = claim(api)
    resp = ack(api, job, result={"total": 3, "items": ["a", None]})
    assert resp.status_code == 200
    assert resp.get_json() == {"id": job["id"], "state": "completed", "run_at": None}
    got = api.get(f"/jobs/{job['id']}?include_result=true").get_json()
    assert got["state"] == "completed" and got["result"] == {"total": 3, "items": ["a", None]}


def test_a_retried_ack_answers_the_recorded_outcome_and_changes_nothing(api, client, r):
    client.enqueue_pull(NOOP, queue="pq")
    (job,) = claim(api)
    assert ack(api, job, result=1).status_code == 200
    before = (r.hgetall(Keys.job(job["id"])), r.xlen(Keys.results(job["id"])))
    # A network retry of the same ack (same token, same outcome) is answered with what was recorded.
    for body in ({"result": 1}, {"result": 2}):
        resp = ack(api, job, **body)
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json() == {"id": job["id"], "state": "completed", "run_at": None}
    # The other outcome with the same token is refused.
    err = error_of(ack(api, job, status="failed", error="late"), 409)
    assert err["code"] == "lease_lost" and err["details"]["state"] == "completed"
    assert "already acked it as completed" in err["message"]
    assert (r.hgetall(Keys.job(job["id"])), r.xlen(Keys.results(job["id"]))) == before
    assert client.result(job["id"]) == 1


def test_a_retried_failed_ack_answers_where_the_job_went(api, client, r):
    client.enqueue_pull(NOOP, queue="pq", max_attempts=3)
    client.enqueue_pull(NOOP, queue="pq", max_attempts=3)
    first, second = claim(api, count=2)
    failed = {"status": "failed", "error": "503"}
    answer = ack(api, first, **failed).get_json()
    assert answer["state"] == "scheduled"
    before = r.hgetall(Keys.job(first["id"]))
    again = ack(api, first, **failed)
    assert again.status_code == 200 and again.get_json() == answer
    assert r.hgetall(Keys.job(first["id"])) == before
    assert error_of(ack(api, first), 409)["details"]["state"] == "scheduled"
    # A retry of an ack in a batch too; a stale token of the same job stays refused.
    for_good = dict(failed, retryable=False)
    assert ack(api, second, **for_good).get_json()["state"] == "failed"
    rows = api.post("/jobs/ack", {"acks": [{"id": second["id"], "token": second["token"], **for_good},
                                           {"id": second["id"], "token": "f" * 32, **for_good}]}).get_json()["results"]
    assert rows[0] == {"id": second["id"], "state": "failed", "run_at": None, "error": None}
    assert rows[1]["error"]["code"] == "lease_lost"


def test_failed_ack_retries_or_fails(api, client):
    retry_id = client.enqueue_pull(NOOP, queue="pq", max_attempts=3).id
    fail_id = client.enqueue_pull(NOOP, queue="pq", max_attempts=3).id
    first, second = claim(api, count=2)
    resp = ack(api, first, status="failed", error={"type": "Upstream", "message": "503 from upstream"})
    body = resp.get_json()
    assert resp.status_code == 200 and body["state"] == "scheduled" and body["run_at"].endswith("Z")
    got = api.get(f"/jobs/{retry_id}").get_json()
    assert got["state"] == "scheduled" and got["error"] == "Upstream: 503 from upstream"
    resp = ack(api, second, status="failed", error="bad input", retryable=False)
    assert resp.get_json() == {"id": fail_id, "state": "failed", "run_at": None}
    runs = api.get(f"/jobs/{fail_id}/runs").get_json()["runs"]
    assert runs[-1]["outcome"] == "failed" and runs[-1]["message"] == "bad input"


def test_callback_is_ack(api, client):
    client.enqueue_pull(NOOP, queue="pq")
    (job,) = claim(api)
    resp = api.post(f"/jobs/{job['id']}/callback", {"token": job["token"], "status": "completed", "result": "ok"})
    assert resp.get_json()["state"] == "completed"
    again = api.post(f"/jobs/{job['id']}/callback", {"token": job["token"], "status": "completed"})
    assert again.status_code == 200 and again.get_json()["state"] == "completed"  # a retried callback is safe
    err = error_of(api.post(f"/jobs/{job['id']}/callback", {"token": job["token"], "status": "failed",
                                                            "error": "late"}), 409)
    assert err["code"] == "lease_lost" and err["details"] == {"state": None}  # /callback tells no state


def test_unknown_job_is_404(api):
    assert error_of(api.post("/jobs/nope/heartbeat", {"token": "t"}), 404)["code"] == "not_found"
    assert error_of(api.post("/jobs/nope/ack", {"token": "t", "status": "completed"}), 404)["code"] == "not_found"


@pytest.mark.parametrize("body", [
    {},
    {"queue": "pq", "count": 0},
    {"queue": "pq", "count": 101},
    {"queue": "pq", "count": 1.5},
    {"queue": "pq", "visibility_timeout": 0},
    {"queue": "pq", "visibility_timeout": 3601},
    {"queue": "bad queue"},
    {"queue": "pq", "worker": "has space"},
    {"queue": "pq", "extra": 1},
])
def test_claim_422(api, body):
    assert error_of(api.post("/jobs/claim", body), 422)["code"] == "validation_error"


@pytest.mark.parametrize("body", [
    {"status": "completed"},
    {"token": "", "status": "completed"},
    {"token": "x" * 65, "status": "completed"},
    {"token": "t", "status": "done"},
    {"token": "t", "status": "failed"},
    {"token": "t", "status": "failed", "error": None},
    {"token": "t", "status": "failed", "error": "e", "result": 1},
    {"token": "t", "status": "completed", "error": "e"},
    {"token": "t", "status": "failed", "error": 5},
    {"token": "t", "status": "failed", "error": {"type": "T"}},
    {"token": "t", "status": "failed", "error": {"message": "m", "code": 1}},
    {"token": "t", "status": "completed", "extra": 1},
])
@pytest.mark.parametrize("path", ["ack", "callback"])
def test_ack_422(api, client, body, path):
    job_id = client.enqueue_pull(NOOP, queue="pq").id
    assert error_of(api.post(f"/jobs/{job_id}/{path}", body), 422)["code"] == "validation_error"


def test_heartbeat_422(api, client):
    job_id = client.enqueue_pull(NOOP, queue="pq").id
    for body in ({}, {"token": ""}, {"token": "t", "visibility_timeout": 0}, {"token": "t", "x": 1}):
        error_of(api.post(f"/jobs/{job_id}/heartbeat", body), 422)


def test_oversized_result_is_413(api, client):
    client.enqueue_pull(NOOP, queue="pq")
    (job,) = claim(api)
    error_of(ack(api, job, result="x" * 300_000), 413)
    assert api.get(f"/jobs/{job['id']}").get_json()["state"] == "running"


def test_expired_lease_is_requeued_and_the_late_ack_rejected(api, client, r, config):
    job_id = client.enqueue_pull(NOOP, queue="pq").id
    (job,) = claim(api, visibility_timeout=1)
    wait_for(lambda: redis_ms(r) > job["lease_expires_ms"], 3, "lease expiry")
    assert Reaper(r, config).run_once().requeued == 1
    got = api.get(f"/jobs/{job_id}").get_json()
    assert got["state"] == "queued" and got["attempts"] == 1
    assert error_of(ack(api, job), 409)["details"] == {"state": "queued"}
    assert error_of(api.post(f"/jobs/{job_id}/heartbeat", {"token": job["token"]}), 409)["details"]["state"] == "queued"
    (again,) = claim(api)
    assert again["id"] == job_id and again["attempt"] == 2
    assert error_of(ack(api, job), 409)["details"] == {"state": "running"}
    assert ack(api, again).status_code == 200


def test_pull_calls_write_no_audit_entry(api, client):
    client.enqueue_pull(NOOP, queue="pq")
    (job,) = claim(api)
    api.post(f"/jobs/{job['id']}/heartbeat", {"token": job["token"]})
    ack(api, job)
    actions = [e["action"] for e in api.get("/audit").get_json()["entries"]]
    assert actions == []


# -- scoped keys ----------------------------------------------------------------------------------------


def test_queue_limited_key_claims_only_its_queues(api, client, make_key):
    client.enqueue_pull(NOOP, queue="pq")
    other = client.enqueue_pull(NOOP, queue="other").id
    scoped = api.as_key(make_key(apikeys.WRITE, queues=["pq"]))
    (job,) = claim(scoped)
    assert error_of(scoped.post("/jobs/claim", {"queue": "other"}), 403)["code"] == "forbidden"
    assert scoped.post(f"/jobs/{job['id']}/heartbeat", {"token": job["token"]}).status_code == 200
    assert ack(scoped, job).status_code == 200
    # A job outside its limits is not found, whatever the token.
    (theirs,) = claim(api, "other")
    assert theirs["id"] == other
    error_of(scoped.post(f"/jobs/{other}/heartbeat", {"token": theirs["token"]}), 404)
    error_of(ack(scoped, theirs), 404)
    assert api.get(f"/jobs/{other}").get_json()["state"] == "running"


def test_namespace_limited_key_cannot_claim(api, client, make_key):
    client.enqueue_pull(NOOP, queue="pq", namespace="ns")
    scoped = api.as_key(make_key(apikeys.WRITE, namespaces=["ns"]))
    assert error_of(scoped.post("/jobs/claim", {"queue": "pq"}), 403)["code"] == "forbidden"


def test_read_key_cannot_pull(api, client, make_key):
    job_id = client.enqueue_pull(NOOP, queue="pq").id
    reader = api.as_key(make_key(apikeys.READ))
    error_of(reader.post("/jobs/claim", {"queue": "pq"}), 403)
    error_of(reader.post(f"/jobs/{job_id}/ack", {"token": "t", "status": "completed"}), 403)


# -- pull queues are ordinary queues --------------------------------------------------------------------


def test_trigger_pull_marks_jobs_for_listing(api):
    resp = api.post("/jobs", {"function": NOOP, "queue": "pq", "trigger": "pull"})
    assert resp.status_code == 201 and resp.get_json()["trigger"] == "pull"
    api.post("/jobs", {"function": NOOP, "queue": "pq"})
    listed = api.get("/jobs?trigger=pull").get_json()["jobs"]
    assert [j["id"] for j in listed] == [resp.get_json()["id"]]
    (job,) = claim(api)
    assert job["id"] == resp.get_json()["id"]
    assert error_of(api.post("/jobs", {"function": NOOP, "trigger": "pull", "delay": 5}), 422)


def test_a_claim_gets_only_jobs_created_for_pull(api, client):
    plain = api.post("/jobs", {"function": "tests.jobfuncs.add", "args": [1, 2], "kwargs": {}, "queue": "pq"})
    assert claim(api, count=10) == []  # an ordinary job's function and arguments are never handed out
    assert api.get(f"/jobs/{plain.get_json()['id']}").get_json()["state"] == "queued"
    made = api.post("/jobs", {"function": NOOP, "queue": "pq", "trigger": "pull", "priority": 2}).get_json()
    assert made["priority"] == 2
    assert [j["id"] for j in claim(api, count=10)] == [made["id"]]
    assert api.get(f"/jobs/{plain.get_json()['id']}").get_json()["state"] == "queued"


def test_stats_list_retry_and_prune_see_pull_queues(api, client):
    ids = [client.enqueue_pull(NOOP, queue="pq", max_attempts=1).id for _ in range(4)]
    jobs = claim(api, count=4)
    stats = api.get("/jobs/stats?by=queue").get_json()["queue"]["pq"]
    assert stats["running"] == 4
    assert {j["id"] for j in api.get("/jobs?queue=pq&state=running").get_json()["jobs"]} == set(ids)
    for job in jobs[:2]:
        assert ack(api, job).status_code == 200
    for job in jobs[2:]:
        assert ack(api, job, status="failed", error="boom").get_json()["state"] == "failed"
    stats = api.get("/jobs/stats?by=queue").get_json()["queue"]["pq"]
    assert (stats["completed"], stats["failed"], stats["running"]) == (2, 2, 0)

    retried = api.post("/jobs/batch/retry", {"queue": "pq"}, headers=CONFIRM).get_json()
    assert retried["changed"] == 2
    again = claim(api, count=10)
    assert {j["id"] for j in again} == set(ids[2:]) and all(j["attempt"] == 1 for j in again)
    for job in again:
        ack(api, job)
    pruned = api.post("/jobs/prune", {"queue": "pq", "state": "completed"}, headers=CONFIRM).get_json()
    assert pruned["changed"] == 4
    assert api.get("/jobs?queue=pq").get_json()["jobs"] == []


def test_callback_needs_no_key_only_the_token(api, client):
    client.enqueue_pull(NOOP, queue="pq")
    (job,) = claim(api)
    anon = api.as_key(None)
    error_of(anon.post(f"/jobs/{job['id']}/callback", {"token": "f" * 32, "status": "completed"}), 409)
    ok = anon.post(f"/jobs/{job['id']}/callback", {"token": job["token"], "status": "completed", "result": 1})
    assert ok.status_code == 200 and ok.get_json()["state"] == "completed"


def test_batch_ack_finishes_many_and_refuses_stale_tokens_one_by_one(api, client, r):
    for i in range(4):
        client.enqueue_pull("tests.jobfuncs.add", i, 1, queue="pq")
    jobs = claim(api, count=4)
    stale = dict(jobs[1], token="f" * 32)
    before = r.hgetall(f"rq:job:{stale['id']}")
    resp = api.post("/jobs/ack", {"acks": [
        {"id": jobs[0]["id"], "token": jobs[0]["token"], "status": "completed", "result": {"n": 0}},
        {"id": stale["id"], "token": stale["token"], "status": "completed"},
        {"id": jobs[2]["id"], "token": jobs[2]["token"], "status": "failed", "error": "nope", "retryable": False},
        {"id": "no-such-job", "token": "t", "status": "completed"},
    ]})
    assert resp.status_code == 200, resp.get_json()
    rows = resp.get_json()["results"]
    assert [row["state"] for row in rows] == ["completed", None, "failed", None]
    assert rows[1]["error"]["code"] == "lease_lost" and rows[1]["error"]["details"] == {"state": "running"}
    assert rows[3]["error"]["code"] == "not_found"
    assert r.hgetall(f"rq:job:{stale['id']}") == before
    assert client.result(jobs[0]["id"]) == {"n": 0}


def test_batch_ack_validates_every_item_before_writing(api, client):
    client.enqueue_pull(NOOP, queue="pq")
    (job,) = claim(api)
    resp = api.post("/jobs/ack", {"acks": [{"id": job["id"], "token": job["token"], "status": "completed"},
                                           {"id": job["id"], "token": job["token"], "status": "failed"}]})
    error_of(resp, 422)
    assert api.get(f"/jobs/{job['id']}").get_json()["state"] == "running"
    error_of(api.post("/jobs/ack", {"acks": []}), 422)
    error_of(api.post("/jobs/ack", {"acks": [{"id": job["id"], "token": "t", "status": "completed"}] * 101}), 422)


def test_batch_ack_hides_jobs_outside_a_limited_key(api, client, make_key):
    client.enqueue_pull(NOOP, queue="other")
    (job,) = claim(api, queue="other")
    limited = api.as_key(make_key("jobs:write", queues=["pq"]))
    rows = limited.post("/jobs/ack", {"acks": [{"id": job["id"], "token": job["token"],
                                                "status": "completed"}]}).get_json()["results"]
    assert rows[0]["error"]["code"] == "not_found"
    assert api.get(f"/jobs/{job['id']}").get_json()["state"] == "running"


def test_callback_reveals_nothing_about_jobs_it_holds_no_lease_on(api, client):
    job_id = client.enqueue_pull(NOOP, queue="pq").id
    anon = api.as_key(None)
    existing = error_of(anon.post(f"/jobs/{job_id}/callback", {"token": "f" * 32, "status": "completed"}), 409)
    missing = error_of(anon.post("/jobs/no-such-job/callback", {"token": "f" * 32, "status": "completed"}), 409)
    assert existing["details"] == missing["details"] == {"state": None}
    assert existing["code"] == missing["code"] == "lease_lost"
