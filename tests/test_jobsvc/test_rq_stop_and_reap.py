"""terminate.lua's 'stop' mode (RQ's send_stop_job_command) and reap_expired.lua for jobs enqueued with RQ's own
API, driven in-process against the real Redis (the same with real worker processes: tests/test_rq_compat/
test_results_and_cancel.py and test_lost_workers.py)."""
from __future__ import annotations

import pytest
import redis
import rq
from rq import Retry
from rq.job import Dependency, Job
from rq.registry import FailedJobRegistry
from rq.results import Result

from jobsvc import State, ValidationError, WrongState
from jobsvc.config import Config
from jobsvc.engine import scripts
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases
from jobsvc.maintenance.reaper import Reaper
from tests.conftest import redis_ms, wait_for
from tests.test_rq_compat.gauge_check import assert_gauges_exact

ADD = "tests.jobfuncs.add"
NOOP = "tests.jobfuncs.noop"


@pytest.fixture
def leases(r, config):
    return Leases(r, config)


@pytest.fixture
def queue(r):
    return rq.Queue("default", connection=r)


def reap(r, config):
    reaper = Reaper(r, config)
    wait_for(lambda: reaper.run_once().total, 5, "the lease to be reaped")


def lose_lease(r, leases, config, queue="default"):
    """Claim the next job with a 1 ms lease and reap it once Redis time has passed the expiry."""
    lease = leases.claim([queue], "w1", lease_ttl=0.001)
    reap(r, config)
    return lease


# -- stop (RQ's send_stop_job_command) ---------------------------------------------------------------------

def test_stop_records_a_running_job_as_rq_does(client, leases, r, queue):
    job = queue.enqueue(ADD, 1, 2)
    lease = leases.claim(["default"], "w1")
    assert client.terminate(job.id, mode="stop") == "w1"
    rq_job = Job.fetch(job.id, connection=r)
    assert rq_job.get_status() == "stopped"
    assert job.id in FailedJobRegistry(queue=queue).get_job_ids()
    latest = rq_job.latest_result()
    assert (latest.type, latest.exc_string, latest.worker_name) == (
        Result.Type.FAILED, "Job stopped by user, work-horse terminated.", "w1")
    info = client.get(job.id)
    assert (info.state, info.error) == (State.FAILED, "JobStopped: by send_stop_job_command")
    assert client.runs(job.id)[-1]["outcome"] == "stopped"
    assert r.lrange(Keys().terminate("w1"), 0, -1) == [job.id.encode()]  # the worker is told to stop the code
    with pytest.raises(WrongState):
        leases.complete(lease, "late", "w1", 1.0, 2.0)
    assert not r.zscore("rq:canceled:default", job.id)
    assert_gauges_exact(r)


def test_stop_does_not_retry_or_release_dependents(client, leases, r, queue):
    job = queue.enqueue(ADD, 1, 2, retry=Retry(max=3))
    dependent = queue.enqueue(ADD, 3, 4, depends_on=Dependency(jobs=[job], allow_failure=True))
    leases.claim(["default"], "w1")
    client.terminate(job.id, mode="stop")
    assert Job.fetch(job.id, connection=r).retries_left == 3
    assert Job.fetch(dependent.id, connection=r).get_status() == "deferred"  # RQ: a stopped parent is never met


def test_stop_with_failure_ttl_0_deletes_the_job(client, leases, r, queue):
    job = queue.enqueue(ADD, 1, 2, failure_ttl=0)
    leases.claim(["default"], "w1")
    client.terminate(job.id, mode="stop")
    assert not r.exists(f"rq:job:{job.id}")
    assert job.id not in FailedJobRegistry(queue=queue).get_job_ids()
    assert_gauges_exact(r)


def test_terminate_by_an_operator_is_still_a_cancel(client, leases, r):
    e = client.enqueue(NOOP)
    leases.claim(["default"], "w1")
    client.terminate(e.id)
    assert client.get(e.id).state == State.CANCELLED
    assert r.zscore("rq:canceled:default", e.id) and not r.exists(f"rq:results:{e.id}")


def test_an_unknown_mode_is_refused_and_changes_nothing(client, leases, r, config):
    e = client.enqueue(NOOP)
    leases.claim(["default"], "w1")
    with pytest.raises(ValidationError):
        client.terminate(e.id, mode="kill")
    with pytest.raises(redis.ResponseError, match="mode must be terminate or stop"):
        scripts.call(r, "terminate", (), (config.key_prefix, e.id, "t", 60, "kill", ""))
    assert client.get(e.id).state == State.RUNNING


# -- lost leases of jobs enqueued with RQ's API --------------------------------------------------------------

def test_an_rq_job_is_never_quarantined_it_spends_retries(r, leases, queue, redis_url):
    config = Config(redis_url=redis_url, max_lease_losses=2)
    job = queue.enqueue(ADD, 1, 2, retry=Retry(max=3))
    for left in (2, 1, 0):
        lose_lease(r, leases, config)
        fetched = Job.fetch(job.id, connection=r)
        assert (fetched.get_status(), fetched.retries_left) == ("queued", left)
    lose_lease(r, leases, config)
    assert Job.fetch(job.id, connection=r).get_status() == "failed"
    assert job.id in FailedJobRegistry(queue=queue).get_job_ids()
    assert_gauges_exact(r)


def test_a_jobsvc_job_is_still_quarantined(r, leases, client, redis_url):
    config = Config(redis_url=redis_url, max_lease_losses=2, max_attempts=5)
    e = client.enqueue(NOOP, max_attempts=5)
    for _ in range(2):
        lose_lease(r, leases, config)
    assert client.get(e.id).state == State.QUARANTINED


def test_an_rq_retry_interval_schedules_the_retry(r, leases, queue, client, config):
    job = queue.enqueue(ADD, 1, 2, retry=Retry(max=2, interval=[30, 60]))
    before = redis_ms(r)
    lose_lease(r, leases, config)
    info = client.get(job.id)
    # RQ's indexing: interval[max(len - retries_left, 0)] with retries_left 2 before the retry: the first one
    assert info.state == State.SCHEDULED and 30_000 <= info.due_ms - before <= 32_000
    assert Job.fetch(job.id, connection=r).retries_left == 1
    assert_gauges_exact(r)


@pytest.mark.parametrize("front", [True, False])
def test_an_rq_retry_goes_to_the_front_only_with_enqueue_at_front(r, leases, queue, config, front):
    job = queue.enqueue(ADD, 1, 2, retry=Retry(max=1, enqueue_at_front=front))
    leases.claim(["default"], "w1", lease_ttl=0.001)
    other = queue.enqueue(ADD, 3, 4)
    reap(r, config)
    assert queue.get_job_ids() == ([job.id, other.id] if front else [other.id, job.id])


def test_an_rq_job_failed_for_good_releases_dependents_that_allow_failure(r, leases, queue, config):
    job = queue.enqueue(ADD, 1, 2)
    allowing = queue.enqueue(ADD, 3, 4, depends_on=Dependency(jobs=[job], allow_failure=True))
    strict = queue.enqueue(ADD, 5, 6, depends_on=job)
    lose_lease(r, leases, config)
    assert Job.fetch(job.id, connection=r).get_status() == "failed"
    assert Job.fetch(allowing.id, connection=r).get_status() == "queued"
    assert Job.fetch(strict.id, connection=r).get_status() == "deferred"
    assert queue.get_job_ids() == [allowing.id]
    assert_gauges_exact(r)


def test_a_jobsvc_job_failed_for_good_by_its_reaper_releases_dependents_that_allow_failure(r, leases, client, config):
    e = client.enqueue(NOOP, max_attempts=1)
    dependent = client.enqueue(NOOP, depends_on=e, allow_failure=True)
    lose_lease(r, leases, config)
    assert client.get(e.id).state == State.FAILED
    assert client.get(dependent.id).state == State.QUEUED
    assert_gauges_exact(r)
