"""The cancel-stale sweep in the core (jobsvc/admin/bulk/stale.py, cancel_stale.lua): gauges follow, a job that
moved on is skipped, pages span chunks, bad input changes nothing."""
from __future__ import annotations

import pytest

from jobsvc import State, ValidationError
from jobsvc.admin.bulk import BulkFilter, cancel_stale
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases
from tests.conftest import redis_ms
from tests.test_jobsvc.test_bulk import assert_gauges_match, enqueue, snapshot

KEYS = Keys()
HOUR_MS = 3_600_000


def backdate(r, ids, field="js_created_ms", hours=2):
    when = redis_ms(r) - hours * HOUR_MS
    for job_id in ids:
        r.hset(KEYS.job(job_id), field, when)
        if field == "js_created_ms":
            r.zadd(KEYS.created(r.hget(KEYS.job(job_id), "origin").decode()), {job_id: when})


def test_cancels_across_chunks_and_keeps_the_gauges(client, r, config):
    old = enqueue(client, 7)
    young = enqueue(client, 2)
    backdate(r, old)
    out = cancel_stale(r, config, BulkFilter(), queued_for_s=3600, chunk=3)
    assert (out.matched, out.changed, out.details["queued"]) == (7, 7, 7)
    assert {client.get(j).state for j in old} == {State.CANCELLED}
    assert {client.get(j).state for j in young} == {State.QUEUED}
    assert_gauges_match(r)


def test_terminates_long_running_jobs_and_keeps_the_gauges(client, r, config):
    ids = enqueue(client, 3)
    held = Leases(r, config).claim_many(["default"], "host.1.w", 3)
    backdate(r, [lease.job_id for lease in held[:2]], "js_started_ms")
    out = cancel_stale(r, config, BulkFilter(), running_for_s=3600, chunk=1)
    assert (out.matched, out.changed, out.details["running"]) == (2, 2, 2)
    assert sorted(client.get(j).state.value for j in ids) == ["cancelled", "cancelled", "running"]
    assert r.zcard(KEYS.leases) == 1
    assert_gauges_match(r)


def test_a_job_that_moved_on_is_skipped(client, r, config):
    job_id = enqueue(client, 1)[0]
    backdate(r, [job_id])
    assert Leases(r, config).claim(["default"], "w").job_id == job_id  # claimed since it was queued
    out = cancel_stale(r, config, BulkFilter(), queued_for_s=3600)
    assert (out.matched, out.changed, out.skipped) == (0, 0, 1)
    assert client.get(job_id).state == State.RUNNING


@pytest.mark.parametrize("kwargs", [{}, {"queued_for_s": -1}, {"running_for_s": True}, {"queued_for_s": "1"},
                                    {"queued_for_s": 1, "flt": BulkFilter(state="failed")},
                                    {"queued_for_s": 1, "flt": BulkFilter(queue="bad queue")},
                                    {"queued_for_s": 1, "chunk": 0}])
def test_bad_input_raises_and_changes_nothing(client, r, config, kwargs):
    backdate(r, enqueue(client, 2))
    before = snapshot(r)
    flt = kwargs.pop("flt", BulkFilter())
    with pytest.raises(ValidationError):
        cancel_stale(r, config, flt, **kwargs)
    assert snapshot(r) == before
