"""The sweeps of the admin API: cancel-stale (the TTL sweep of other admin APIs), the expired-job sweep and its
deprecated alias, prune by several states and days, the integrity sweep (report by default, fix on request,
scoped by queue and namespace)."""
import pytest

from jobsvc import State
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases
from jobsvc.maintenance.reaper import Reaper
from tests.conftest import redis_ms
from tests.test_admin_api.support import NOOP, make_failed, make_running

CONFIRM = {"X-Confirm": "true"}
HOUR_MS = 3_600_000


def backdate(r, config, job_id, field, hours):
    """Make a job look created (js_created_ms) or started (js_started_ms) `hours` ago; no waiting in tests."""
    keys = Keys(config.key_prefix)
    when = redis_ms(r) - int(hours * HOUR_MS)
    r.hset(keys.job(job_id), field, when)
    if field == "js_created_ms":
        r.zadd(keys.created(r.hget(keys.job(job_id), "origin").decode()), {job_id: when})


@pytest.fixture
def stale(r, config, client, leases):
    """Queued jobs 3 h old (q1, q2, namespace a on q1) and 10 min old (q1); a job running for 3 h and one for
    10 min (q1)."""
    old = {name: client.enqueue(NOOP, queue=q, **opts).id
           for name, q, opts in (("q1", "q1", {}), ("q2", "q2", {}), ("ns_a", "q1", {"namespace": "a"}))}
    young = client.enqueue(NOOP, queue="q1").id
    for job_id in old.values():
        backdate(r, config, job_id, "js_created_ms", 3)
    backdate(r, config, young, "js_created_ms", 1 / 6)
    long_run = make_running(client, leases, queue="run")
    short_run = make_running(client, leases, queue="run")
    backdate(r, config, long_run, "js_started_ms", 3)
    backdate(r, config, short_run, "js_started_ms", 1 / 6)
    return {**old, "young": young, "long_run": long_run, "short_run": short_run}


def states(client, ids):
    return [client.get(j).state for j in ids]


def test_cancel_stale_dry_run_counts_and_changes_nothing(api, client, stale):
    out = api.post("/jobs/stale/cancel", json={"queued_for": 3600, "running_for": 3600, "dry_run": True}).get_json()
    assert (out["operation"], out["dry_run"], out["matched"], out["changed"]) == ("cancel_stale", True, 4, 0)
    assert out["details"] == {"queued": 3, "running": 1}
    assert sorted(out["sample"]) == sorted([stale["q1"], stale["q2"], stale["ns_a"], stale["long_run"]])
    assert states(client, stale.values()) == [State.QUEUED] * 4 + [State.RUNNING] * 2


def test_cancel_stale_cancels_old_queued_and_terminates_long_running(api, r, config, client, stale):
    out = api.post("/jobs/stale/cancel", json={"queued_for": 3600, "running_for": 3600}, headers=CONFIRM).get_json()
    assert (out["matched"], out["changed"]) == (4, 4)
    assert states(client, [stale["q1"], stale["q2"], stale["ns_a"], stale["long_run"]]) == [State.CANCELLED] * 4
    assert states(client, [stale["young"], stale["short_run"]]) == [State.QUEUED, State.RUNNING]
    keys = Keys(config.key_prefix)
    # Through its lease: revoked, and its worker told to stop it (terminate.lua).
    assert r.zscore(keys.leases, stale["long_run"]) is None
    assert r.lrange(f"{keys.prefix}terminate:host.1.w", 0, -1) == [stale["long_run"].encode()]
    assert api.post("/jobs/stale/cancel", json={"queued_for": 3600, "running_for": 3600},
                    headers=CONFIRM).get_json()["changed"] == 0  # safe to repeat


def test_cancel_stale_filters_by_queue_namespace_and_function(api, client, stale):
    out = api.post("/jobs/stale/cancel", json={"queued_for": 3600, "queue": "q1", "namespace": "a"},
                   headers=CONFIRM).get_json()
    assert out["changed"] == 1 and client.get(stale["ns_a"]).state == State.CANCELLED
    assert states(client, [stale["q1"], stale["q2"]]) == [State.QUEUED, State.QUEUED]
    assert api.post("/jobs/stale/cancel", json={"queued_for": 3600, "function": "tests.jobfuncs.add"},
                    headers=CONFIRM).get_json()["matched"] == 0
    assert api.post("/jobs/stale/cancel", json={"queued_for": 3600, "function": NOOP},
                    headers=CONFIRM).get_json()["changed"] == 2


def test_cancel_stale_only_running_leaves_queued_alone(api, client, stale):
    out = api.post("/jobs/stale/cancel", json={"running_for": 3600}, headers=CONFIRM).get_json()
    assert (out["changed"], out["details"]) == (1, {"queued": 0, "running": 1})
    assert client.get(stale["q1"]).state == State.QUEUED


def test_cancel_stale_accepts_the_ttl_sweep_body_of_other_admin_apis(api, client, stale):
    body = {"age_seconds": 3600, "runtime_seconds": 3600, "action": "cancel", "queue": "run"}
    out = api.post("/jobs/stale/cancel", json=body, headers=CONFIRM).get_json()
    assert out["changed"] == 1 and client.get(stale["long_run"]).state == State.CANCELLED


@pytest.mark.parametrize("body", [{}, {"dry_run": True}, {"queued_for": -1}, {"queued_for": "1h"},
                                  {"queued_for": 1, "age_seconds": 1}, {"running_for": 1, "runtime_seconds": 2},
                                  {"queued_for": 1, "action": "delete"}, {"queued_for": 1, "state": "failed"},
                                  {"queued_for": 1, "queue": "bad queue"}, {"queued_for": 1e12}])
def test_cancel_stale_bad_input_is_422_and_changes_nothing(api, client, stale, body):
    resp = api.post("/jobs/stale/cancel", json=body, headers=CONFIRM)
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "validation_error"
    assert states(client, stale.values()) == [State.QUEUED] * 4 + [State.RUNNING] * 2


def test_cancel_stale_needs_confirmation_and_is_audited(api, client, stale):
    assert api.post("/jobs/stale/cancel", json={"queued_for": 3600}).status_code == 428
    assert client.get(stale["q1"]).state == State.QUEUED
    api.post("/jobs/stale/cancel", json={"queued_for": 3600}, headers=CONFIRM)
    entry = api.get("/audit").get_json()["entries"][0]
    assert (entry["action"], entry["params"], entry["counts"]["changed"]) == (
        "bulk.cancel_stale", {"queued_for": 3600}, 3)


def test_cancel_stale_with_a_namespace_key_stays_in_its_namespace(api, client, stale, make_key):
    key = api.as_key(make_key("jobs:admin", namespaces=["a"]))
    assert key.post("/jobs/stale/cancel", json={"queued_for": 3600}, headers=CONFIRM).get_json()["changed"] == 1
    assert states(client, [stale["ns_a"], stale["q1"]]) == [State.CANCELLED, State.QUEUED]


# -- the expired-job sweep: its own name, the old one kept as a deprecated alias -------------------------


@pytest.mark.parametrize("path", ["/jobs/expired/delete", "/jobs/ttl/sweep"])
def test_expired_delete_and_its_alias_delete_expired_jobs(api, r, config, client, leases, path):
    job_id = make_failed(client, leases)
    r.zadd(Keys(config.key_prefix).failed("default"), {job_id: 1})  # its failure TTL ran out long ago
    assert api.post(path, json={}).status_code == 428
    out = api.post(path, json={}, headers=CONFIRM).get_json()
    assert (out["operation"], out["changed"]) == ("ttl_sweep", 1)
    assert api.get(f"/jobs/{job_id}").status_code == 404


def test_the_old_path_is_marked_deprecated_in_openapi(api):
    paths = api.as_key(None).http.get("/api/v1/openapi.json").get_json()["paths"]
    assert paths["/api/v1/jobs/ttl/sweep"]["post"].get("deprecated") is True
    assert "deprecated" not in paths["/api/v1/jobs/expired/delete"]["post"]
    assert "/api/v1/jobs/stale/cancel" in paths


# -- prune: several states, days, quarantined jobs only when named -----------------------------------------


@pytest.fixture
def ended(r, config, client, leases):
    failed = make_failed(client, leases)
    cfg = config.with_(max_lease_losses=1)
    quarantined = client.enqueue(NOOP).id
    assert Leases(r, cfg).claim(["default"], "w").job_id == quarantined
    r.zadd(Keys(config.key_prefix).leases, {quarantined: 0})  # its lease is long gone
    assert Reaper(r, cfg).run_once().quarantined == 1
    cancelled = client.enqueue(NOOP).id
    client.cancel(cancelled)
    return {"failed": failed, "quarantined": quarantined, "cancelled": cancelled}


def exists(api, ids):
    return [api.get(f"/jobs/{j}").status_code == 200 for j in ids]


def test_prune_without_a_state_keeps_quarantined_jobs(api, ended):
    out = api.post("/jobs/prune", json={}, headers=CONFIRM).get_json()
    assert out["changed"] == 2
    assert exists(api, ended.values()) == [False, True, False]


def test_prune_of_named_quarantined_jobs_deletes_them(api, ended):
    assert api.post("/jobs/prune", json={"state": "quarantined"}, headers=CONFIRM).get_json()["changed"] == 1
    assert exists(api, ended.values()) == [True, False, True]


@pytest.mark.parametrize("field", ["states", "statuses"])
def test_prune_takes_a_list_of_states(api, ended, field):
    out = api.post("/jobs/prune", json={field: ["failed", "quarantined"]}, headers=CONFIRM).get_json()
    assert out["changed"] == 2
    assert exists(api, ended.values()) == [False, False, True]


def test_prune_takes_an_age_in_days(api, r, config, ended):
    keys = Keys(config.key_prefix)
    r.hset(keys.job(ended["failed"]), "js_ended_ms", redis_ms(r) - 31 * 24 * HOUR_MS)
    body = {"statuses": ["completed", "failed", "cancelled"], "older_than_days": 30}
    assert api.post("/jobs/prune", json={**body, "dry_run": True}).get_json()["matched"] == 1
    assert api.post("/jobs/prune", json=body, headers=CONFIRM).get_json()["changed"] == 1
    assert exists(api, ended.values()) == [False, True, True]


@pytest.mark.parametrize("body", [{"states": []}, {"states": ["queued"]}, {"states": "failed"},
                                  {"state": "failed", "states": ["failed"]}, {"older_than_days": -1},
                                  {"older_than": 60, "older_than_days": 1}, {"older_than_days": 1e9},
                                  {"statuses": ["failed"] * 5}])
def test_prune_bad_input_is_422_and_changes_nothing(api, ended, body):
    resp = api.post("/jobs/prune", json=body, headers=CONFIRM)
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "validation_error"
    assert exists(api, ended.values()) == [True, True, True]


# -- integrity sweep: a scan unless fix; scoped by queue and namespace -------------------------------------


def lose_lane_place(r, client, queue="default", **options):
    job_id = client.enqueue(NOOP, queue=queue, **options).id
    r.lrem(f"rq:queue:{queue}", 0, job_id)  # the job lost its place in its lane
    return job_id


def test_integrity_sweep_reports_only_by_default(api, r, client):
    job_id = lose_lane_place(r, client)
    for body in ({}, {"fix": True, "dry_run": True}):
        out = api.post("/jobs/integrity/sweep", json=body).get_json()
        assert (out["dry_run"], out["report"]["fixed"], out["report"]["counts"]["orphan"]) == (True, False, 1)
    assert r.lrange("rq:queue:default", 0, -1) == []
    assert api.post("/jobs/integrity/sweep", json={"fix": True}).status_code == 428
    out = api.post("/jobs/integrity/sweep", json={"fix": True}, headers=CONFIRM).get_json()
    assert (out["dry_run"], out["report"]["fixed"]) == (False, True)
    assert r.lrange("rq:queue:default", 0, -1) == [job_id.encode()]


def test_integrity_sweep_scoped_by_queue_fixes_only_that_queue(api, r, client):
    in_q1, in_q2 = lose_lane_place(r, client, "q1"), lose_lane_place(r, client, "q2")
    out = api.post("/jobs/integrity/sweep", json={"queue": "q1"}).get_json()["report"]
    assert (out["counts"]["orphan"], out["samples"]["orphan"]) == (1, [in_q1])
    api.post("/jobs/integrity/sweep", json={"queue": "q1", "fix": True}, headers=CONFIRM)
    assert (r.llen("rq:queue:q1"), r.llen("rq:queue:q2")) == (1, 0)
    assert api.post("/jobs/integrity/sweep", json={}).get_json()["report"]["samples"]["orphan"] == [in_q2]


def test_integrity_sweep_scoped_by_namespace_fixes_only_that_namespace(api, r, client):
    mine, other = lose_lane_place(r, client, namespace="a"), lose_lane_place(r, client, namespace="b")
    out = api.post("/jobs/integrity/sweep", json={"namespace": "a"}).get_json()["report"]
    assert out["samples"]["orphan"] == [mine] and out["total"] == 1
    api.post("/jobs/integrity/sweep", json={"namespace": "a", "fix": True}, headers=CONFIRM)
    assert r.lrange("rq:queue:default", 0, -1) == [mine.encode()]
    assert api.post("/jobs/integrity/sweep", json={}).get_json()["report"]["samples"]["orphan"] == [other]


def test_integrity_sweep_scoped_by_namespace_judges_its_stale_leases_and_gauges(api, r, config, client):
    keys = Keys(config.key_prefix)
    mine, other = client.enqueue(NOOP, namespace="a").id, client.enqueue(NOOP, namespace="b").id
    r.zadd(keys.leases, {mine: 1, other: 1})  # queued jobs in the lease index
    groups = [g.decode() for g in r.smembers(keys.groups)]
    for g in groups:
        r.hincrby(keys.count(g), "queued", 5)  # every gauge drifts
    out = api.post("/jobs/integrity/sweep", json={"namespace": "a"}).get_json()["report"]
    assert (out["samples"]["stale_lease"], out["counts"]["gauge_drift"]) == ([mine], 1)
    api.post("/jobs/integrity/sweep", json={"namespace": "a", "fix": True}, headers=CONFIRM)
    assert (r.zscore(keys.leases, mine), r.zscore(keys.leases, other)) == (None, 1)
    out = api.post("/jobs/integrity/sweep", json={}).get_json()["report"]
    assert (out["samples"]["stale_lease"], out["counts"]["gauge_drift"]) == ([other], 1)


@pytest.mark.parametrize("body", [{"fix": "yes"}, {"queue": "bad queue"}, {"namespace": ""}, {"scope": "all"}])
def test_integrity_sweep_bad_input_is_422_and_changes_nothing(api, r, client, body):
    lose_lane_place(r, client)
    resp = api.post("/jobs/integrity/sweep", json={**body, "fix": True} if "fix" not in body else body,
                    headers=CONFIRM)
    assert resp.status_code == 422
    assert r.llen("rq:queue:default") == 0


def test_integrity_sweep_with_a_queue_key_stays_in_its_queue(api, r, client, make_key):
    lose_lane_place(r, client, "q1")
    lose_lane_place(r, client, "q2")
    key = api.as_key(make_key("jobs:admin", queues=["q1"]))
    assert key.post("/jobs/integrity/sweep", json={"queue": "q2"}).status_code == 403
    out = key.post("/jobs/integrity/sweep", json={"fix": True}, headers=CONFIRM).get_json()["report"]
    assert out["counts"]["orphan"] == 1
    assert (r.llen("rq:queue:q1"), r.llen("rq:queue:q2")) == (1, 0)
