"""Retries as RQ defines them (rq/job.py retry(), get_retry_interval()), for jobs enqueued with RQ's own API, run
by RQ's own worker and by jobsvc's: no retry= means one attempt, Retry(max, interval) is honoured with its
retries_left and list of intervals, and a job RQ requeues starts over. jobsvc's own max_attempts and backoff
apply only to jobs enqueued with jobsvc's API (last tests)."""
from __future__ import annotations

import time

import pytest
from click.testing import CliRunner
from rq import Retry
from rq.cli import main as rq_cli
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.results import Result

from jobsvc import Backoff, State
from jobsvc.scheduling.promotion import Promoter
from tests import rqfuncs
from tests.test_rq_compat import retryfuncs
from tests.test_rq_compat.gauge_check import assert_gauges_exact


def due_seconds(client, queue, job_id, worker_kind):
    """When a job waiting out a retry interval runs next (epoch seconds): RQ's worker schedules it in RQ's
    ScheduledJobRegistry (whole seconds); jobsvc's in its scheduler timeline (milliseconds of Redis time)."""
    if worker_kind == "rq":
        return ScheduledJobRegistry(queue=queue).get_scheduled_time(job_id).timestamp()
    info = client.get(job_id)
    assert info.state == State.SCHEDULED
    return info.due_ms / 1000


def test_no_retry_is_one_attempt_then_failed_as_rq_records_it(queue, burst, r, client, worker_kind):
    job = queue.enqueue(rqfuncs.boom, "once")
    burst()
    job = Job.fetch(job.id, connection=r)
    assert rqfuncs.calls() == ["once"]
    assert job.get_status() == "failed"
    assert job.id in FailedJobRegistry(queue=queue).get_job_ids()
    assert [res.type for res in job.results()] == [Result.Type.FAILED]
    assert "ValueError: once failed" in job.latest_result().exc_string
    if worker_kind == "jobsvc":
        info = client.get(job.id)
        assert (info.state, info.attempts, info.max_attempts) == (State.FAILED, 1, 1)
    assert_gauges_exact(r)


def test_retry_max_runs_max_plus_one_times_and_records_one_failure(queue, burst, r, client, worker_kind):
    job = queue.enqueue(rqfuncs.boom, "try", retry=Retry(max=2))
    burst()
    job = Job.fetch(job.id, connection=r)
    assert rqfuncs.calls() == ["try", "try", "try"]
    assert (job.get_status(), job.retries_left) == ("failed", 0)
    assert job.id in FailedJobRegistry(queue=queue).get_job_ids()
    # RQ records no result for an attempt it retries
    assert [res.type for res in job.results()] == [Result.Type.FAILED]
    if worker_kind == "jobsvc":
        info = client.get(job.id)
        assert (info.attempts, info.max_attempts) == (3, 3)
    assert_gauges_exact(r)


def test_retries_left_counts_down_as_the_job_sees_it(queue, burst, r):
    job = queue.enqueue(retryfuncs.flaky, "t", 2, retry=Retry(max=3))
    burst()
    job = Job.fetch(job.id, connection=r)
    assert rqfuncs.calls() == ["t:3", "t:2", "t:1"]
    assert (job.get_status(), job.return_value(), job.retries_left) == ("finished", 3, 1)
    assert_gauges_exact(r)


@pytest.mark.parametrize(("retry", "runs", "wait"), [
    # RQ's indexing: interval[max(len - retries_left, 0)], so with more retries than intervals the first repeats
    (Retry(max=3, interval=[0, 10]), 3, 10),
    (Retry(max=2, interval=[5, 30]), 1, 5),
    (Retry(max=2, interval=7), 1, 7),
], ids=["0-0-10", "5-then-30", "7-each"])
def test_a_retry_interval_schedules_the_next_attempt(queue, burst, r, client, worker_kind, retry, runs, wait):
    job = queue.enqueue(rqfuncs.boom, "later", retry=retry)
    before = time.time()
    burst()
    after = time.time()
    assert rqfuncs.calls() == ["later"] * runs
    job = Job.fetch(job.id, connection=r)
    assert job.get_status() == "scheduled"
    assert job.retries_left == retry.max - runs
    # RQ truncates its due time to the second; jobsvc keeps milliseconds
    assert before + wait - 1 <= due_seconds(client, queue, job.id, worker_kind) <= after + wait
    assert_gauges_exact(r)


def test_retry_enqueue_at_front_runs_the_retry_before_the_queue(queue, burst, r):
    queue.enqueue(rqfuncs.boom, "first", retry=Retry(max=1, enqueue_at_front=True))
    queue.enqueue(rqfuncs.say, "second")
    burst()
    assert rqfuncs.calls() == ["first", "first", "second"]


def test_retry_without_front_goes_to_the_back(queue, burst, r):
    queue.enqueue(rqfuncs.boom, "first", retry=Retry(max=1))
    queue.enqueue(rqfuncs.say, "second")
    burst()
    assert rqfuncs.calls() == ["first", "second", "first"]


def test_requeue_of_a_failed_job_runs_it_again_once(queue, burst, r, client, worker_kind):
    job = queue.enqueue(rqfuncs.boom, "again")
    burst()
    FailedJobRegistry(queue=queue).requeue(job.id)
    burst()
    assert rqfuncs.calls() == ["again", "again"]
    assert Job.fetch(job.id, connection=r).get_status() == "failed"
    if worker_kind == "jobsvc":
        info = client.get(job.id)
        assert (info.attempts, info.max_attempts) == (1, 1)
    assert_gauges_exact(r)


def test_rq_requeue_cli_gives_a_jobsvc_job_fresh_attempts(r, redis_url, burst, client, worker_kind):
    """issue 12: after `rq requeue --all`, a jobsvc job that had used up its attempts ran once as "attempt 3 of
    2", and the queued gauge went below zero."""
    if worker_kind == "rq":
        pytest.skip("max_attempts is jobsvc's own option: RQ's worker does not know it")
    promoter = Promoter(r, client.config)

    def run_out_of_attempts():
        burst()  # attempt 1 fails: its retry is due at once (no backoff)
        assert promoter.run_once().promoted == 1
        burst()  # attempt 2 fails: attempts used up

    job = client.enqueue(rqfuncs.boom, "fresh", max_attempts=2, backoff=Backoff("fixed", 0, 0))
    run_out_of_attempts()
    assert (client.get(job.id).state, rqfuncs.calls()) == (State.FAILED, ["fresh"] * 2)
    out = CliRunner().invoke(rq_cli, ["requeue", "--queue", "default", "--all", "--url", redis_url])
    assert out.exit_code == 0, out.output
    run_out_of_attempts()
    info = client.get(job.id)
    assert (info.state, info.attempts, info.max_attempts) == (State.FAILED, 2, 2)
    assert rqfuncs.calls() == ["fresh"] * 4
    assert_gauges_exact(r)


def test_a_plain_rq_job_retried_by_jobsvc_keeps_the_gauges_exact(queue, burst, r, worker_kind):
    queue.enqueue(rqfuncs.boom, "a", retry=Retry(max=2))
    queue.enqueue(rqfuncs.boom, "b", retry=Retry(max=1, interval=60))
    queue.enqueue(rqfuncs.say, "c")
    burst()
    assert_gauges_exact(r)
