"""Batches on the hot path: claim.lua leases several jobs per call, complete.lua records several; each job keeps
its own lease and fencing, and the counters a batch moves are written once per call (flush_counters)."""
from __future__ import annotations

import pytest

from jobsvc import State
from jobsvc.engine import scripts
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Completion, Leases
from jobsvc.errors import LeaseLost
from tests.test_jobsvc.test_gauges import actual_counts, gauge_totals

NOOP = "tests.jobfuncs.noop"
KEYS = Keys("jobsvc:")


@pytest.fixture
def leases(r, config):
    return Leases(r, config)


def check_gauges(client, r):
    assert gauge_totals(r, KEYS) == actual_counts(client, r)


def test_a_batch_claim_takes_jobs_in_priority_order_each_under_its_own_lease(client, leases, r):
    low = [client.enqueue(NOOP, priority=7).id for _ in range(2)]
    high = [client.enqueue(NOOP, priority=2).id for _ in range(2)]
    claimed = leases.claim_many(["default"], "w", 3)
    assert [lease.job_id for lease in claimed] == [*high, low[0]]
    assert len({lease.token for lease in claimed}) == 3 and all(len(lease.token) == 32 for lease in claimed)
    for lease in claimed:
        assert lease.fields["js_token"] == lease.token and lease.fields["js_state"] == "running"
        assert r.zscore(KEYS.leases, lease.job_id) == lease.expires_ms
    assert client.state(low[1]) == State.QUEUED
    check_gauges(client, r)


def test_a_batch_claim_takes_no_more_than_the_queues_hold(client, leases):
    ids = [client.enqueue(NOOP).id for _ in range(3)]
    assert [lease.job_id for lease in leases.claim_many(["default"], "w", 50)] == ids
    assert leases.claim_many(["default"], "w", 50) == []


def test_a_batch_completion_records_each_job_and_rejects_only_a_stale_one(client, leases, r):
    ids = [client.enqueue(NOOP).id for _ in range(4)]
    claimed = leases.claim_many(["default"], "w", 4)
    claimed[2].token = "stale"
    done = [Completion(lease, i, 1.0, 1.002) for i, lease in enumerate(claimed)]
    replies = scripts.call(r, *leases.complete_many_call("w", done))
    with pytest.raises(LeaseLost):
        scripts.check(replies[2], ids[2])
    for i in (0, 1, 3):
        scripts.check(replies[i], ids[i])
        assert client.state(ids[i]) == State.COMPLETED and client.result(ids[i]) == i
    assert client.state(ids[2]) == State.RUNNING
    assert r.zrange(KEYS.leases, 0, -1) == [ids[2].encode()]
    check_gauges(client, r)


def test_a_batch_moves_each_counter_once_per_call_and_counts_every_job(client, leases, r):
    client.enqueue_many([client.job(NOOP) for _ in range(40)])
    claimed = leases.claim_many(["default"], "w", 40)
    r.config_resetstat()
    scripts.call(r, *leases.complete_many_call("w", [Completion(lease, None, 1.0, 1.5) for lease in claimed]))
    calls = {k: v["calls"] for k, v in r.info("commandstats").items()}
    # 40 jobs: gauges (2 fields), tally (completed, 2 histogram fields), minute counter: 6 HINCRBY, not 240
    assert calls["cmdstat_hincrby"] <= 6 and calls["cmdstat_zrem"] == 1 and calls["cmdstat_zadd"] == 1
    group = f"default|default|{NOOP}"
    assert int(r.hget(f"jobsvc:tally:{group}", "completed")) == 40
    assert int(r.hget(f"jobsvc:tally:{group}", "run_sum_ms")) == 40 * 500  # 500 ms each by its worker's clock
    assert client.stats("default")["completed"] == 40 and client.stats("default")["completed_now"] == 40
    check_gauges(client, r)


def test_enqueue_writes_each_lane_and_index_once_per_call(client, r):
    r.config_resetstat()
    client.enqueue_many([client.job(NOOP, priority=p) for p in (5, 5, 3, 3, 3)])
    calls = {k: v["calls"] for k, v in r.info("commandstats").items()}
    assert calls["cmdstat_hset"] == 5  # the jobs themselves
    assert calls["cmdstat_rpush"] == 3  # two lanes, and the wake-up tokens
    assert client.stats("default")["queued_now"] == 5
    check_gauges(client, r)
