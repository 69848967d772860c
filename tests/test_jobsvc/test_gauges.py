"""The per-group gauges stay equal to the real number of jobs in each state through every transition."""
from __future__ import annotations

import contextlib
import random
import time

from jobsvc import State
from jobsvc.config import Config
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases
from jobsvc.engine.stats import counts_by, group_counts
from jobsvc.maintenance.reaper import Reaper
from jobsvc.scheduling.promotion import Promoter


def actual_counts(client, r):
    """Ground truth by scanning every job hash (test only: the product never scans)."""
    counts: dict[str, int] = {}
    for key in r.scan_iter("rq:job:*"):
        state = client.get(key.decode().split(":", 2)[2]).state.value
        counts[state] = counts.get(state, 0) + 1
    return counts


def gauge_totals(r, keys):
    totals: dict[str, int] = {}
    for counts in group_counts(r, keys).values():
        for state, n in counts.items():
            if n:
                totals[state] = totals.get(state, 0) + n
    return totals


def test_gauges_match_reality_after_random_transitions(client, r):
    rng = random.Random(3)
    cfg = Config(redis_url=client.config.redis_url, max_lease_losses=2)
    leases, reaper, promoter = Leases(r, cfg), Reaper(r, cfg), Promoter(r, cfg)
    keys = Keys(cfg.key_prefix)
    ids = []
    held = []
    for step in range(400):
        op = rng.choice(["enqueue", "enqueue", "delayed", "claim", "claim", "complete", "fail", "lose", "handback",
                         "requeue", "cancel", "promote"])
        if op in ("enqueue", "delayed"):
            ids.append(client.enqueue("tests.jobfuncs.noop", queue=rng.choice(["a", "b"]),
                                      namespace=rng.choice(["x", "y"]), max_attempts=rng.randint(1, 3),
                                      delay=0.001 if op == "delayed" else None, backoff="fixed").id)
        elif op == "claim":
            lease = leases.claim(["a", "b"], "w")
            if lease:
                held.append(lease)
        elif op in ("complete", "fail", "lose", "handback") and held:
            lease = held.pop(rng.randrange(len(held)))
            if op == "complete":
                leases.complete(lease, step, "w", 1.0, 2.0)
            elif op == "fail":
                leases.fail(lease, RuntimeError("x"), "", retryable=rng.random() < 0.7)
            elif op == "handback":
                leases.handback(lease, "w")
            else:
                r.zadd(keys.leases, {lease.job_id: 0})  # its lease is long gone
                reaper.run_once()
        elif op in ("requeue", "cancel") and ids:
            with contextlib.suppress(Exception):  # wrong state is part of the game
                getattr(client, op)(rng.choice(ids))
        elif op == "promote":
            time.sleep(0.002)  # let delayed jobs fall due (wall time, not synchronisation)
            promoter.run_once()
    assert gauge_totals(r, keys) == actual_counts(client, r)


def test_counts_by_queue_namespace_and_function(client, r):
    client.enqueue("tests.jobfuncs.noop", queue="a", namespace="x")
    client.enqueue("tests.jobfuncs.add", 1, 2, queue="b", namespace="x", delay=60)
    keys = Keys(client.config.key_prefix)
    assert counts_by(r, keys, "queue")["a"]["queued"] == 1
    assert counts_by(r, keys, "queue")["b"]["scheduled"] == 1
    by_ns = counts_by(r, keys, "namespace")["x"]
    assert (by_ns["queued"], by_ns["scheduled"]) == (1, 1)
    assert counts_by(r, keys, "function")["tests.jobfuncs.add"]["scheduled"] == 1


def test_plain_rq_job_is_counted_once_claimed(client, r):
    from rq import Queue

    Queue("default", connection=r).enqueue("tests.jobfuncs.add", 1, 2)
    Leases(r, client.config).claim(["default"], "w")
    keys = Keys(client.config.key_prefix)
    assert counts_by(r, keys, "function")["tests.jobfuncs.add"][State.RUNNING.value] == 1
