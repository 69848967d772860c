"""The patterns of RQ's documentation, enqueued with RQ's own API, run by either worker."""
from __future__ import annotations

from rq import Callback, Retry
from rq.job import Dependency, Job

from tests import rqfuncs


def test_a_job_runs_and_its_result_reads_back(queue, burst, r):
    job = queue.enqueue(rqfuncs.add, 2, 3)
    burst()
    job = Job.fetch(job.id, connection=r)
    assert job.get_status() == "finished"
    assert job.return_value() == 5
    assert job.latest_result().return_value == 5
    assert [res.return_value for res in job.results()] == [5]


# No retry= means one attempt, then failed: test_retries.py::test_no_retry_is_one_attempt_then_failed_as_rq_records_it


def test_retry_max_is_honoured_and_retries_left_counts_down(queue, burst, r, worker_kind):
    job = queue.enqueue(rqfuncs.boom, "try", retry=Retry(max=2))
    burst()
    job = Job.fetch(job.id, connection=r)
    assert rqfuncs.calls() == ["try", "try", "try"]
    assert job.get_status() == "failed" and job.retries_left == 0


def test_depends_on_runs_the_dependent_after_its_dependency(queue, burst, r, worker_kind):
    first = queue.enqueue(rqfuncs.say, "first")
    second = queue.enqueue(rqfuncs.say, "second", depends_on=first)
    assert Job.fetch(second.id, connection=r).get_status() == "deferred"
    burst()
    assert rqfuncs.calls() == ["first", "second"]
    assert Job.fetch(second.id, connection=r).get_status() == "finished"


def test_a_failed_dependency_keeps_the_dependent_deferred_unless_failure_is_allowed(queue, burst, r, worker_kind):
    bad = queue.enqueue(rqfuncs.boom, "bad")
    held = queue.enqueue(rqfuncs.say, "held", depends_on=bad)
    queue.enqueue(rqfuncs.say, "allowed", depends_on=Dependency(jobs=[bad], allow_failure=True))
    burst()
    assert rqfuncs.calls() == ["bad", "allowed"]
    assert Job.fetch(held.id, connection=r).get_status() == "deferred"


def test_success_and_failure_callbacks_run_with_rqs_signatures(queue, burst, r, worker_kind):
    ok = queue.enqueue(rqfuncs.add, 1, 2, on_success=Callback(rqfuncs.on_success))
    bad = queue.enqueue(rqfuncs.boom, "cb", on_failure=Callback(rqfuncs.on_failure))
    burst()
    assert f"success:{ok.id}:3" in rqfuncs.calls()
    assert f"failure:{bad.id}:ValueError" in rqfuncs.calls()


def test_meta_saved_inside_a_job_is_kept(queue, burst, r, worker_kind):
    job = queue.enqueue(rqfuncs.with_meta, "progress", 42)
    burst()
    assert Job.fetch(job.id, connection=r).meta["progress"] == 42


def test_at_front_runs_first(queue, burst, r):
    queue.enqueue(rqfuncs.say, "back")
    queue.enqueue(rqfuncs.say, "front", at_front=True)
    burst()
    assert rqfuncs.calls() == ["front", "back"]


def test_a_cancelled_queued_job_never_runs(queue, burst, r):
    job = queue.enqueue(rqfuncs.say, "never")
    Job.fetch(job.id, connection=r).cancel()
    burst()
    assert rqfuncs.calls() == []
    assert Job.fetch(job.id, connection=r).get_status() == "canceled"


def test_options_description_timeout_and_ttls_are_kept(queue, burst, r):
    job = queue.enqueue(rqfuncs.add, 1, 1, description="one and one", job_timeout=30, result_ttl=600,
                        failure_ttl=900)
    burst()
    job = Job.fetch(job.id, connection=r)
    assert (job.description, job.timeout, job.result_ttl, job.failure_ttl) == ("one and one", 30, 600, 900)
    assert job.return_value() == 2
