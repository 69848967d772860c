"""Terminate and progress against a real worker process."""
from __future__ import annotations

import pytest

from jobsvc import State
from tests.conftest import LEASE_ARGS, read_pid, wait_for

pytestmark = pytest.mark.slow


def test_terminate_stops_a_really_running_job_and_the_worker_goes_on(procs, client, tmp_path):
    worker = procs.worker("worker", *LEASE_ARGS)
    marker = tmp_path / "started"
    long_job = client.enqueue("tests.jobfuncs.touch_then_sleep", str(marker), 60)
    next_job = client.enqueue("tests.jobfuncs.add", 1, 1)
    wait_for(lambda: read_pid(marker), 15, "job start")
    client.terminate(long_job.id)
    wait_for(lambda: "terminated by an operator" in procs.log(worker), 5, "the worker to stop the job")
    wait_for(lambda: client.state(next_job.id) == State.COMPLETED, 10, "the next job")
    assert client.state(long_job.id) == State.CANCELLED
    assert worker.poll() is None


def test_a_job_whose_lease_is_lost_stops_running_and_the_worker_goes_on(procs, client, r, tmp_path):
    """Stale job code does not run on: once the heartbeat finds the lease gone (expired, revoked or taken
    over), the worker stops the job's code as terminate does, and takes the next job."""
    worker = procs.worker("worker", *LEASE_ARGS)
    marker = tmp_path / "started"
    long_job = client.enqueue("tests.jobfuncs.touch_then_sleep", str(marker), 60)
    next_job = client.enqueue("tests.jobfuncs.add", 1, 1)
    wait_for(lambda: read_pid(marker), 15, "job start")
    r.hset(f"rq:job:{long_job.id}", "js_token", "another-holder")  # as if reaped and claimed elsewhere
    wait_for(lambda: "its lease was lost" in procs.log(worker), 10, "the worker to stop the stale job")
    wait_for(lambda: client.state(next_job.id) == State.COMPLETED, 10, "the next job")
    assert "lease lost while running (expired or revoked): stopping its code" in procs.log(worker)
    assert worker.poll() is None


def test_progress_reported_by_job_code_is_visible(procs, client, tmp_path):
    procs.worker("worker", *LEASE_ARGS)
    release = tmp_path / "release"
    e = client.enqueue("tests.jobfuncs.report_progress", str(release))
    wait_for(lambda: client.get(e.id).progress == 50, 15, "progress 50")
    assert client.get(e.id).progress_message == "half way"
    release.write_text("go")
    wait_for(lambda: client.state(e.id) == State.COMPLETED, 15, "completion")
    assert client.get(e.id).progress == 100
