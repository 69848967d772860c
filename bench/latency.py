"""Enqueue -> start latency of jobsvc, RQ (SimpleWorker and forking Worker) and the bare BLPOP floor: one idle
worker process each, jobs enqueued one at a time on a fixed grid, latency = when the job function starts - just
before the enqueue call. Split from bench/measure.py to keep modules small."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rq import Queue
from rq.job import Job

from jobsvc import Client

from . import jobs
from .harness import BenchError, Env, percentile, wait_until
from .measure import FLOOR, JOBSVC, RQ_SIMPLE, RQ_WORKER, Results, Sizes, jobsvc_client, put


def _latencies(pairs: list[tuple[str, float]], starts: dict[str, float]) -> list[float]:
    missing = [i for i, _ in pairs if starts.get(i) is None]
    if missing:
        raise BenchError(f"{len(missing)} job(s) without a start time")
    return [(starts[i] - t) * 1000 for i, t in pairs]


def _paced(n: int, gap: float, enqueue_one: Any, returned: dict[str, float]) -> list[tuple[str, float]]:
    """Enqueue n jobs, one every `gap` seconds (on a fixed grid, so slow enqueues do not stretch it);
    `returned` gets the time each enqueue call returned."""
    pairs = []
    t_next = time.perf_counter()
    for _ in range(n):
        t = time.time()
        job_id = enqueue_one(t)
        returned[job_id] = time.time()
        pairs.append((job_id, t))
        t_next += gap
        pause = t_next - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    return pairs


def _latency_figures(out: Results, system: str, pairs: list[tuple[str, float]], starts: dict[str, Any],
                     returned: dict[str, float]) -> None:
    lat = _latencies(pairs, starts)
    after = [(starts[i] - returned[i]) * 1000 for i, _ in pairs]
    enq = [(returned[i] - t) * 1000 for i, t in pairs]
    put(out, "latency_p50", system, percentile(lat, 50))
    put(out, "latency_p99", system, percentile(lat, 99))
    out.setdefault("_latency_detail", {})[system] = {
        "max_ms": max(lat), "from_return_p50_ms": percentile(after, 50), "from_return_p99_ms": percentile(after, 99),
        "enqueue_call_p50_ms": percentile(enq, 50), "enqueue_call_p99_ms": percentile(enq, 99), "n": len(lat)}


def _measure(env: Env, out: Results, notes: list[str], system: str, p: Any,
             run: Callable[[], tuple[list[tuple[str, float]], dict[str, Any], dict[str, float]]]) -> None:
    """Run one system's pass with its worker process `p`: figures on success, a note on failure, and the
    process stopped either way (so the next system's worker is the only one running)."""
    try:
        pairs, starts, returned = run()
        _latency_figures(out, system, pairs, starts, returned)
    except BenchError as exc:
        notes.append(f"latency, {system}: not measured: {exc}")
    finally:
        env.children.stop([p])


def _jobsvc_pass(env: Env, sizes: Sizes, client: Client,
                 p: Any) -> tuple[list[tuple[str, float]], dict[str, Any], dict[str, float]]:
    env.wait_workers(1, [p])
    for _ in range(5):
        client.enqueue(jobs.stamp, 0.0, queue="lat")  # warm-up: imports bench.jobs in the worker
    wait_until(lambda: client.stats("lat").get("completed", 0) >= 5, 20, "jobsvc warm-up", procs=[p],
               children=env.children)
    time.sleep(0.2)
    returned: dict[str, float] = {}
    pairs = _paced(sizes.latency, sizes.latency_gap,
                   lambda t: client.enqueue(jobs.stamp, t, queue="lat").id, returned)
    wait_until(lambda: client.stats("lat").get("completed", 0) >= sizes.latency + 5, 30, "jobsvc latency jobs",
               procs=[p], children=env.children)
    return pairs, {i: client.result(i) for i, _ in pairs}, returned


def _rq_pass(env: Env, system: str, n: int, gap: float,
             p: Any) -> tuple[list[tuple[str, float]], dict[str, Any], dict[str, float]]:
    q = Queue("lat", connection=env.r)
    env.wait_workers(1, [p])
    for _ in range(3):
        q.enqueue(jobs.stamp, 0.0)
    wait_until(lambda: env.r.zcard("rq:finished:lat") >= 3, 20, f"{system} warm-up", procs=[p],
               children=env.children)
    time.sleep(0.2)
    returned: dict[str, float] = {}
    pairs = _paced(n, gap, lambda t: q.enqueue(jobs.stamp, t).id, returned)
    wait_until(lambda: env.r.zcard("rq:finished:lat") >= n + 3, 30 + n * 0.1, f"{system} latency jobs",
               procs=[p], children=env.children)
    return pairs, {i: Job.fetch(i, connection=env.r).return_value() for i, _ in pairs}, returned


def _floor_pass(env: Env, sizes: Sizes, p: Any) -> tuple[list[tuple[str, float]], dict[str, Any], dict[str, float]]:
    wait_until(lambda: env.r.exists("floor:consumers"), 20, "bare consumer up", procs=[p], children=env.children)
    for _ in range(5):
        env.r.rpush("floor", "0")
    wait_until(lambda: env.r.llen("floor:out") >= 5, 20, "bare warm-up", procs=[p], children=env.children)
    env.r.delete("floor:out")
    time.sleep(0.2)
    seq = iter(range(10**9))
    returned: dict[str, float] = {}

    def push(t: float) -> str:
        i = str(next(seq))
        env.r.rpush("floor", f"{i}:{t!r}")
        return i

    pairs = _paced(sizes.latency, sizes.latency_gap, push, returned)
    wait_until(lambda: env.r.llen("floor:out") >= sizes.latency, 30, "bare echo", procs=[p], children=env.children)
    starts = {}
    for row in env.r.lrange("floor:out", 0, -1):
        item, popped = row.decode().split()
        starts[item.split(":")[0]] = float(popped)
    return pairs, starts, returned


def latency(env: Env, sizes: Sizes, out: Results, notes: list[str]) -> None:
    # jobsvc: one idle worker process
    env.flush()
    client = jobsvc_client(env)
    p = env.jobsvc_worker("lat")
    _measure(env, out, notes, JOBSVC, p, lambda: _jobsvc_pass(env, sizes, client, p))
    for simple, system, n, gap in ((True, RQ_SIMPLE, sizes.latency, sizes.latency_gap),
                                   (False, RQ_WORKER, sizes.latency_fork, sizes.latency_gap_fork)):
        env.flush()
        p = env.rq_worker("lat", simple=simple)
        # Each lambda binds this pass's values (B023); it is called within the pass anyway.
        _measure(env, out, notes, system, p, lambda system=system, n=n, gap=gap, p=p: _rq_pass(env, system, n, gap, p))
    env.flush()
    p = env.bare("floor", "echo")
    _measure(env, out, notes, FLOOR, p, lambda: _floor_pass(env, sizes, p))
    notes.append(f"enqueue->start: one idle worker process; {sizes.latency} jobs (forking Worker: "
                 f"{sizes.latency_fork}) enqueued one at a time, {sizes.latency_gap * 1000:.0f} ms apart "
                 f"({sizes.latency_gap_fork * 1000:.0f} ms for the forking Worker); latency = time.time() as the "
                 "job function starts - time.time() just before the enqueue call (so the enqueue round trip "
                 "is included).")
