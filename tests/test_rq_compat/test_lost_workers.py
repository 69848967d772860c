"""A plain-RQ job whose worker dies mid-job (SIGKILL), on RQ's own worker and on jobsvc's: RQ's
StartedJobRegistry.cleanup treats it as failed with AbandonedJobError, retried while its Retry has retries left
(rq 2.12 registry.py), and jobsvc's reaper (reap_expired.lua) does the same for a job enqueued with RQ's API.
The job's worker is a real process, killed with its process group; then RQ's cleanup, or jobsvc's reaper once
the 1 s lease has run out, takes the job back."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from rq import Retry
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.results import Result

from jobsvc import Config, State
from jobsvc.maintenance.reaper import Reaper
from tests import rqfuncs
from tests.conftest import LEASE_ARGS, ROOT, wait_for
from tests.test_rq_compat import crashfuncs
from tests.test_rq_compat.gauge_check import assert_gauges_exact

pytestmark = pytest.mark.slow


@pytest.fixture
def kill_mid_job(procs, subprocess_env, calls_dir, redis_url, r, worker_kind, tmp_path):
    """kill_mid_job(started_tag): start a worker process of the chosen kind, wait until the job has recorded
    `started_tag`, SIGKILL the worker's process group, then take the abandoned job back as that kind does: RQ's
    StartedJobRegistry.cleanup (as if its time had come), or jobsvc's reaper once the lease expired."""
    env = {**subprocess_env, rqfuncs.CALLS_DIR_ENV: str(calls_dir)}

    def run(started_tag, queue="default"):
        if worker_kind == "rq":
            with open(tmp_path / "rq-worker.log", "ab") as log:
                proc = subprocess.Popen([sys.executable, "-m", "rq.cli", "worker", "--url", redis_url, queue],
                                        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                        start_new_session=True)
            procs.started.append(proc)
            procs.log_paths[proc.pid] = tmp_path / "rq-worker.log"
        else:
            proc = procs.worker("worker", *LEASE_ARGS, "-q", queue, env=env)
        wait_for(lambda: started_tag in rqfuncs.calls(), 20, started_tag)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if worker_kind == "rq":
            StartedJobRegistry(queue, connection=r).cleanup(timestamp=time.time() + 10**6)
        else:
            reaper = Reaper(r, Config(redis_url=redis_url))
            wait_for(lambda: reaper.run_once().total, 10, "the lease to expire and be reaped")

    return run


def test_a_job_without_retry_whose_worker_died_fails_as_rq_records_it(queue, r, kill_mid_job, client, worker_kind):
    job = queue.enqueue(crashfuncs.hang_first_run, "once")
    kill_mid_job("once:None")
    job = Job.fetch(job.id, connection=r)
    assert job.get_status() == "failed"
    assert job.id in FailedJobRegistry(queue=queue).get_job_ids()
    latest = job.latest_result()
    assert latest.type == Result.Type.FAILED
    assert latest.exc_string.startswith("Moved to FailedJobRegistry, due to AbandonedJobError, at ")
    assert latest.worker_name == ""
    assert rqfuncs.calls() == ["once:None"]
    if worker_kind == "jobsvc":
        info = client.get(job.id)
        assert (info.state, info.lease_losses, info.error) == (
            State.FAILED, 1, "AbandonedJobError: lease expired, no retries left")
        assert [run["outcome"] for run in client.runs(job.id)] == ["lease_lost"]
        assert_gauges_exact(r)


def test_a_job_with_retries_left_whose_worker_died_is_retried(queue, r, kill_mid_job, burst, client, worker_kind):
    job = queue.enqueue(crashfuncs.hang_first_run, "again", retry=Retry(max=1))
    kill_mid_job("again:1")
    job = Job.fetch(job.id, connection=r)
    assert (job.get_status(), job.retries_left) == ("queued", 0)
    assert job.id in queue.get_job_ids()
    burst()
    job = Job.fetch(job.id, connection=r)
    assert (job.get_status(), job.return_value()) == ("finished", "again")
    assert rqfuncs.calls() == ["again:1", "again:0"]
    if worker_kind == "jobsvc":
        assert [run["outcome"] for run in client.runs(job.id)] == ["lease_lost", "completed"]
        assert_gauges_exact(r)
