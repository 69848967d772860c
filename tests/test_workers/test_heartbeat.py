"""The worker's heartbeat pass in-process: lease renewal, hung jobs, grace period."""
from __future__ import annotations

from jobsvc.engine.leases import Leases
from workers.heartbeat import Heartbeat


def make(r, config, lease, started, deadline=None, calls=None):
    calls = calls if calls is not None else []
    return Heartbeat(r, config, "rq:worker:test", lambda: (lease, started), lambda: calls.append("grace"),
                     lambda: deadline)


def test_heartbeat_renews_the_running_jobs_lease(client, r, config):
    client.enqueue("tests.jobfuncs.noop")
    lease = Leases(r, config).claim(["default"], "test", lease_ttl=1)
    before = lease.expires_ms
    make(r, config, lease, started=0.0).run_once(now=0.5)
    assert lease.expires_ms >= before - 1000 + int(config.lease_ttl * 1000)
    assert r.zscore(f"{config.key_prefix}leases", lease.job_id) == lease.expires_ms


def test_heartbeat_stops_renewing_a_job_hung_past_its_timeout(client, r, config):
    client.enqueue("tests.jobfuncs.noop", timeout=1)
    lease = Leases(r, config).claim(["default"], "test", lease_ttl=1)
    before = r.zscore(f"{config.key_prefix}leases", lease.job_id)
    make(r, config, lease, started=0.0).run_once(now=1 + config.hung_grace + 1)
    assert r.zscore(f"{config.key_prefix}leases", lease.job_id) == before


def test_heartbeat_refreshes_worker_registration(r, config):
    make(r, config, None, 0.0).run_once(now=1.0)
    assert r.hget("rq:worker:test", "last_heartbeat")
    assert r.ttl("rq:worker:test") > 0


def test_grace_over_fires_only_past_the_deadline_with_a_job(client, r, config):
    client.enqueue("tests.jobfuncs.noop")
    lease = Leases(r, config).claim(["default"], "w")
    calls: list[str] = []
    make(r, config, lease, 0.0, deadline=10.0, calls=calls).run_once(now=5.0)
    assert calls == []
    make(r, config, lease, 0.0, deadline=10.0, calls=calls).run_once(now=10.0)
    assert calls == ["grace"]
    make(r, config, None, 0.0, deadline=10.0, calls=calls).run_once(now=11.0)
    assert calls == ["grace"]


def test_worker_maintenance_reaps_dead_peers(client, r, config):
    e = client.enqueue("tests.jobfuncs.noop")
    Leases(r, config).claim(["default"], "dead-peer", lease_ttl=0.001)
    hb = make(r, config, None, 0.0)
    now = 0.0
    while client.get(e.id).state.value != "queued":
        now += config.worker_maintenance_interval  # each pass is a maintenance pass
        assert now < 1000 * config.worker_maintenance_interval, "never reaped"
        hb.run_once(now=now)


def test_heartbeat_publishes_rq_worker_fields(client, r, config):
    client.enqueue("tests.jobfuncs.noop")
    lease = Leases(r, config).claim(["default"], "w")
    Heartbeat(r, config, "rq:worker:test", lambda: (lease, 0.0), lambda: None, lambda: None,
              counts=lambda: (7, 2)).run_once(now=1.0)
    fields = {k.decode(): v.decode() for k, v in r.hgetall("rq:worker:test").items()}
    assert (fields["state"], fields["current_job"]) == ("busy", lease.job_id)
    assert (fields["successful_job_count"], fields["failed_job_count"]) == ("7", "2")


def test_heartbeat_does_not_renew_a_lease_another_holder_has(client, r, config):
    client.enqueue("tests.jobfuncs.noop")
    lease = Leases(r, config).claim(["default"], "someone-else", lease_ttl=1)
    before = r.zscore(f"{config.key_prefix}leases", lease.job_id)
    make(r, config, lease, started=0.0).run_once(now=0.5)
    assert r.zscore(f"{config.key_prefix}leases", lease.job_id) == before


def test_a_worker_named_with_colons_renews_its_own_leases(client, r, config):
    client.enqueue("tests.jobfuncs.noop")
    lease = Leases(r, config).claim(["default"], "api:1", lease_ttl=1)
    before = lease.expires_ms
    Heartbeat(r, config, "rq:worker:api:1", lambda: (lease, 0.0), lambda: None, lambda: None).run_once(now=0.5)
    assert r.zscore(f"{config.key_prefix}leases", lease.job_id) > before


def _beat_on_lost_lease(client, r, config, in_job):
    """One beat over a running job whose lease another holder took (as after an expiry and a reclaim), with the
    job's code still running or not: the lease and the job ids the beat asked to stop."""
    client.enqueue("tests.jobfuncs.noop")
    lease = Leases(r, config).claim(["default"], "test", lease_ttl=5)
    r.hset(f"rq:job:{lease.job_id}", "js_token", "someone-else")
    stopped = []
    Heartbeat(r, config, "rq:worker:test", lambda: (lease, 0.0), lambda: None, lambda: None,
              on_lease_lost=stopped.append, in_job=lambda: in_job).run_once(now=1.0)
    return lease, stopped


def test_a_lease_lost_while_job_code_runs_stops_that_code(client, r, config, caplog):
    lease, stopped = _beat_on_lost_lease(client, r, config, in_job=True)
    assert stopped == [lease.job_id]
    assert "lease lost while running (expired or revoked): stopping its code" in caplog.text


def test_a_lease_ended_by_the_jobs_own_outcome_is_not_reported_lost(client, r, config, caplog):
    """The outcome was sent (job code left) and accepted between the claim and this beat: no warning."""
    _, stopped = _beat_on_lost_lease(client, r, config, in_job=False)
    assert stopped == [] and "lease lost" not in caplog.text
