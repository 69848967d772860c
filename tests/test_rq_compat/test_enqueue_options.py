"""RQ's enqueue options on both workers: at_front, enqueue_at / enqueue_in, job_timeout, ttl, result_ttl,
failure_ttl, description. Lifetimes are checked end to end: the job is gone once its TTL has passed (RQ: Redis
key expiry; jobsvc: its TTL sweep, which the scheduler runs; here called directly)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import rq
from rq import Callback
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry

from jobsvc import Config
from jobsvc.maintenance.ttl_sweeper import TtlSweeper
from tests import rqfuncs
from tests.conftest import wait_for
from tests.test_rq_compat.helpers import expect_failed, promote_due


@pytest.fixture
def burst_scheduled(r, redis_url, burst, worker_kind):
    """A burst that first moves due delayed jobs to their queue: RQ's worker with its scheduler (in burst mode
    it promotes once, in-process), jobsvc's scheduler passes called directly."""
    def run():
        if worker_kind == "rq":
            rq.SimpleWorker(["default"], connection=r).work(burst=True, with_scheduler=True)
        else:
            promote_due(r, redis_url)
            burst()
    return run


@pytest.fixture
def gone(r, redis_url, worker_kind):
    """gone(job_id) waits until the job's hash is deleted by the owner of its lifetime."""
    sweeper = TtlSweeper(r, Config(redis_url=redis_url))

    def wait(job_id):
        def deleted():
            if worker_kind == "jobsvc":
                sweeper.run_once()
            return not r.exists(f"rq:job:{job_id}")
        wait_for(deleted, 10, f"job {job_id} to be deleted")
    return wait


def assert_kept_until(r, registry, job, ttl):
    """The registry expires the job `ttl` s after it ended (both workers score it so; jobsvc's sweep deletes it
    then), and its key lives at least that long (RQ gives it that expiry; jobsvc none: its sweep deletes it)."""
    expires = registry.get_expiration_time(job)
    assert abs((expires - datetime.now(timezone.utc)).total_seconds() - ttl) < 10
    key_ttl = r.ttl(job.key)
    assert key_ttl == -1 or key_ttl >= ttl - 10


def test_at_front_jumps_the_queue(queue, burst, r):
    queue.enqueue(rqfuncs.say, "one")
    queue.enqueue(rqfuncs.say, "two")
    urgent = queue.enqueue(rqfuncs.say, "urgent", at_front=True)
    assert urgent.get_position() == 0
    burst()
    assert rqfuncs.calls() == ["urgent", "one", "two"]


def test_enqueue_at_a_time_that_has_come_runs_the_job(queue, burst_scheduled, r):
    job = queue.enqueue_at(datetime.now(timezone.utc) - timedelta(seconds=1), rqfuncs.say, "at")
    assert job.get_status() == "scheduled" and job.id in ScheduledJobRegistry(queue=queue)
    burst_scheduled()
    assert rqfuncs.calls() == ["at"]
    assert Job.fetch(job.id, connection=r).get_status() == "finished"


def test_enqueue_in_waits_until_its_time(queue, burst_scheduled, r):
    later = queue.enqueue_in(timedelta(hours=1), rqfuncs.say, "later")
    now = queue.enqueue(rqfuncs.say, "now")
    burst_scheduled()
    assert rqfuncs.calls() == ["now"]
    assert Job.fetch(later.id, connection=r).get_status() == "scheduled"
    assert later.id in ScheduledJobRegistry(queue=queue)
    assert Job.fetch(now.id, connection=r).get_status() == "finished"


def test_job_timeout_stops_the_job_and_fails_it(queue, burst, r, worker_kind):
    job = queue.enqueue(rqfuncs.sleep_then_say, "slow", 30, job_timeout=1, on_failure=Callback(rqfuncs.on_failure))
    assert Job.fetch(job.id, connection=r).timeout == 1
    burst()
    calls = rqfuncs.calls()
    assert calls[0] == "slow:start" and "slow:end" not in calls
    # RQ raises rq.timeouts.JobTimeoutException, jobsvc jobsvc.errors.JobTimeout (docs/rq.md)
    assert calls[1].startswith(f"failure:{job.id}:JobTimeout")
    assert "JobTimeout" in Job.fetch(job.id, connection=r).latest_result().exc_string
    expect_failed(r, job.id, worker_kind)


def test_a_job_whose_ttl_ran_out_before_it_started_never_runs(queue, burst, r):
    job = queue.enqueue(rqfuncs.say, "expired", ttl=60)
    assert 0 < r.ttl(job.key) <= 60
    r.pexpire(job.key, 1)  # as if 60 s had passed with no free worker
    wait_for(lambda: not r.exists(job.key), 5, "the job's ttl to run out")
    queue.enqueue(rqfuncs.say, "fresh")
    burst()
    assert rqfuncs.calls() == ["fresh"]


def test_a_job_started_within_its_ttl_finishes_even_past_it(queue, burst, r, worker_kind):
    job = queue.enqueue(rqfuncs.outlive_own_ttl, "ttl", ttl=3)  # RQ: the hash lost its TTL when the job started
    burst()
    assert rqfuncs.calls() == ["ttl:start", "ttl:end"]
    assert Job.fetch(job.id, connection=r).get_status() == "finished"


def test_result_ttl_keeps_a_finished_job_that_long(queue, burst, r, gone):
    kept = queue.enqueue(rqfuncs.add, 2, 2, result_ttl=600)
    short = queue.enqueue(rqfuncs.add, 1, 1, result_ttl=1)
    burst()
    assert rqfuncs.calls() == ["add:2+2", "add:1+1"]
    assert Job.fetch(kept.id, connection=r).return_value() == 4
    assert_kept_until(r, FinishedJobRegistry(queue=queue), kept, 600)
    gone(short.id)


def test_result_ttl_zero_keeps_nothing(queue, burst, r):
    job = queue.enqueue(rqfuncs.add, 3, 3, result_ttl=0)
    burst()
    assert rqfuncs.calls() == ["add:3+3"]
    assert not r.exists(job.key) and job.id not in FinishedJobRegistry(queue=queue)


def test_result_ttl_minus_one_keeps_the_job_for_ever(queue, burst, r):
    job = queue.enqueue(rqfuncs.add, 4, 4, result_ttl=-1)
    burst()
    assert Job.fetch(job.id, connection=r).return_value() == 8
    assert r.ttl(job.key) == -1


def test_failure_ttl_keeps_a_failed_job_that_long(queue, burst, r, worker_kind, gone):
    kept = queue.enqueue(rqfuncs.boom, "long", failure_ttl=600)
    short = queue.enqueue(rqfuncs.boom, "short", failure_ttl=1)
    burst()
    expect_failed(r, kept.id, worker_kind)
    assert_kept_until(r, FailedJobRegistry(queue=queue), kept, 600)
    assert "short" in rqfuncs.calls()
    gone(short.id)


def test_description_is_kept_and_defaults_to_the_call(queue, burst, r):
    named = queue.enqueue(rqfuncs.current_job_facts, description="nightly report")
    plain = queue.enqueue(rqfuncs.add, 1, 2)
    burst()
    assert Job.fetch(named.id, connection=r).return_value()["description"] == "nightly report"
    assert Job.fetch(plain.id, connection=r).description == "tests.rqfuncs.add(1, 2)"


def test_a_timeout_is_rqs_job_timeout_exception_on_both_workers():
    from rq.timeouts import JobTimeoutException

    from jobsvc import JobTimeout

    assert issubclass(JobTimeout, JobTimeoutException)
