"""A worker's batches (workers/batching.py): the claim size follows the run times, completions wait at most a
window, every held lease is renewed, and none of it loses a job."""
from __future__ import annotations

import time

import pytest

from jobsvc import State
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Completion, Leases
from workers import batching
from workers.batching import ClaimSize, Completions
from workers.heartbeat import Heartbeat

NOOP = "tests.jobfuncs.noop"


def test_the_claim_size_starts_at_one_grows_with_fast_runs_and_drops_after_a_slow_one():
    size = ClaimSize(limit=50, window=0.05)
    assert size.next() == 1  # nothing known yet
    size.observe(0.0001)
    assert size.next() == 50  # 500 such runs fit the window: the limit
    size.observe(0.01)  # five of these would
    assert 1 < size.next() < 50
    size.observe(0.2)  # one run longer than the window: back to one at a time
    assert size.next() == 1
    assert ClaimSize(limit=1).next() == 1


def test_completions_are_due_when_the_batch_is_full_or_the_oldest_has_waited_the_window(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(batching.time, "monotonic", lambda: now[0])
    done = Completions(limit=3, window=0.05)
    assert not done.due()
    done.add(Completion(None, None, 0.0, 0.0))  # type: ignore[arg-type]
    assert not done.due()
    now[0] += 0.06
    assert done.due()
    assert len(done.take()) == 1 and not done.due()
    for _ in range(3):
        done.add(Completion(None, None, 0.0, 0.0))  # type: ignore[arg-type]
    assert done.due()


def test_a_burst_worker_runs_every_job_in_batches(client, run_worker, r):
    ids = [e.id for e in client.enqueue_many([client.job(NOOP) for _ in range(300)])]
    r.config_resetstat()
    worker = run_worker(claim_batch=50)
    assert worker.processed == 300
    assert all(client.state(i) == State.COMPLETED for i in ids)
    # one claim and one completion call per batch, not per job
    assert r.info("commandstats")["cmdstat_evalsha"]["calls"] < 300 / 5


def test_a_worker_with_claim_batch_1_claims_one_job_per_call(client, run_worker, r):
    client.enqueue_many([client.job(NOOP) for _ in range(20)])
    r.config_resetstat()
    assert run_worker(claim_batch=1).processed == 20
    assert r.info("commandstats")["cmdstat_lpop"]["calls"] >= 20


@pytest.fixture
def heartbeat(r, config):
    def make(current, waiting, lost):
        return Heartbeat(r, config, "rq:worker:w", lambda: (current, time.monotonic()), lambda: None, lambda: None,
                         waiting=lambda: waiting, on_waiting_lost=lost.extend)
    return make


def test_the_heartbeat_renews_the_leases_a_worker_holds_and_reports_those_lost(client, r, config, heartbeat):
    client.enqueue_many([client.job(NOOP) for _ in range(3)])
    running, held, revoked = Leases(r, config).claim_many(["default"], "w", 3)
    for lease in (running, held, revoked):
        r.hset(Keys.job(lease.job_id), "js_lease_exp", 1)
    client.terminate(revoked.job_id)  # an operator stops a job the worker has not started
    lost: list[str] = []
    heartbeat(running, [held, revoked], lost).run_once()
    assert lost == [revoked.job_id]
    for lease in (running, held):
        assert int(r.hget(Keys.job(lease.job_id), "js_lease_exp")) > 1


def test_a_job_whose_lease_was_lost_before_it_started_is_not_run(client, run_worker, monkeypatch):
    from workers import worker as worker_module

    first, second = (client.enqueue(NOOP).id for _ in range(2))
    original = worker_module.LeasedWorker._run_and_finish

    def losing_the_second(self, lease):
        if lease.job_id == first:
            self._waiting_lost([second])  # as the heartbeat reports it
        return original(self, lease)

    monkeypatch.setattr(worker_module.LeasedWorker, "_run_and_finish", losing_the_second)
    monkeypatch.setattr(worker_module.ClaimSize, "next", lambda self: 2)
    worker = run_worker()
    assert worker.processed == 1
    assert client.state(first) == State.COMPLETED and client.state(second) == State.RUNNING  # left to the reaper
