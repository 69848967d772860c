"""/queues (counts, paused flag, pause / resume) and /workers (registry, current jobs, leases)."""
from jobsvc import defaults
from jobsvc.admin import workers_info
from jobsvc.engine.keys import Keys
from tests.test_admin_api.support import NOOP
from workers.worker import LeasedWorker


def test_queues_lists_counts_and_paused_flag(api, client):
    client.enqueue(NOOP, queue="a")
    client.enqueue(NOOP, queue="a", delay=60)
    client.enqueue(NOOP, queue="b")
    client.pause("b")
    queues = {q["name"]: q for q in api.get("/queues").get_json()["queues"]}
    assert set(queues) == {"a", "b"}
    assert (queues["a"]["counts"]["queued"], queues["a"]["counts"]["scheduled"]) == (1, 1)
    assert (queues["a"]["paused"], queues["b"]["paused"]) == (False, True)


def test_get_one_queue(api, client):
    client.enqueue(NOOP, queue="a")
    q = api.get("/queues/a").get_json()
    assert (q["name"], q["paused"], q["counts"]["queued"]) == ("a", False, 1)


def test_unknown_queue_is_404(api):
    for resp in (api.get("/queues/nope"), api.post("/queues/nope/pause"), api.post("/queues/nope/resume")):
        assert resp.status_code == 404
        assert resp.get_json()["error"]["code"] == "not_found"


def test_pause_and_resume(api, client, r, config):
    client.enqueue(NOOP, queue="a")
    assert api.post("/queues/a/pause").get_json()["paused"] is True
    assert r.sismember(f"{config.key_prefix}paused", "a")
    assert api.post("/queues/a/resume").get_json()["paused"] is False
    assert not r.sismember(f"{config.key_prefix}paused", "a")


def test_workers_lists_registered_workers_with_current_jobs_and_leases(api, client, r, config, leases):
    worker = LeasedWorker(["default", "mail"], r, config, name="host-a.4242.abc")
    worker.register_birth()
    job_id = client.enqueue(NOOP).id
    lease = leases.claim(["default"], worker.name)
    assert lease.job_id == job_id
    out = api.get("/workers").get_json()["workers"]
    assert len(out) == 1
    w = out[0]
    assert (w["name"], w["pid"], w["queues"], w["state"]) == ("host-a.4242.abc", worker.pid, ["default", "mail"],
                                                               "busy")
    assert w["hostname"] and w["last_heartbeat_at"].endswith("Z")
    assert [j["id"] for j in w["current_jobs"]] == [job_id]
    assert w["current_jobs"][0]["lease_expires_at"].endswith("Z")
    assert (w["processed"], w["failed"]) == (0, 0)


def test_idle_worker_has_no_current_jobs(api, r, config):
    LeasedWorker(["default"], r, config, name="idle.1.x").register_birth()
    w = api.get("/workers").get_json()["workers"][0]
    assert (w["state"], w["current_jobs"]) == ("idle", [])


def test_worker_whose_hash_expired_is_left_out(api, r, config):
    worker = LeasedWorker(["default"], r, config, name="gone.1.x")
    worker.register_birth()
    r.delete(worker.key)
    assert api.get("/workers").get_json()["workers"] == []


def test_worker_counts_come_from_the_registry_hash(api, r, config):
    worker = LeasedWorker(["default"], r, config, name="counted.1.x")
    worker.register_birth()
    r.hset(worker.key, mapping={"successful_job_count": 7, "failed_job_count": 2})
    w = api.get("/workers").get_json()["workers"][0]
    assert (w["processed"], w["failed"]) == (7, 2)


def _held_by(worker: LeasedWorker, leases, client, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        ids.append(client.enqueue(NOOP).id)
        assert leases.claim(["default"], worker.name).job_id == ids[-1]
    return ids


def test_workers_read_only_the_soonest_expiring_leases_and_say_more_exist(api, client, r, config, leases,
                                                                        monkeypatch):
    monkeypatch.setattr(defaults, "WORKERS_LEASES_MAX", 2)
    worker = LeasedWorker(["default"], r, config, name="many.1.x")
    worker.register_birth()
    ids = _held_by(worker, leases, client, 3)
    key = Keys(config.key_prefix).leases
    r.zadd(key, {ids[0]: 3_000_000_000_000, ids[1]: 2_000_000_000_000, ids[2]: 1_000_000_000_000}, xx=True)
    body = api.get("/workers").get_json()
    assert body["leases_truncated"] is True
    assert {j["id"] for j in body["workers"][0]["current_jobs"]} == {ids[1], ids[2]}


def test_workers_say_no_more_leases_exist_when_all_were_read(api, client, r, config, leases):
    worker = LeasedWorker(["default"], r, config, name="few.1.x")
    worker.register_birth()
    ids = _held_by(worker, leases, client, 2)
    body = api.get("/workers").get_json()
    assert body["leases_truncated"] is False
    assert sorted(j["id"] for j in body["workers"][0]["current_jobs"]) == sorted(ids)


def test_leases_held_by_callback_are_left_out_and_other_holders_are_pull_workers(api, client, r, config, leases):
    worker = LeasedWorker(["default"], r, config, name="py.1.x")
    worker.register_birth()
    held = {}
    for holder in ("callback", "pull:k1"):
        held[holder] = client.enqueue(NOOP).id
        assert leases.claim(["default"], holder) is not None
    (mine,) = _held_by(worker, leases, client, 1)
    out = api.get("/workers").get_json()["workers"]
    assert [(w["name"], w["kind"], [j["id"] for j in w["current_jobs"]]) for w in out] == [
        ("pull:k1", "pull", [held["pull:k1"]]), ("py.1.x", "rq", [mine])]


def test_pull_workers_are_listed_with_the_jobs_they_claimed(api, client, make_key):
    job_id = client.enqueue_pull(NOOP, queue="pq").id
    claimed = api.post("/jobs/claim", json={"queue": "pq", "worker": "pull:alpha"}).get_json()["jobs"]
    assert [j["id"] for j in claimed] == [job_id]
    assert api.post("/jobs/claim", json={"queue": "other", "worker": "pull:beta"}).get_json()["jobs"] == []
    out = {w["name"]: w for w in api.get("/workers").get_json()["workers"]}
    alpha, beta = out["pull:alpha"], out["pull:beta"]
    assert (alpha["kind"], alpha["queues"], alpha["state"], [j["id"] for j in alpha["current_jobs"]]) == (
        "pull", ["pq"], "busy", [job_id])
    assert alpha["last_heartbeat_at"].endswith("Z") and alpha["hostname"] is None
    assert (beta["queues"], beta["state"], beta["current_jobs"]) == (["other"], "idle", [])
    api.post(f"/jobs/{job_id}/ack", json={"token": claimed[0]["token"], "status": "completed"})
    assert {w["name"]: w["state"] for w in api.get("/workers").get_json()["workers"]}["pull:alpha"] == "idle"
    limited = api.as_key(make_key("jobs:read", queues=["other"]))
    assert [w["name"] for w in limited.get("/workers").get_json()["workers"]] == ["pull:beta"]


def test_pull_workers_idle_past_the_window_are_dropped(api, r, config):
    api.post("/jobs/claim", json={"queue": "pq", "worker": "pull:old"})
    assert [p.name for p in workers_info.pull_workers(r, config.key_prefix)] == ["pull:old"]
    later = int(r.time()[0] * 1000) + workers_info.PULL_WORKER_SEEN_MS + 60_000
    assert workers_info.pull_workers(r, config.key_prefix, now_ms=later) == []
    assert not r.exists(Keys(config.key_prefix).pull_workers)
