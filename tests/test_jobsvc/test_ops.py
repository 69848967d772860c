"""Operator actions on one job: patch, delete, terminate, progress."""
from __future__ import annotations

import time

import pytest

from jobsvc import NotFound, State, ValidationError, WrongState
from jobsvc.engine import context
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases
from jobsvc.engine.stats import counts_by

NOOP = "tests.jobfuncs.noop"


def test_patch_changes_arguments_of_a_queued_job(client):
    e = client.enqueue("tests.jobfuncs.add", 1, 2)
    info = client.patch(e.id, args=[10, 20])
    assert (info.args, info.state) == ((10, 20), State.QUEUED)
    assert "add(10, 20)" in info.raw["description"]


def test_patch_priority_moves_the_job_to_its_new_lane(client, r, config):
    first = client.enqueue(NOOP, priority=5)
    second = client.enqueue(NOOP, priority=5)
    client.patch(second.id, priority=1)
    assert Leases(r, config).claim(["default"], "w").job_id == second.id
    assert Leases(r, config).claim(["default"], "w").job_id == first.id


def test_patch_run_time_in_future_schedules_a_queued_job(client, r):
    e = client.enqueue(NOOP)
    due = int(time.time() * 1000) + 60_000
    info = client.patch(e.id, run_at_ms=due)
    assert (info.state, info.due_ms) == (State.SCHEDULED, due)
    assert r.llen("rq:queue:default") == 0
    assert counts_by(r, Keys(), "queue")["default"]["scheduled"] == 1


def test_patch_run_time_now_queues_a_scheduled_job(client, r):
    e = client.enqueue(NOOP, delay=600)
    info = client.patch(e.id, run_at_ms=0)
    assert info.state == State.QUEUED
    assert r.zscore(Keys().scheduled, e.id) is None
    assert counts_by(r, Keys(), "queue")["default"]["queued"] == 1


def test_patch_of_a_running_job_is_a_wrong_state(client, r, config):
    e = client.enqueue(NOOP)
    Leases(r, config).claim(["default"], "w")
    with pytest.raises(WrongState) as err:
        client.patch(e.id, priority=2)
    assert err.value.state == "running"


def test_patch_with_bad_priority_changes_nothing(client):
    e = client.enqueue(NOOP)
    with pytest.raises(ValidationError):
        client.patch(e.id, priority=99)
    assert client.get(e.id).priority == 5


def test_delete_removes_every_trace(client, r):
    e = client.enqueue(NOOP, idempotency_key="k1", delay=60)
    client.delete(e.id)
    assert [k for k in r.keys("*") if e.id.encode() in k or (r.type(k) == b"zset" and r.zscore(k, e.id))] == []
    assert not r.exists(Keys().idempotency("default", "k1"))
    assert counts_by(r, Keys(), "queue")["default"]["scheduled"] == 0
    with pytest.raises(NotFound):
        client.get(e.id)


def test_delete_of_a_running_job_is_refused(client, r, config):
    e = client.enqueue(NOOP)
    Leases(r, config).claim(["default"], "w")
    with pytest.raises(WrongState):
        client.delete(e.id)
    assert client.get(e.id).state == State.RUNNING


def test_terminate_cancels_and_revokes_the_lease(client, r, config):
    e = client.enqueue(NOOP)
    leases = Leases(r, config)
    lease = leases.claim(["default"], "w1")
    assert client.terminate(e.id) == "w1"
    assert client.get(e.id).state == State.CANCELLED
    assert r.lrange(Keys().terminate("w1"), 0, -1) == [e.id.encode()]
    with pytest.raises(WrongState):
        leases.complete(lease, "late", "w1", 1.0, 2.0)
    assert client.runs(e.id)[-1]["outcome"] == "terminated"


def test_terminate_of_a_queued_job_is_a_wrong_state(client):
    e = client.enqueue(NOOP)
    with pytest.raises(WrongState):
        client.terminate(e.id)


def test_progress_is_recorded_for_the_lease_holder_only(client, r, config):
    e = client.enqueue(NOOP)
    lease = Leases(r, config).claim(["default"], "w")
    context.enter(context.RunningJob(e.id, lease.token, 1, "default", r))
    try:
        assert context.set_progress(40, "reading")
        info = client.get(e.id)
        assert (info.progress, info.progress_message) == (40, "reading")
        context.enter(context.RunningJob(e.id, "stale", 1, "default", r))
        assert not context.set_progress(90)
        assert client.get(e.id).progress == 40
    finally:
        context.enter(None)


def test_progress_outside_a_job_is_a_no_op():
    assert context.set_progress(10) is False


def test_progress_out_of_range_is_rejected():
    with pytest.raises(ValidationError):
        context.set_progress(101)


def test_queue_stats_sum_the_tallies_of_the_queues_groups(client, run_worker):
    client.enqueue("tests.jobfuncs.add", 1, 2, queue="q", namespace="a")
    client.enqueue("tests.jobfuncs.noop", queue="q", namespace="b")
    client.enqueue("tests.jobfuncs.noop", queue="other")
    client.enqueue("tests.jobfuncs.fatal", queue="q")
    run_worker(queues=("q",))
    stats = client.stats("q")
    assert (stats["enqueued"], stats["completed"], stats["failed"]) == (3, 2, 1)
    assert client.stats("other")["enqueued"] == 1
