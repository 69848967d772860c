"""jobsvc.http.pull: claim / heartbeat / ack for pull workers, on the same fenced scripts and reaper as workers."""
from __future__ import annotations

import pytest

from jobsvc import State, defaults
from jobsvc.admin.bulk import integrity_sweep
from jobsvc.admin.listing import JobFilter, list_jobs
from jobsvc.engine.backoff import Backoff
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases
from jobsvc.errors import LeaseLost, NotFound, ValidationError
from jobsvc.http import pull
from jobsvc.maintenance.reaper import Reaper
from jobsvc.scheduling.promotion import Promoter
from tests.conftest import redis_ms, wait_for

NOOP = "tests.jobfuncs.noop"
SHORT = 0.05  # seconds: a lease that runs out within the test (the API's minimum is 1 s)


def snapshot(r, job_id: str) -> tuple:
    """Everything a finish or heartbeat could touch for one job: hash, lease index, history, results, counters."""
    keys = Keys()
    return (r.hgetall(Keys.job(job_id)), r.zscore(keys.leases, job_id), r.lrange(keys.runs(job_id), 0, -1),
            r.xlen(Keys.results(job_id)), r.hgetall(keys.stats("pq")))


def expire(r, lease) -> None:
    """Wait (bounded) until Redis time is past the lease, then reap."""
    wait_for(lambda: redis_ms(r) > lease.expires_ms, 3, "lease expiry")


def test_claim_takes_up_to_count_jobs_in_one_call(r, client, config):
    ids = [client.enqueue_pull(NOOP, queue="pq").id for _ in range(5)]
    first = pull.claim(r, config, "pq", count=3, worker="w1")
    assert [lease.job_id for lease in first] == ids[:3]
    assert len({lease.token for lease in first}) == 3
    assert all(client.state(i) == State.RUNNING for i in ids[:3])
    assert all(lease.attempt == 1 and lease.queue == "pq" for lease in first)
    second = pull.claim(r, config, "pq", count=5)
    assert [lease.job_id for lease in second] == ids[3:]
    assert pull.claim(r, config, "pq", count=5) == []
    assert client.get(ids[0]).worker == "w1"


def test_claim_sets_the_visibility_timeout(r, client, config):
    client.enqueue_pull(NOOP, queue="pq")
    before = redis_ms(r)
    (lease,) = pull.claim(r, config, "pq", visibility_timeout=120)
    assert before + 120_000 <= lease.expires_ms <= redis_ms(r) + 120_000
    assert r.zscore(Keys().leases, lease.job_id) == lease.expires_ms


def test_a_claim_never_hands_out_a_job_twice(r, client, config):
    ids = {client.enqueue_pull(NOOP, queue="pq").id for _ in range(50)}
    seen: list[str] = []
    while True:
        got = pull.claim(r, config, "pq", count=7)
        if not got:
            break
        seen += [lease.job_id for lease in got]
    assert sorted(seen) == sorted(ids)


def test_paused_queue_gives_nothing(r, client, config):
    client.enqueue_pull(NOOP, queue="pq")
    client.pause("pq")
    assert pull.claim(r, config, "pq") == []


def test_heartbeat_extends_the_lease(r, client, config):
    client.enqueue_pull(NOOP, queue="pq")
    (lease,) = pull.claim(r, config, "pq", visibility_timeout=5)
    expires = pull.heartbeat(r, config, lease.job_id, lease.token, visibility_timeout=300)
    assert expires >= lease.expires_ms + 290_000
    assert r.zscore(Keys().leases, lease.job_id) == expires
    assert client.get(lease.job_id).lease_expires_ms == expires


@pytest.mark.parametrize("action", ["heartbeat", "complete", "fail"])
def test_a_wrong_token_changes_nothing(r, client, config, action):
    job_id = client.enqueue_pull(NOOP, queue="pq").id
    (lease,) = pull.claim(r, config, "pq")
    before = snapshot(r, job_id)
    with pytest.raises(LeaseLost) as err:
        _act(r, config, action, job_id, "f" * 32)
    assert err.value.state == "running"
    assert snapshot(r, job_id) == before
    # The real token still works afterwards.
    pull.ack(r, config, job_id, lease.token, "completed")
    assert client.state(job_id) == State.COMPLETED


@pytest.mark.parametrize("action", ["heartbeat", "fail"])
def test_a_finished_jobs_token_is_stale(r, client, config, action):
    job_id = client.enqueue_pull(NOOP, queue="pq").id
    (lease,) = pull.claim(r, config, "pq")
    assert pull.ack(r, config, job_id, lease.token, "completed", result=1).state == "completed"
    before = snapshot(r, job_id)
    with pytest.raises(LeaseLost) as err:
        _act(r, config, action, job_id, lease.token)
    assert err.value.state == "completed"
    assert snapshot(r, job_id) == before


def test_the_same_ack_again_answers_the_recorded_outcome(r, client, config):
    job_id = client.enqueue_pull(NOOP, queue="pq").id
    (lease,) = pull.claim(r, config, "pq")
    assert pull.ack(r, config, job_id, lease.token, "completed", result=1).state == "completed"
    before = snapshot(r, job_id)
    assert pull.ack(r, config, job_id, lease.token, "completed", result=2) == pull.AckResult(job_id, "completed")
    assert snapshot(r, job_id) == before


@pytest.mark.parametrize("action", ["heartbeat", "complete", "fail"])
def test_no_such_job_is_not_found(r, config, action):
    with pytest.raises(NotFound):
        _act(r, config, action, "nope", "f" * 32)


def _act(r, config, action: str, job_id: str, token: str) -> object:
    if action == "heartbeat":
        return pull.heartbeat(r, config, job_id, token)
    if action == "complete":
        return pull.ack(r, config, job_id, token, "completed", result={"x": 1})
    return pull.ack(r, config, job_id, token, "failed", error="boom")


def test_completed_ack_stores_a_json_result(r, client, config):
    job_id = client.enqueue_pull(NOOP, queue="pq").id
    (lease,) = pull.claim(r, config, "pq", worker="pw")
    res = pull.ack(r, config, job_id, lease.token, "completed", result={"rows": [1, 2], "ok": True})
    assert res == pull.AckResult(job_id, "completed", None)
    assert client.result(job_id) == {"rows": [1, 2], "ok": True}
    info = client.get(job_id)
    assert info.state == State.COMPLETED and info.lease_expires_ms is None
    assert r.zscore(Keys().leases, job_id) is None
    assert client.runs(job_id)[-1]["worker"] == "pw"


def test_retryable_failure_is_scheduled_after_its_backoff(r, client, config):
    job_id = client.enqueue_pull(NOOP, queue="pq", max_attempts=3, backoff=Backoff("fixed", 10, 60, jitter=False)).id
    (lease,) = pull.claim(r, config, "pq")
    now = redis_ms(r)
    res = pull.ack(r, config, job_id, lease.token, "failed", error={"type": "Timeout", "message": "upstream slow"})
    assert res.state == "scheduled"
    assert now + 10_000 <= res.due_ms <= redis_ms(r) + 10_000
    info = client.get(job_id)
    assert info.state == State.SCHEDULED and info.due_ms == res.due_ms
    assert info.error == "Timeout: upstream slow"
    run = client.runs(job_id)[0]
    assert (run["outcome"], run["exc_type"], run["message"], run["attempt"]) == ("retrying", "Timeout",
                                                                                 "upstream slow", 1)


def test_non_retryable_failure_fails_at_once(r, client, config):
    job_id = client.enqueue_pull(NOOP, queue="pq", max_attempts=5).id
    (lease,) = pull.claim(r, config, "pq")
    res = pull.ack(r, config, job_id, lease.token, "failed", error="bad input", retryable=False)
    assert res == pull.AckResult(job_id, "failed", None)
    info = client.get(job_id)
    assert info.state == State.FAILED and info.error == "Error: bad input"


def test_last_attempt_failure_fails(r, client, config):
    job_id = client.enqueue_pull(NOOP, queue="pq", max_attempts=1).id
    (lease,) = pull.claim(r, config, "pq")
    assert pull.ack(r, config, job_id, lease.token, "failed", error="boom").state == "failed"


def test_expired_lease_is_requeued_by_the_reaper_and_the_late_ack_rejected(r, client, config):
    job_id = client.enqueue_pull(NOOP, queue="pq", max_attempts=5).id
    (lease,) = pull.claim(r, config, "pq", visibility_timeout=SHORT)
    expire(r, lease)
    assert Reaper(r, config).run_once().requeued == 1
    info = client.get(job_id)
    assert info.state == State.QUEUED and info.attempts == 1 and info.lease_losses == 1
    assert client.runs(job_id)[0]["outcome"] == "lease_lost"
    before = snapshot(r, job_id)
    for action in ("complete", "fail", "heartbeat"):
        with pytest.raises(LeaseLost) as err:
            _act(r, config, action, job_id, lease.token)
        assert err.value.state == "queued"
    assert snapshot(r, job_id) == before
    (again,) = pull.claim(r, config, "pq")
    assert again.job_id == job_id and again.attempt == 2 and again.token != lease.token
    with pytest.raises(LeaseLost):
        pull.ack(r, config, job_id, lease.token, "completed")
    pull.ack(r, config, job_id, again.token, "completed")
    assert client.state(job_id) == State.COMPLETED


def test_a_heartbeat_keeps_the_job_from_the_reaper(r, client, config):
    job_id = client.enqueue_pull(NOOP, queue="pq").id
    (lease,) = pull.claim(r, config, "pq", visibility_timeout=SHORT)
    pull.heartbeat(r, config, job_id, lease.token, visibility_timeout=60)
    expire(r, lease)
    assert Reaper(r, config).run_once().total == 0
    assert client.state(job_id) == State.RUNNING


def test_repeated_lease_losses_quarantine_the_job(r, client, config):
    job_id = client.enqueue_pull(NOOP, queue="pq", max_attempts=10).id
    for loss in range(1, config.max_lease_losses + 1):
        (lease,) = pull.claim(r, config, "pq", visibility_timeout=SHORT)
        expire(r, lease)
        res = Reaper(r, config).run_once()
        assert (res.requeued, res.quarantined) == ((1, 0) if loss < config.max_lease_losses else (0, 1))
    info = client.get(job_id)
    assert info.state == State.QUARANTINED and info.lease_losses == config.max_lease_losses
    assert pull.claim(r, config, "pq") == []
    assert r.zscore(Keys().quarantined("pq"), job_id) is not None


def test_job_call_reads_function_args_payload_and_meta(r, client, config):
    job_id = client.enqueue_pull("tests.jobfuncs.add", 2, 3, queue="pq", meta={"who": "me"}).id
    r.hset(Keys.job(job_id), "js_payload", '{"url": "https://example.com", "n": [1]}')
    (lease,) = pull.claim(r, config, "pq")
    call = pull.job_call(lease)
    assert (call.function, call.args, call.kwargs) == ("tests.jobfuncs.add", (2, 3), {})
    assert call.payload == {"url": "https://example.com", "n": [1]}
    assert call.meta == {"who": "me"}


def test_job_call_of_unreadable_data(r, client, config):
    job_id = client.enqueue_pull(NOOP, queue="pq").id
    r.hset(Keys.job(job_id), "data", b"not a pickle")
    (lease,) = pull.claim(r, config, "pq")
    call = pull.job_call(lease)
    assert (call.function, call.args, call.kwargs, call.payload, call.meta) == ("<unreadable>", (), {}, None, None)


@pytest.mark.parametrize("kwargs", [{"count": 0}, {"count": 101}, {"visibility_timeout": 0},
                                    {"visibility_timeout": 3601}, {"queue": "bad queue"}, {"queue": "q\n"},
                                    {"count": True}])
def test_claim_validates(r, config, kwargs):
    args = {"queue": "pq", **kwargs}
    with pytest.raises(ValidationError):
        pull.claim(r, config, **args)


@pytest.mark.parametrize(("token", "status", "extra"), [
    ("", "completed", {}),  # an empty token would match a finished job's blanked one
    ("x" * 65, "completed", {}),
    ("t", "done", {}),
    ("t", "failed", {}),
    ("t", "failed", {"error": "e", "result": 1}),
    ("t", "completed", {"error": "e"}),
])
def test_ack_validates(r, config, token, status, extra):
    with pytest.raises(ValidationError):
        pull.ack(r, config, "job", token, status, **extra)


def test_heartbeat_refuses_an_empty_token(r, client, config):
    job_id = client.enqueue_pull(NOOP, queue="pq").id
    (lease,) = pull.claim(r, config, "pq")
    pull.ack(r, config, job_id, lease.token, "completed")
    with pytest.raises(ValidationError):
        pull.heartbeat(r, config, job_id, "")
    assert r.zscore(Keys().leases, job_id) is None


def test_error_parts():
    assert pull.error_parts("boom") == ("Error", "boom", "")
    assert pull.error_parts({"message": "m"}) == ("Error", "m", "")
    assert pull.error_parts({"type": "T", "message": "m", "traceback": "tb"}) == ("T", "m", "tb")


# -- only pull jobs are claimed, and only by pull claims ---------------------------------------------------


def test_a_pull_claim_never_takes_a_python_job(r, client, config):
    job_id = client.enqueue("tests.jobfuncs.add", 2, 3, queue="q", kwargs={}).id
    assert pull.claim(r, config, "q", count=5) == []
    info = client.get(job_id)
    assert (info.state, info.attempts, info.worker) == (State.QUEUED, 0, None)
    assert r.lrange(Keys().lane("q", 5), 0, -1) == [job_id.encode()]  # still first in its lane


def test_a_pull_claim_takes_the_pull_jobs_behind_python_jobs(r, client, config):
    python = [client.enqueue(NOOP, queue="q").id for _ in range(3)]
    pulled = [client.enqueue_pull(NOOP, queue="q").id for _ in range(2)]
    assert [lease.job_id for lease in pull.claim(r, config, "q", count=5)] == pulled
    assert all(client.state(i) == State.QUEUED for i in python)


def test_a_python_worker_never_takes_a_pull_job(r, client, config, run_worker):
    job_id = client.enqueue_pull("tests.jobfuncs.add", 2, 3, queue="q").id
    python = client.enqueue("tests.jobfuncs.add", 1, 1, queue="q").id
    assert Leases(r, config).claim(["q"], "w").job_id == python
    assert Leases(r, config).claim(["q"], "w") is None
    run_worker(queues=("q",))  # a burst worker ends when it finds nothing to claim
    info = client.get(job_id)
    assert (info.state, info.attempts) == (State.QUEUED, 0)
    assert [lease.job_id for lease in pull.claim(r, config, "q")] == [job_id]


def test_a_pull_job_waits_in_its_queues_pull_lane_under_its_own_priority(r, client, config):
    job_id = client.enqueue_pull(NOOP, queue="q", priority=3).id
    lane = Keys().lane("q", 3 + defaults.PULL_LANE_OFFSET)
    assert r.lrange(lane, 0, -1) == [job_id.encode()]
    assert client.get(job_id).priority == 3
    assert client.stats("q")["queued_now"] == 1
    assert [j.id for j in list_jobs(r, config, JobFilter(queue="q", state="queued"))[0]] == [job_id]
    client.patch(job_id, priority=8)  # a new priority keeps it a pull job
    assert r.lrange(Keys().lane("q", 8 + defaults.PULL_LANE_OFFSET), 0, -1) == [job_id.encode()]
    assert client.get(job_id).priority == 8
    assert Leases(r, config).claim(["q"], "w") is None


def test_pull_claims_follow_priority(r, client, config):
    low = client.enqueue_pull(NOOP, queue="q", priority=9).id
    high = client.enqueue_pull(NOOP, queue="q", priority=1).id
    assert [lease.job_id for lease in pull.claim(r, config, "q", count=2)] == [high, low]


def test_a_retried_pull_job_goes_back_to_its_pull_lane(r, client, config):
    job_id = client.enqueue_pull(NOOP, queue="q", max_attempts=3, backoff=Backoff("fixed", 0.001, 1, jitter=False)).id
    (lease,) = pull.claim(r, config, "q")
    assert pull.ack(r, config, job_id, lease.token, "failed", error="again").state == "scheduled"
    wait_for(lambda: Promoter(r, config).run_once().promoted, 3, "the retry to be due")
    assert Leases(r, config).claim(["q"], "w") is None
    (lease,) = pull.claim(r, config, "q", visibility_timeout=SHORT)
    expire(r, lease)
    assert Reaper(r, config).run_once().requeued == 1  # a lost lease puts it back in the pull lane too
    assert Leases(r, config).claim(["q"], "w") is None
    (lease,) = pull.claim(r, config, "q")
    assert pull.ack(r, config, job_id, lease.token, "failed", error="x", retryable=False).state == "failed"
    client.requeue(job_id)  # so does an operator's retry
    assert Leases(r, config).claim(["q"], "w") is None
    assert [lease.job_id for lease in pull.claim(r, config, "q")] == [job_id]


def test_pull_lanes_pass_the_integrity_sweep(r, client, config):
    client.enqueue_pull(NOOP, queue="q", priority=2)
    client.enqueue(NOOP, queue="q", priority=2)
    assert integrity_sweep(r, config).clean
