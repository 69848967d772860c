"""Results (`Job.latest_result()`, `results()`, `return_value()`) and cancelling (`Job.cancel()` of a queued or
scheduled job, `rq.command.send_stop_job_command` of a running one), on both workers."""
from __future__ import annotations

from datetime import timedelta

import pytest
import redis
import rq
from rq import Callback
from rq.command import send_shutdown_command, send_stop_job_command
from rq.job import Job
from rq.registry import CanceledJobRegistry, FailedJobRegistry
from rq.results import Result

from jobsvc import State
from jobsvc.admin.listing import JobFilter, list_jobs
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases
from tests import rqfuncs
from tests.conftest import LEASE_ARGS, wait_for
from tests.test_rq_compat.gauge_check import assert_gauges_exact
from tests.test_rq_compat.helpers import expect_failed, promote_due, stop_burst_fixture  # noqa: F401 (fixture)
from workers.heartbeat import Heartbeat
from workers.rq_commands import CommandListener


def test_a_completed_jobs_results(queue, burst, r):
    job = queue.enqueue(rqfuncs.add, 20, 22)
    burst()
    job = Job.fetch(job.id, connection=r)
    latest = job.latest_result()
    assert (latest.type, latest.return_value, latest.exc_string) == (Result.Type.SUCCESSFUL, 42, None)
    assert latest.worker_name  # who ran it
    assert [res.id for res in job.results()] == [latest.id]
    assert job.return_value() == 42


def test_a_job_returning_none_has_a_successful_result(queue, burst, r):
    job = queue.enqueue(rqfuncs.record, "none")  # returns None
    burst()
    job = Job.fetch(job.id, connection=r)
    assert (job.latest_result().type, job.latest_result().return_value) == (Result.Type.SUCCESSFUL, None)
    assert job.return_value() is None and job.get_status() == "finished"


def test_a_failed_jobs_results(queue, burst, r, worker_kind):
    job = queue.enqueue(rqfuncs.boom, "res")
    burst()
    expect_failed(r, job.id, worker_kind)
    job = Job.fetch(job.id, connection=r)
    latest = job.latest_result()
    assert latest.type == Result.Type.FAILED
    assert "Traceback" in latest.exc_string and "ValueError: res failed" in latest.exc_string
    assert job.return_value() is None
    assert [res.type for res in job.results()] == [Result.Type.FAILED]


def test_a_cancelled_scheduled_job_is_never_promoted(queue, r, redis_url, burst, worker_kind):
    job = queue.enqueue_in(timedelta(seconds=0), rqfuncs.say, "never")
    Job.fetch(job.id, connection=r).cancel()
    if worker_kind == "jobsvc":
        promote_due(r, redis_url)
        burst()
    else:
        rq.SimpleWorker(["default"], connection=r).work(burst=True, with_scheduler=True)
    assert rqfuncs.calls() == []
    assert Job.fetch(job.id, connection=r).get_status() == "canceled"


def test_a_delayed_job_of_jobsvc_cancelled_with_rqs_api_is_never_promoted(client, r, redis_url, burst_worker):
    """A job on jobsvc's own timeline (enqueued with a delay, or an rq-scheduler job jobsvc adopted) that RQ's
    `Job.cancel()` cancels: RQ changes only its status, and the promoter must not queue it when it falls due."""
    e = client.enqueue(rqfuncs.say, "never", delay=3600)
    Job.fetch(e.id, connection=r).cancel()
    r.zadd(Keys(client.config.key_prefix).scheduled, {e.id: 0})  # due now
    promote_due(r, redis_url)
    burst_worker("jobsvc", ("default",))
    assert rqfuncs.calls() == []
    assert Job.fetch(e.id, connection=r).get_status() == "canceled"
    assert r.zscore(Keys(client.config.key_prefix).scheduled, e.id) is None  # left the timeline all the same


def test_send_stop_job_command_stops_a_running_job(queue, r, worker_kind, stop_burst):
    job = queue.enqueue(rqfuncs.sleep_then_say, "long", 30, on_stopped=Callback(rqfuncs.on_stopped))
    after = queue.enqueue(rqfuncs.say, "after")
    stop_burst(lambda: send_stop_job_command(r, job.id), "long:start")
    # the job's code stopped, its on_stopped ran, and the worker went on with the next job
    assert rqfuncs.calls() == ["long:start", f"stopped:{job.id}", "after"]
    stopped = Job.fetch(job.id, connection=r)
    assert stopped.get_status() == "stopped" and stopped.return_value() is None
    assert job.id in FailedJobRegistry(queue=queue).get_job_ids()
    assert job.id not in CanceledJobRegistry(queue=queue).get_job_ids()
    latest = stopped.latest_result()
    assert (latest.type, latest.exc_string) == (Result.Type.FAILED, "Job stopped by user, work-horse terminated.")
    assert Job.fetch(after.id, connection=r).get_status() == "finished"


def test_a_stop_with_retries_left_is_not_retried(queue, r, worker_kind, stop_burst):
    """RQ's worker never retries a job it was told to stop (handle_job_failure: retry = should_retry and not
    stopped)."""
    job = queue.enqueue(rqfuncs.sleep_then_say, "no-retry", 30, retry=rq.Retry(max=2))
    stop_burst(lambda: send_stop_job_command(r, job.id), "no-retry:start")
    stopped = Job.fetch(job.id, connection=r)
    assert (stopped.get_status(), stopped.retries_left) == ("stopped", 2)
    assert rqfuncs.calls() == ["no-retry:start"]


def test_jobsvcs_record_of_an_rq_stop(queue, r, worker_kind, stop_burst, client):
    """jobsvc's side of a stop: state failed (the state of FailedJobRegistry, where RQ puts it), so listing,
    gauges and RQ's registries agree; a `jobsvc terminate` of a running job stays a cancel (test_terminate.py)."""
    if worker_kind == "rq":
        pytest.skip("jobsvc's record of a stop")
    job = queue.enqueue(rqfuncs.sleep_then_say, "stop-me", 30)
    stop_burst(lambda: send_stop_job_command(r, job.id), "stop-me:start")
    info = client.get(job.id)
    assert (info.state, info.error) == (State.FAILED, "JobStopped: by send_stop_job_command")
    assert [run["outcome"] for run in client.runs(job.id)] == ["stopped"]
    assert [j.id for j in list_jobs(r, client.config, JobFilter(queue="default", state="failed"))[0]] == [job.id]
    assert list_jobs(r, client.config, JobFilter(queue="default", state="cancelled"))[0] == []
    assert_gauges_exact(r)


# The stop-job listener alone (workers/rq_commands.py): what it does with each command.

class _Listener(CommandListener):
    def __init__(self, r, running):
        self.stopped, self.shutdowns = [], []
        super().__init__(r, "w1", lambda: running, self.stopped.append, lambda: self.shutdowns.append(1))


def test_a_stop_for_another_job_than_the_running_one_is_ignored(r):
    listener = _Listener(r, running="job-a")
    listener.handle(b'{"command": "stop-job", "job_id": "job-b"}')
    listener.handle(b'{"command": "stop-job", "job_id": "job-a"}')
    assert listener.stopped == ["job-a"]


def test_a_stop_while_idle_and_malformed_or_unknown_commands_are_ignored(r):
    listener = _Listener(r, running=None)
    for data in (b'{"command": "stop-job", "job_id": "job-a"}', b"not json", b'{"no": "command"}',
                 b'{"command": "kill-horse"}'):
        listener.handle(data)
    assert (listener.stopped, listener.shutdowns) == ([], [])


def test_commands_published_with_rqs_api_reach_the_listener(r):
    listener = _Listener(r, running="job-a")
    listener.subscribe()
    try:
        r.hset("rq:job:job-a", mapping={"worker_name": "w1", "data": b"", "status": "started"})
        send_stop_job_command(r, "job-a")
        send_shutdown_command(r, "w1")
        wait_for(lambda: listener.poll() or (listener.stopped and listener.shutdowns), 5, "both commands")
    finally:
        listener.close()
    assert (listener.stopped, listener.shutdowns) == (["job-a"], [1])


@pytest.mark.slow
def test_rqs_shutdown_command_stops_a_jobsvc_worker_process(procs, r):
    proc = procs.worker("worker", *LEASE_ARGS)
    name = wait_for(lambda: [w.name for w in rq.Worker.all(connection=r)], 15, "the worker to register")[0]
    send_shutdown_command(r, name)
    assert proc.wait(timeout=15) == 0


class _BrokenCommands:
    def poll(self):
        raise redis.ConnectionError("the pub/sub connection dropped")


def test_a_failing_command_read_does_not_stop_the_lease_renewal(client, r, config):
    client.enqueue("tests.jobfuncs.noop")
    lease = Leases(r, config).claim(["default"], "test", lease_ttl=1)
    before = lease.expires_ms
    Heartbeat(r, config, "rq:worker:test", lambda: (lease, 0.0), lambda: None, lambda: None,
              commands=_BrokenCommands()).run_once(now=0.5)
    assert lease.expires_ms >= before - 1000 + int(config.lease_ttl * 1000)
    assert r.zscore(f"{config.key_prefix}leases", lease.job_id) == lease.expires_ms
