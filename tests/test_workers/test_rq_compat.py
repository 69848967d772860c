"""Code that enqueues with plain RQ keeps working: a jobsvc worker runs the job, RQ reads it back.

Real processes (`python -m jobsvc_cli worker|scheduler`); the enqueueing side is RQ's own API."""
from __future__ import annotations

from datetime import timedelta

import pytest
import rq
from rq.job import Job

from jobsvc import State
from tests import jobfuncs
from tests.conftest import LEASE_ARGS, wait_for

pytestmark = pytest.mark.slow


def test_job_enqueued_with_plain_rq_runs(procs, client, r):
    job = rq.Queue("default", connection=r).enqueue(jobfuncs.add, 2, 3)

    assert procs.worker("worker", "--burst", *LEASE_ARGS).wait(timeout=15) == 0

    fetched = Job.fetch(job.id, connection=r)
    assert fetched.get_status() == "finished"
    assert fetched.return_value() == 5
    assert client.state(job.id) == State.COMPLETED
    assert [run["outcome"] for run in client.runs(job.id)] == ["completed"]


def test_job_delayed_with_plain_rq_is_promoted_by_jobsvc_scheduler(procs, client, r):
    job = rq.Queue("default", connection=r).enqueue_in(timedelta(seconds=1), jobfuncs.add, 4, 5)
    assert Job.fetch(job.id, connection=r).get_status() == "scheduled"
    procs.scheduler()
    procs.worker("worker", *LEASE_ARGS)

    fetched = wait_for(lambda: (j := Job.fetch(job.id, connection=r)).get_status() == "finished" and j, 15,
                       "the RQ-delayed job to be promoted and run")
    assert fetched.return_value() == 9
    assert client.state(job.id) == State.COMPLETED
