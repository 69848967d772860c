"""Every state transition, driven through the core API against the real Redis."""
from __future__ import annotations

import time

import pytest
from rq.job import Job as RQJob

from jobsvc import LeaseLost, NotFound, State, WrongState
from jobsvc.config import Config
from jobsvc.engine.leases import Leases
from jobsvc.maintenance.reaper import Reaper
from jobsvc.scheduling.promotion import Promoter

NOOP = "tests.jobfuncs.noop"


def until(fn, timeout=5.0):
    """Poll fn until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


@pytest.fixture
def leases(r, config):
    return Leases(r, config)


def expire_lease(r, client, leases, reaper_config=None):
    """Claim a job with a 1 ms lease and reap it once Redis time has passed its expiry."""
    lease = leases.claim(["default"], "w1", lease_ttl=0.001)
    reaper = Reaper(r, reaper_config or client.config)
    until(lambda: reaper.run_once().total)
    return lease


def test_enqueue_makes_a_queued_job(client):
    e = client.enqueue(NOOP)
    assert e.created
    assert client.get(e.id).state == State.QUEUED


def test_delayed_enqueue_makes_a_scheduled_job(client):
    e = client.enqueue(NOOP, delay=30)
    info = client.get(e.id)
    assert info.state == State.SCHEDULED
    assert info.due_ms - info.created_ms == 30_000


def test_promote_moves_due_job_to_queued(client, r):
    e = client.enqueue(NOOP, delay=0.05)
    promoter = Promoter(r, client.config)
    until(lambda: promoter.run_once().promoted)
    assert client.get(e.id).state == State.QUEUED


def test_promote_never_runs_a_job_early(client, r):
    e = client.enqueue(NOOP, delay=0.2)
    res = Promoter(r, client.config).run_once()
    assert res.promoted == 0
    assert res.next_due_ms == client.get(e.id).due_ms
    assert client.get(e.id).state == State.SCHEDULED


def test_claim_leases_the_job(client, leases):
    e = client.enqueue(NOOP)
    lease = leases.claim(["default"], "w1")
    info = client.get(e.id)
    assert (lease.job_id, info.state, info.attempts, info.worker) == (e.id, State.RUNNING, 1, "w1")
    assert info.lease_expires_ms == lease.expires_ms


def test_claim_on_empty_queues_returns_none(client, leases):
    assert leases.claim(["default", "other"], "w1") is None


def test_complete_stores_result_and_history(client, leases):
    e = client.enqueue("tests.jobfuncs.add", 1, 2)
    lease = leases.claim(["default"], "w1")
    leases.complete(lease, 3, "w1", 1.0, 2.0)
    assert client.get(e.id).state == State.COMPLETED
    assert client.result(e.id) == 3
    assert [run["outcome"] for run in client.runs(e.id)] == ["completed"]


def test_complete_with_stale_token_is_rejected_and_writes_nothing(client, leases, r):
    e = client.enqueue(NOOP)
    lease = leases.claim(["default"], "w1")
    lease.token = "not-the-token"
    with pytest.raises(LeaseLost):
        leases.complete(lease, "late", "w1", 1.0, 2.0)
    assert client.get(e.id).state == State.RUNNING
    assert r.xlen(f"rq:results:{e.id}") == 0


def test_failure_with_attempts_left_schedules_a_retry(client, leases):
    e = client.enqueue(NOOP, max_attempts=3)
    lease = leases.claim(["default"], "w1")
    assert leases.fail(lease, RuntimeError("x"), "tb") == "scheduled"
    info = client.get(e.id)
    assert info.state == State.SCHEDULED and info.attempts == 1
    assert client.runs(e.id)[0]["outcome"] == "retrying"


def test_failure_of_last_attempt_fails_the_job_with_every_error_kept(client, leases, r):
    e = client.enqueue(NOOP, max_attempts=2, backoff="fixed")
    r.hset(f"rq:job:{e.id}", "js_backoff_base", "0")  # retry due at once
    promoter = Promoter(r, client.config)
    for n in (1, 2):
        lease = until(lambda: promoter.run_once() and leases.claim(["default"], "w1"))
        leases.fail(lease, ValueError(f"bad {n}"), f"Traceback {n}")
    info = client.get(e.id)
    assert info.state == State.FAILED
    runs = client.runs(e.id)
    assert [(x["exc_type"], x["message"], x["traceback"]) for x in runs] == [
        ("ValueError", "bad 1", "Traceback 1"), ("ValueError", "bad 2", "Traceback 2")]
    assert r.zscore("rq:failed:default", e.id) is not None


def test_non_retryable_failure_fails_at_once(client, leases):
    e = client.enqueue(NOOP, max_attempts=5)
    lease = leases.claim(["default"], "w1")
    assert leases.fail(lease, RuntimeError("no"), "", retryable=False) == "failed"
    assert client.get(e.id).state == State.FAILED


def test_expired_lease_is_requeued_once_with_attempt_counted(client, leases, r):
    e = client.enqueue(NOOP, max_attempts=3)
    expire_lease(r, client, leases)
    info = client.get(e.id)
    assert (info.state, info.attempts, info.lease_losses) == (State.QUEUED, 1, 1)
    assert Reaper(r, client.config).run_once().total == 0
    assert r.lrange("rq:queue:default", 0, -1) == [e.id.encode()]
    assert client.runs(e.id)[0]["outcome"] == "lease_lost"


def test_expired_lease_on_last_attempt_fails_the_job(client, leases, r):
    e = client.enqueue(NOOP, max_attempts=1)
    expire_lease(r, client, leases)
    assert client.get(e.id).state == State.FAILED


def test_job_losing_too_many_leases_is_quarantined(client, leases, r):
    e = client.enqueue(NOOP, max_attempts=10)
    for _ in range(client.config.max_lease_losses):
        expire_lease(r, client, leases)
    assert client.get(e.id).state == State.QUARANTINED
    assert r.zscore(f"{client.config.key_prefix}quarantined:default", e.id) is not None
    assert r.ttl(f"rq:job:{e.id}") == -1  # kept until an operator decides


def test_late_outcome_after_reap_is_rejected(client, leases, r):
    e = client.enqueue(NOOP)
    lease = expire_lease(r, client, leases)
    with pytest.raises(LeaseLost):
        leases.complete(lease, "late", "w1", 1.0, 2.0)
    assert client.get(e.id).state == State.QUEUED


def test_heartbeat_extends_a_held_lease(client, leases, r):
    client.enqueue(NOOP)
    lease = leases.claim(["default"], "w1", lease_ttl=1)
    first = lease.expires_ms
    until(lambda: leases.renew([lease], lease_ttl=5) == [] and lease.expires_ms > first + 3000)
    assert r.zscore(f"{client.config.key_prefix}leases", lease.job_id) == lease.expires_ms


def test_heartbeat_reports_a_lost_lease(client, leases, r):
    client.enqueue(NOOP)
    lease = expire_lease(r, client, leases)
    assert leases.renew([lease]) == [lease.job_id]


def test_handback_requeues_at_front_without_counting_the_attempt(client, leases, r):
    first = client.enqueue(NOOP)
    second = client.enqueue(NOOP)
    lease = leases.claim(["default"], "w1")
    leases.handback(lease, "w1")
    info = client.get(first.id)
    assert (info.state, info.attempts) == (State.QUEUED, 0)
    assert r.lrange("rq:queue:default", 0, -1) == [first.id.encode(), second.id.encode()]


@pytest.mark.parametrize("make_terminal", ["failed", "quarantined", "cancelled"])
def test_requeue_resets_attempts_and_keeps_history(client, leases, r, make_terminal):
    e = client.enqueue(NOOP, max_attempts=1)
    if make_terminal == "failed":
        leases.fail(leases.claim(["default"], "w1"), RuntimeError("x"), "tb")
    elif make_terminal == "quarantined":
        cfg = Config(redis_url=client.config.redis_url, max_lease_losses=1)
        expire_lease(r, client, leases, cfg)
    else:
        client.cancel(e.id)
    history = len(client.runs(e.id))
    client.requeue(e.id)
    info = client.get(e.id)
    assert (info.state, info.attempts, info.lease_losses) == (State.QUEUED, 0, 0)
    assert len(client.runs(e.id)) == history
    assert leases.claim(["default"], "w1").job_id == e.id


def test_requeue_of_a_queued_job_is_a_wrong_state(client):
    e = client.enqueue(NOOP)
    with pytest.raises(WrongState) as err:
        client.requeue(e.id)
    assert err.value.state == "queued"


def test_requeue_of_unknown_job_is_not_found(client):
    with pytest.raises(NotFound):
        client.requeue("nope")


def test_cancel_removes_a_queued_job_from_its_lane(client, leases):
    e = client.enqueue(NOOP)
    client.cancel(e.id)
    assert client.get(e.id).state == State.CANCELLED
    assert leases.claim(["default"], "w1") is None


def test_cancel_unschedules_a_delayed_job(client, r):
    e = client.enqueue(NOOP, delay=60)
    client.cancel(e.id)
    assert client.get(e.id).state == State.CANCELLED
    assert r.zscore(f"{client.config.key_prefix}scheduled", e.id) is None


def test_cancel_of_a_running_job_is_a_wrong_state(client, leases):
    e = client.enqueue(NOOP)
    leases.claim(["default"], "w1")
    with pytest.raises(WrongState):
        client.cancel(e.id)


def test_claim_skips_ids_whose_job_is_gone(client, leases, r):
    gone = client.enqueue(NOOP)
    kept = client.enqueue(NOOP)
    r.delete(f"rq:job:{gone.id}")
    assert leases.claim(["default"], "w1").job_id == kept.id


def test_claim_skips_paused_queue(client, leases):
    client.enqueue(NOOP, queue="a")
    e = client.enqueue(NOOP, queue="b")
    client.pause("a")
    assert leases.claim(["a", "b"], "w1").job_id == e.id
    assert leases.claim(["a", "b"], "w1") is None
    client.resume("a")
    assert leases.claim(["a", "b"], "w1") is not None


def test_plain_rq_reads_a_completed_jobsvc_job(client, leases, r):
    e = client.enqueue("tests.jobfuncs.add", 2, 5, result_ttl=100)
    leases.complete(leases.claim(["default"], "w1"), 7, "w1", 1.0, 2.0)
    job = RQJob.fetch(e.id, connection=r)
    assert (job.get_status(), job.return_value(), job.func_name, job.args) == ("finished", 7, "tests.jobfuncs.add",
                                                                               (2, 5))
    assert r.ttl(f"rq:job:{e.id}") == -1  # no Redis expiry: the TTL sweep deletes it at 100 s
    assert r.zscore("rq:finished:default", e.id) <= time.time() + 100


def test_result_ttl_zero_deletes_the_job_when_done(client, leases, r):
    e = client.enqueue(NOOP, result_ttl=0)
    leases.complete(leases.claim(["default"], "w1"), None, "w1", 1.0, 2.0)
    assert not r.exists(f"rq:job:{e.id}")


def test_cancelling_a_job_enqueued_by_plain_rq_counts_it(client, r):
    import rq

    from jobsvc.engine.stats import counts_by

    job = rq.Queue("legacy", connection=r).enqueue("tests.jobfuncs.add", 2, 3)
    client.cancel(job.id)
    assert client.stats("legacy")["cancelled"] == 1
    assert counts_by(r, client.keys, "queue")["legacy"]["cancelled"] == 1
    assert r.hget(f"rq:job:{job.id}", "js_group") == b"legacy|default|tests.jobfuncs.add"
