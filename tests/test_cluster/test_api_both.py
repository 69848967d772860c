"""The admin HTTP API and the AdminClient on a single Redis and on the suite's Redis Cluster (issue 15, docs/cluster.md
2.4), through test_core_both's parametrized fixture (six queues, two per shard on the cluster): jobs created through the
API in several queues, listed page by page with one cursor across queues, counted, read, changed and deleted by id;
bulk retry with its dry run and X-Confirm; pause and resume; the workers listing (registered workers, the
soonest-expiring leases of every queue, pull workers); API keys and the audit log (their own slot on a cluster); the
pull API's claim, heartbeat and acks, one and many across queues; /health and the dashboard; registry writes (501 on a
cluster once), and no endpoint answering a 500."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from admin_api import create_app
from admin_api.client import AdminClient
from jobsvc import Config, defaults
from jobsvc.admin.apikeys import ADMIN, READ
from jobsvc.engine.cluster import register_worker
from jobsvc.engine.connection import is_cluster
from jobsvc.engine.keys import RQ_WORKER, cluster_name
from jobsvc.scheduling.schedules import Schedules
from tests.test_admin_api.support import ADMIN_KEY, NOOP, Api, live_admin_client
from tests.test_admin_api.test_auth import ENDPOINTS, IDS
from tests.test_admin_api.test_dashboard import Dash
from tests.test_cluster import test_core_both
from tests.test_cluster.test_core_both import PREFIX, WORKER, Backend

backend = test_core_both.backend  # the parametrized fixture: a single Redis, the suite's cluster

CONFIRM = {"X-Confirm": "true"}


@pytest.fixture
def api(backend: Backend) -> Api:
    return Api(create_app(backend.config, backend.conn, admin_key=ADMIN_KEY), ADMIN_KEY)


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def create(api: Api, queues: list[str], per_queue: int, **options: Any) -> dict[str, list[str]]:
    """`per_queue` jobs in each queue through POST /jobs/batch (one request): queue -> ids."""
    jobs = [{"function": NOOP, "queue": q, **options} for _ in range(per_queue) for q in queues]
    rows = ok(api.post("/jobs/batch", {"jobs": jobs}), 201)["jobs"]
    out: dict[str, list[str]] = {q: [] for q in queues}
    for row in rows:
        out[row["queue"]].append(row["id"])
    return out


def every_page(api: Api, query: str, limit: int) -> list[dict[str, Any]]:
    out, cursor = [], None
    for _ in range(100):
        page = ok(api.get(f"/jobs?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")))
        out += page["jobs"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("the cursor never ended")


def test_jobs_created_in_several_queues_list_page_by_page_and_count(api, backend):
    queues = backend.queues
    made = create(api, queues, 3)
    one = ok(api.post("/jobs", {"function": NOOP, "queue": queues[1], "priority": 1}), 201)
    assert (one["queue"], one["state"], one["priority"]) == (queues[1], "queued", 1)
    made[queues[1]].append(one["id"])
    listed = every_page(api, "", 4)
    assert sorted(j["id"] for j in listed) == sorted(i for ids in made.values() for i in ids)  # each once
    assert {j["state"] for j in listed} == {"queued"}
    assert sorted(j["id"] for j in every_page(api, f"&queue={queues[2]}", 2)) == sorted(made[queues[2]])
    stats = ok(api.get("/stats"))
    assert stats["total"]["queued"] == 19
    assert {q: c["queued"] for q, c in stats["queue"].items()} == {q: len(ids) for q, ids in made.items()}
    assert [q["name"] for q in ok(api.get("/queues"))["queues"]] == sorted(queues)
    assert ok(api.get(f"/queues/{queues[3]}"))["counts"]["queued"] == 3
    assert ok(api.get(f"/stats?queue={queues[1]}"))["total"]["queued"] == 4
    page = ok(api.get(f"/jobs?queue={queues[1]}&include_counts=true&limit=1"))
    assert (len(page["jobs"]), page["counts"]["queued"]) == (1, 4)
    assert api.get("/jobs?queue=nowhere").status_code == 404


def test_an_idempotency_key_answers_with_its_job(api, backend):
    body = {"function": NOOP, "queue": backend.queues[4], "idempotency_key": "order-7"}
    first = ok(api.post("/jobs", body), 201)
    again = ok(api.post("/jobs", body), 200)
    assert again["id"] == first["id"] and again["state"] == "queued"
    limited = api.as_key(ok(api.post("/keys", {"name": "q4", "scopes": [ADMIN],
                                                "queues": [backend.queues[4]]}), 201)["secret"])
    assert ok(limited.post("/jobs", body), 200)["id"] == first["id"]  # the limited key's pre-check reads it too


def test_a_job_by_id_is_read_changed_and_deleted(api, backend):
    client, leases, q = backend.client(), backend.leases(), backend.queues[5]
    job_id = ok(api.post("/jobs", {"function": NOOP, "queue": q, "delay": 600}), 201)["id"]
    assert ok(api.get(f"/jobs/{job_id}"))["state"] == "scheduled"
    assert ok(api.patch(f"/jobs/{job_id}", {"priority": 2}))["priority"] == 2
    assert ok(api.post(f"/jobs/{job_id}/disable"))["disabled"] is True
    assert ok(api.post(f"/jobs/{job_id}/enable"))["disabled"] is False
    assert ok(api.post(f"/jobs/{job_id}/trigger"))["job_id"] == job_id
    lease = leases.claim([q], WORKER)
    assert lease is not None and lease.job_id == job_id
    leases.complete(lease, 42, WORKER, 1.0, 2.0)
    done = ok(api.get(f"/jobs/{job_id}?include_result=true"))
    assert (done["state"], done["result"]) == ("completed", 42)
    assert [r["outcome"] for r in ok(api.get(f"/jobs/{job_id}/runs"))["runs"]] == ["completed"]
    listed = ok(api.get(f"/jobs?queue={q}&state=completed&include_result=true"))["jobs"]
    assert [(j["id"], j["result"]) for j in listed] == [(job_id, 42)]
    running = client.enqueue(NOOP, queue=q).id
    assert leases.claim([q], WORKER).job_id == running
    assert api.post(f"/jobs/{running}/cancel").status_code == 409
    assert ok(api.post(f"/jobs/{running}/terminate"))["state"] == "cancelled"
    assert ok(api.post(f"/jobs/{running}/retry"))["state"] == "queued"
    assert ok(api.post(f"/jobs/{running}/cancel"))["state"] == "cancelled"
    assert api.delete(f"/jobs/{job_id}").status_code == 204
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/runs", "/jobs/no-such-job"):
        assert api.get(path).get_json()["error"]["code"] == "not_found"


def test_bulk_retry_dry_run_then_confirmed_across_queues(api, backend):
    leases, queues = backend.leases(), backend.queues[:3]
    failed = create(api, queues, 2, max_attempts=1)
    for lease in leases.claim_many(queues, WORKER, count=100):
        assert leases.fail(lease, RuntimeError("disk full"), retryable=False) == "failed"
    body = {"state": "failed", "error_contains": "disk", "older_than": 0}
    assert ok(api.post("/jobs/batch/retry", {**body, "dry_run": True}))["matched"] == 6
    assert api.post("/jobs/batch/retry", body).status_code == 428
    assert ok(api.post("/jobs/batch/retry", body, headers=CONFIRM))["changed"] == 6
    for q, ids in failed.items():
        assert {j["id"] for j in ok(api.get(f"/jobs?queue={q}&state=queued"))["jobs"]} == set(ids)


def test_pause_and_resume_a_queue(api, backend):
    leases, (q, other) = backend.leases(), backend.queues[:2]
    create(api, [q, other], 1)
    assert ok(api.post(f"/queues/{q}/pause"))["paused"] is True
    assert {r["name"]: r["paused"] for r in ok(api.get("/queues"))["queues"]} == {q: True, other: False}
    assert [lease.queue for lease in leases.claim_many([q, other], WORKER, count=10)] == [other]
    assert ok(api.post(f"/queues/{q}/resume"))["paused"] is False
    assert [lease.queue for lease in leases.claim_many([q, other], WORKER, count=10)] == [q]
    assert api.post("/queues/nowhere/pause").status_code == 404


def test_workers_list_registered_and_pull_workers_with_the_soonest_leases(api, backend, monkeypatch):
    leases, queues = backend.leases(), backend.queues
    register_worker(backend.conn, RQ_WORKER + WORKER, {"hostname": "host", "pid": 7, "queues": ",".join(queues),
                                                       "state": "busy"}, 60)
    create(api, queues, 1)
    held = leases.claim_many(queues, WORKER, count=100)
    assert len(held) == 6
    pulled = {q: ok(api.post("/jobs", {"function": "tests.jobfuncs.add", "queue": q, "trigger": "pull"}), 201)["id"]
              for q in queues[:2]}
    claims = [ok(api.post("/jobs/claim", {"queue": q, "worker": "svc", "visibility_timeout": 3600}))["jobs"]
              for q in queues[:2]]
    assert [c[0]["id"] for c in claims] == list(pulled.values())
    rows = {w["name"]: w for w in ok(api.get("/workers"))["workers"]}
    assert (rows[WORKER]["kind"], rows[WORKER]["pid"], rows[WORKER]["state"]) == ("rq", 7, "busy")
    assert sorted(j["id"] for j in rows[WORKER]["current_jobs"]) == sorted(lease.job_id for lease in held)
    assert (rows["svc"]["kind"], rows["svc"]["queues"]) == ("pull", sorted(queues[:2]))
    assert sorted(j["id"] for j in rows["svc"]["current_jobs"]) == sorted(pulled.values())
    monkeypatch.setattr(defaults, "WORKERS_LEASES_MAX", 3)  # the 3 soonest-expiring leases of any queue
    page = ok(api.get("/workers"))
    assert page["leases_truncated"] is True
    soonest = {j["id"] for w in page["workers"] for j in w["current_jobs"]}
    assert soonest <= {lease.job_id for lease in held} and len(soonest) == 3  # the pull leases end in an hour


def test_api_keys_and_the_audit_log(api, backend):
    key = ok(api.post("/keys", {"name": "reader", "scopes": [READ]}), 201)
    reader = api.as_key(key["secret"])
    assert ok(reader.get("/jobs"))["jobs"] == []
    assert reader.post("/keys", {"name": "x", "scopes": [READ]}).status_code == 403
    assert [k["id"] for k in ok(api.get("/keys"))["keys"]] == [key["id"]]
    assert api.delete(f"/keys/{key['id']}").status_code == 204
    assert reader.get("/jobs").status_code == 401
    entries = ok(api.get("/audit?limit=10"))["entries"]
    assert [(e["action"], e["status"]) for e in entries] == [("keys.revoke", 204), ("keys.create", 403),
                                                             ("keys.create", 201)]
    assert ok(api.get(f"/audit?limit=1&cursor={entries[0]['id']}"))["entries"][0]["status"] == 403
    if backend.cluster:  # in the admin slot, audit_record's two keys with them
        assert backend.conn.xlen(cluster_name(PREFIX, "audit")) == 3
        assert backend.conn.exists(cluster_name(PREFIX, "audit_rate", "admin")) == 1
        admin_key = ok(api.post("/keys", {"name": "admin", "scopes": [ADMIN]}), 201)
        assert backend.conn.hexists(cluster_name(PREFIX, "apikeys"), admin_key["id"])


def test_pull_workers_claim_heartbeat_and_ack_across_queues(api, backend):
    q1, q2 = backend.queues[0], backend.queues[3]
    ids = [ok(api.post("/jobs", {"function": "tests.jobfuncs.add", "queue": q, "trigger": "pull"}), 201)["id"]
           for q in (q1, q1, q2)]
    first = ok(api.post("/jobs/claim", {"queue": q1, "count": 5}))["jobs"]
    second = ok(api.post("/jobs/claim", {"queue": q2, "count": 5}))["jobs"]
    assert [j["id"] for j in first + second] == ids
    one, two, three = first + second
    assert ok(api.post(f"/jobs/{one['id']}/heartbeat", {"token": one["token"], "visibility_timeout": 120}))[
        "lease_expires_ms"] > one["lease_expires_ms"] - 1
    assert ok(api.post(f"/jobs/{one['id']}/ack", {"token": one["token"], "status": "completed",
                                                  "result": {"ok": 1}}))["state"] == "completed"
    replay = api.post(f"/jobs/{one['id']}/ack", {"token": one["token"], "status": "completed"})
    assert ok(replay)["state"] == "completed"  # a network retry gets the same answer
    assert api.post(f"/jobs/{one['id']}/heartbeat", {"token": one["token"]}).status_code == 409
    acks = [{"id": two["id"], "token": two["token"], "status": "completed"},
            {"id": three["id"], "token": three["token"], "status": "failed", "error": "no", "retryable": False},
            {"id": three["id"], "token": "stale", "status": "completed"},
            {"id": "no-such-job", "token": "t", "status": "completed"}]
    rows = ok(api.post("/jobs/ack", {"acks": acks}))["results"]
    assert [(r["state"], r["error"] and r["error"]["code"]) for r in rows] == [
        ("completed", None), ("failed", None), (None, "lease_lost"), (None, "not_found")]
    assert ok(api.get(f"/jobs/{one['id']}?include_result=true"))["result"] == {"ok": 1}
    assert api.post("/jobs/no-such-job/heartbeat", {"token": "t"}).status_code == 404
    q2_only = api.as_key(ok(api.post("/keys", {"name": "q2", "scopes": ["jobs:write"], "queues": [q2]}), 201)["secret"])
    assert q2_only.post(f"/jobs/{two['id']}/heartbeat", {"token": two["token"]}).status_code == 404  # q1's job
    assert q2_only.post("/jobs/claim", {"queue": q1}).status_code == 403
    callback = api.as_key(None).post(f"/jobs/{two['id']}/callback", {"token": "t", "status": "completed"})
    assert callback.status_code == 409


def test_registry_writes_run_on_both(api, backend):
    """Once a 501 on a cluster; the registry's endpoints on both: test_functions_both.py."""
    ok(api.post("/functions", {"namespace": "ns", "name": "fn", "path": NOOP}), 201)
    sync = {"namespace": "ns", "functions": [{"name": "fn", "path": NOOP}, {"name": "fn2", "path": NOOP}],
            "dry_run": False}
    assert ok(api.post("/functions/sync", {**sync, "dry_run": True}))["created"] == ["fn2"]
    assert ok(api.post("/functions/sync", sync, headers=CONFIRM))["created"] == ["fn2"]


def test_a_cluster_url_gives_the_app_a_cluster_client(backend):
    if not backend.cluster:
        pytest.skip("a cluster's URL")
    url = backend.config.redis_url.replace("redis://", "redis+cluster://")
    app = create_app(Config(redis_url=url), dev=True)  # as `jobsvc api` and gunicorn build it
    conn = app.extensions["jobsvc_redis"]
    try:
        assert is_cluster(conn)
        assert app.test_client().get("/api/v1/queues").status_code == 200
    finally:
        conn.close()


def test_health_and_the_dashboard(api, backend):
    detail = ok(api.get("/health"))["detail"]["redis"]
    assert detail["eviction_safe"] is True
    assert detail["address"].startswith("cluster:") == backend.cluster
    job_id = ok(api.post("/jobs", {"function": NOOP, "queue": backend.queues[2], "max_attempts": 1}), 201)["id"]
    lease = backend.leases().claim([backend.queues[2]], WORKER)
    assert backend.leases().fail(lease, RuntimeError("disk full"), retryable=False) == "failed"
    dash = Dash(api.app)
    assert dash.login(ADMIN_KEY).status_code == 303
    for path in ("/dashboard/", "/dashboard/jobs?state=failed", "/dashboard/workers", "/dashboard/audit"):
        assert dash.get(path).status_code == 200, path
    page = dash.get(f"/dashboard/jobs/{job_id}")
    assert page.status_code == 200 and "disk full" in page.get_data(as_text=True)


@pytest.fixture
def target(backend, api):
    """What the endpoint matrix's paths name: a job, a key, a schedule, a function."""
    client = backend.client()
    job = client.enqueue(NOOP, queue=backend.queues[0]).id
    key = ok(api.post("/keys", {"name": "target", "scopes": [READ]}), 201)["id"]
    ok(api.post("/functions", {"namespace": "ns", "name": "fn", "path": NOOP}), 201)
    Schedules(client).create(id="target", interval=60, function=NOOP)
    return {"job": job, "key": key, "schedule": "target", "fn": "ns/fn"}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_no_endpoint_answers_500(api, target, endpoint):
    method, path, body, _ = endpoint
    resp = api.call(method, path.format(**target), json=body, headers=CONFIRM)
    assert resp.status_code < 500 or (resp.status_code, resp.get_json()["error"]["code"]) == (501, "not_on_cluster")


@pytest.fixture
def admin(api) -> Iterator[AdminClient]:
    with live_admin_client(api.app) as client:
        yield client


def test_the_admin_client(admin, backend):
    queues = backend.queues
    made = [admin.create_job(NOOP, queue=q, delay=600)["id"] for q in queues]
    assert sorted(j["id"] for j in admin.iter_jobs(limit=4)) == sorted(made)
    assert admin.get_job(made[2])["state"] == "scheduled"
    assert admin.cancel_job(made[2])["state"] == "cancelled"
    assert admin.stats()["total"]["scheduled"] == 5
    assert admin.bulk_retry(dry_run=True, state="cancelled")["matched"] == 1
    assert admin.pause_queue(queues[1])["paused"] is True
    assert admin.resume_queue(queues[1])["paused"] is False
    assert admin.workers()["workers"] == []
    key = admin.create_key("ci", [READ])
    admin.revoke_key(key["id"])
    assert admin.audit(limit=1)["entries"][0]["action"] == "keys.revoke"
    assert admin.register_function("fn", NOOP, namespace="ns")["ref"] == "ns/fn"
