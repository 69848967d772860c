"""A job's own state from inside it, as RQ's documentation shows it: `rq.get_current_job()`, `job.meta` with
`save_meta()`, and `job.get_position()` of queued jobs; on both workers."""
from __future__ import annotations

import pytest
import rq
from rq.job import Job

from jobsvc import Client, Config
from tests import rqfuncs


def test_get_current_job_is_the_running_job(queue, burst, r):
    job = queue.enqueue(rqfuncs.current_job_facts, "x", description="facts", meta={"owner": "ops"})
    burst()
    assert Job.fetch(job.id, connection=r).return_value() == {
        "id": job.id, "origin": "default", "description": "facts", "func_name": "tests.rqfuncs.current_job_facts",
        "args": ["x"], "meta": {"owner": "ops"}, "status": "started"}


def test_get_current_job_is_none_outside_a_job(queue, burst, r):
    queue.enqueue(rqfuncs.add, 1, 1)
    burst()
    assert rq.get_current_job() is None  # the worker took the job off RQ's stack when it ended


def test_each_job_sees_itself(queue, burst, r):
    ids = [queue.enqueue(rqfuncs.position_probe).id for _ in range(3)]
    burst()
    assert [Job.fetch(i, connection=r).return_value() for i in ids] == ids


def test_meta_saved_by_a_job_that_then_fails_is_kept(queue, burst, r):
    job = queue.enqueue(rqfuncs.meta_then_boom, "stage", "uploaded")
    burst()
    assert Job.fetch(job.id, connection=r).meta == {"stage": "uploaded"}


def test_meta_saved_inside_a_job_keeps_what_the_enqueuer_put_there(queue, burst, r):
    job = queue.enqueue(rqfuncs.with_meta, "progress", 42, meta={"owner": "ops"})
    burst()
    assert Job.fetch(job.id, connection=r).meta == {"owner": "ops", "progress": 42}


def test_get_position_of_queued_jobs(queue, r):
    first, second = queue.enqueue(rqfuncs.say, "a"), queue.enqueue(rqfuncs.say, "b")
    front = queue.enqueue(rqfuncs.say, "front", at_front=True)
    assert [j.get_position() for j in (front, first, second)] == [0, 1, 2]


def test_get_position_seen_from_inside_a_running_job(queue, burst, r):
    probe = queue.enqueue(rqfuncs.positions, ["probe", "next", "last"], job_id="probe")
    queue.enqueue(rqfuncs.say, "next", job_id="next")
    queue.enqueue(rqfuncs.say, "last", job_id="last")
    burst()
    # the running job is off the queue (None); the others moved up
    assert Job.fetch(probe.id, connection=r).return_value() == [None, 0, 1]


def test_get_current_job_inside_a_job_enqueued_with_jobsvcs_client(r, redis_url, burst, worker_kind):
    if worker_kind == "rq":
        pytest.skip("a jobsvc job's own options are jobsvc's; RQ's patterns are above")
    client = Client(r, Config(redis_url=redis_url))
    job = client.enqueue(rqfuncs.with_meta, "done", True, meta={"from": "jobsvc"}).id
    burst()
    assert client.result(job) == job
    assert Job.fetch(job, connection=r).meta == {"from": "jobsvc", "done": True}
