"""RQ's job callbacks (on_success, on_failure, on_stopped; rq.Callback or a plain function) on both workers:
signatures, timeouts, and what a callback that raises does to the job's outcome (RQ 2.x: a failing success
callback fails the job; a failing failure callback replaces the recorded error)."""
from __future__ import annotations

import time

import pytest
from rq import Callback, Retry
from rq.command import send_stop_job_command
from rq.job import Job

from jobsvc import Backoff, Client, Config, State
from jobsvc.allowlist import ORIGIN_API, ORIGIN_FIELD
from jobsvc.engine.leases import Leases
from jobsvc.scheduling.promotion import Promoter
from tests import rqfuncs
from tests.conftest import ALLOWED_MODULES
from tests.test_rq_compat.conftest import jobsvc_gap
from tests.test_rq_compat.helpers import expect_failed, promote_due, stop_burst_fixture  # noqa: F401 (fixture)
from workers.heartbeat import Heartbeat
from workers.worker import LeasedWorker


def test_the_success_callback_sees_the_finished_job_and_the_connection(queue, burst, r):
    job = queue.enqueue(rqfuncs.add, 1, 2, on_success=Callback(rqfuncs.on_success_inspects))
    burst()
    # status finished (not yet saved: RQ runs it before saving the result), no current job, a live connection
    assert rqfuncs.calls() == ["add:1+2", f"inspect:{job.id}:finished:tests.rqfuncs.add:True:True"]
    assert Job.fetch(job.id, connection=r).get_status() == "finished"


def test_the_failure_callback_gets_type_value_and_traceback(queue, burst, r, worker_kind):
    job = queue.enqueue(rqfuncs.boom, "cb", on_failure=Callback(rqfuncs.on_failure_message))
    burst()
    assert rqfuncs.calls() == ["cb", f"failure-message:{job.id}:ValueError:cb_failed:True"]
    expect_failed(r, job.id, worker_kind)


def test_a_plain_function_is_accepted_as_a_callback(queue, burst, r):
    with pytest.warns(DeprecationWarning, match="on_success"):  # RQ 2.x still takes it, with a warning
        ok = queue.enqueue(rqfuncs.add, 2, 2, on_success=rqfuncs.on_success)
    with pytest.warns(DeprecationWarning, match="on_failure"):
        bad = queue.enqueue(rqfuncs.boom, "plain", on_failure=rqfuncs.on_failure)
    burst()
    assert f"success:{ok.id}:4" in rqfuncs.calls()
    assert f"failure:{bad.id}:ValueError" in rqfuncs.calls()


def test_no_callback_runs_for_a_job_without_callbacks(queue, burst, r):
    job = queue.enqueue(rqfuncs.add, 3, 4)
    burst()
    assert rqfuncs.calls() == ["add:3+4"]
    assert Job.fetch(job.id, connection=r).return_value() == 7


def test_a_success_callback_that_raises_fails_the_job_and_the_failure_callback_runs(queue, burst, r, worker_kind):
    job = queue.enqueue(rqfuncs.add, 5, 5, on_success=Callback(rqfuncs.on_success_raises),
                        on_failure=Callback(rqfuncs.on_failure))
    burst()
    assert rqfuncs.calls()[:3] == ["add:5+5", f"success-raises:{job.id}", f"failure:{job.id}:RuntimeError"]
    fetched = Job.fetch(job.id, connection=r)
    assert fetched.return_value() is None  # the result was never saved
    assert "RuntimeError: success callback broke" in fetched.latest_result().exc_string
    expect_failed(r, job.id, worker_kind)


def test_a_failure_callback_that_raises_is_recorded_with_the_jobs_own_error(queue, burst, r, worker_kind):
    job = queue.enqueue(rqfuncs.boom, "twice", on_failure=Callback(rqfuncs.on_failure_raises))
    burst()
    assert rqfuncs.calls()[:2] == ["twice", f"failure-raises:{job.id}:ValueError"]
    exc_string = Job.fetch(job.id, connection=r).latest_result().exc_string
    assert "RuntimeError: failure callback broke" in exc_string
    assert "ValueError: twice failed" in exc_string  # chained: "During handling of the above exception ..."
    expect_failed(r, job.id, worker_kind)


def test_a_success_callback_past_its_timeout_is_stopped_and_fails_the_job(queue, burst, r, worker_kind):
    job = queue.enqueue(rqfuncs.add, 6, 6, on_success=Callback(rqfuncs.on_success_slow, timeout=1))
    burst()
    assert rqfuncs.calls() == ["add:6+6", f"success-slow:{job.id}"]  # never reached its end
    assert "JobTimeoutException" in Job.fetch(job.id, connection=r).latest_result().exc_string
    expect_failed(r, job.id, worker_kind)


def test_the_job_timeout_still_works_after_a_callback_had_its_own(queue, burst, r, worker_kind):
    """The callback's alarm must hand SIGALRM back: the next job's own timeout still stops it."""
    queue.enqueue(rqfuncs.add, 1, 1, on_success=Callback(rqfuncs.on_success, timeout=5))
    slow = queue.enqueue(rqfuncs.sleep_then_say, "slow", 30, job_timeout=1)
    burst()
    assert "slow:end" not in rqfuncs.calls()
    assert "Timeout" in Job.fetch(slow.id, connection=r).latest_result().exc_string
    expect_failed(r, slow.id, worker_kind)


def test_the_failure_callback_runs_after_every_failed_execution_also_retried_ones(queue, burst, r, redis_url,
                                                                                   worker_kind):
    job = queue.enqueue(rqfuncs.boom, "again", retry=Retry(max=1), on_failure=Callback(rqfuncs.on_failure))
    burst()
    promote_due(r, redis_url)  # jobsvc: a retry due now (RQ's worker requeued it itself)
    burst()
    calls = rqfuncs.calls()
    assert calls.count(f"failure:{job.id}:ValueError") == calls.count("again")  # one per execution
    if calls.count("again") != 2:
        jobsvc_gap(worker_kind, "issue 12 (retries): Retry(max=1) is not yet honoured")
    assert calls == ["again", f"failure:{job.id}:ValueError"] * 2


def test_the_stopped_callback_runs_when_a_running_job_is_stopped(queue, r, redis_url, worker_kind, stop_burst):
    job = queue.enqueue(rqfuncs.sleep_then_say, "stop-me", 30, on_stopped=Callback(rqfuncs.on_stopped))
    stop_burst(lambda: send_stop_job_command(r, job.id), "stop-me:start")
    assert rqfuncs.calls() == ["stop-me:start", f"stopped:{job.id}"]


# jobsvc's own API: the callback fields work on any job hash that has them.

def test_callbacks_run_for_a_job_enqueued_with_jobsvcs_client(r, redis_url, burst, worker_kind):
    if worker_kind == "rq":
        pytest.skip("jobsvc's own retries (max_attempts, backoff) are not RQ's; the RQ patterns are above")
    client = Client(r, Config(redis_url=redis_url))
    ok = client.enqueue(rqfuncs.add, 7, 8).id
    bad = client.enqueue(rqfuncs.boom, "native", max_attempts=2, backoff=Backoff("fixed", 0, 0, False)).id
    r.hset(f"rq:job:{ok}", "success_callback_name", "tests.rqfuncs.on_success")
    r.hset(f"rq:job:{bad}", mapping={"failure_callback_name": "tests.rqfuncs.on_failure",
                                     "failure_callback_timeout": 5})
    burst()
    Promoter(r, Config(redis_url=redis_url)).run_once()  # the retry, due at once (backoff 0)
    burst()
    assert f"success:{ok}:15" in rqfuncs.calls()
    assert rqfuncs.calls().count(f"failure:{bad}:ValueError") == 2  # both attempts, the retried one too
    assert client.state(bad) == State.FAILED


def test_a_job_from_the_http_api_cannot_name_a_callback_outside_the_allowed_modules(r, redis_url, burst,
                                                                                   worker_kind):
    if worker_kind == "rq":
        pytest.skip("the module allow-list is jobsvc's")
    client = Client(r, Config(redis_url=redis_url, allowed_modules=ALLOWED_MODULES))
    job = client.enqueue(rqfuncs.add, 1, 1, max_attempts=1).id
    r.hset(f"rq:job:{job}", mapping={ORIGIN_FIELD: ORIGIN_API, "success_callback_name": "json.dumps"})
    burst()
    info = client.get(job)
    assert info.state == State.FAILED
    assert "success callback json.dumps" in info.error and "json" in info.error


def _stoppable_job(r, redis_url, word):
    """A job enqueued through jobsvc's Client that says `word` and sleeps, with RQ's stopped callback written
    onto its hash: the client and the job id."""
    client = Client(r, Config(redis_url=redis_url))
    job = client.enqueue(rqfuncs.sleep_then_say, word, 30).id
    r.hset(f"rq:job:{job}", "stopped_callback_name", "tests.rqfuncs.on_stopped")
    return client, job


def test_a_job_stopped_by_jobsvc_terminate_runs_its_stopped_callback(r, redis_url, worker_kind, stop_burst):
    if worker_kind == "rq":
        pytest.skip("jobsvc terminate; RQ's own stop command is tested above")
    client, job = _stoppable_job(r, redis_url, "term")
    stop_burst(lambda: client.terminate(job), "term:start")
    assert rqfuncs.calls() == ["term:start", f"stopped:{job}"]
    assert client.state(job) == State.CANCELLED


def test_a_lost_lease_does_not_count_as_stopped(r, redis_url, worker_kind, stop_burst):
    """The job will run again elsewhere: RQ's on_stopped is for a stop someone asked for."""
    if worker_kind == "rq":
        pytest.skip("jobsvc leases")
    _, job = _stoppable_job(r, redis_url, "lost")
    stop_burst(lambda: r.hset(f"rq:job:{job}", "js_token", "someone-else"), "lost:start")
    assert rqfuncs.calls() == ["lost:start"]


def test_a_long_callback_keeps_the_lease_alive_past_the_jobs_own_timeout(client, r, config):
    """The hung-job check (started + job timeout + hung_grace) measures a running callback against the
    callback's timeout, not against the job's that already ended."""
    client.enqueue("tests.jobfuncs.noop", timeout=1)
    worker = LeasedWorker(["default"], r, config)
    worker._lease = lease = Leases(r, config).claim(["default"], worker.name, lease_ttl=1)
    worker._time_callback(60)  # what Callbacks does before it calls a callback with a 60 s timeout
    before = lease.expires_ms
    Heartbeat(r, config, worker.key, worker._current, lambda: None, lambda: None).run_once(
        now=time.monotonic() + 1 + config.hung_grace + 1)  # past the job's timeout + grace: still renewed
    assert lease.expires_ms > before
