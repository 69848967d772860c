"""Admin figures, against one private Redis: list 50 jobs from 1,000,000 vs from 1,000 (core and
through the HTTP app), stats at 1,000,000 jobs, and bulk retry of 100,000 failed jobs against RQ's
FailedJobRegistry.requeue in the same run.

    python -m bench.admin            # full sizes (a few minutes, ~1 GB of Redis memory)
    python -m bench.admin --quick    # small sizes, a smoke run
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import redis

from jobsvc import Client, Config
from jobsvc.admin.bulk import BulkFilter, bulk_retry
from jobsvc.admin.listing import JobFilter, list_jobs
from jobsvc.embedded import EmbeddedRedis
from jobsvc.engine.keys import Keys
from jobsvc.engine.stats import counts_by

from .harness import percentile

NOOP = "bench.jobs.noop"


def timed(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """p50 and p99 in ms of n calls."""
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return percentile(samples, 50), percentile(samples, 99)


def fill(client: Client, total: int, queues: int = 4) -> None:
    batch = 5000
    for start in range(0, total, batch):
        n = min(batch, total - start)
        client.enqueue_many([client.job(NOOP, queue=f"q{(start + i) % queues}") for i in range(n)])


def make_failed(r: redis.Redis, client: Client, n: int, queue: str) -> None:
    """n failed jobs the fast way: enqueue, then claim and fail them through the real scripts, pipelined."""
    from jobsvc.engine import scripts
    from jobsvc.engine.leases import Leases

    client.enqueue_many([client.job(NOOP, queue=queue, max_attempts=1) for _ in range(n)])
    leases = Leases(r, client.config)
    done = 0
    while done < n:
        chunk = min(500, n - done)
        fails = [leases.fail_call(lease, "RuntimeError", "bench", "", False, "bench", 0.0, 0.0)
                 for lease in leases.claim_many([queue], "bench", chunk)]
        scripts.call_many(r, fails)
        done += chunk


def rq_requeue_rate(r: redis.Redis, n: int) -> float:
    """RQ's FailedJobRegistry.requeue over n failed RQ jobs, jobs/s."""
    from rq import Queue
    from rq.registry import FailedJobRegistry

    q = Queue("rqbench", connection=r)
    jobs = q.enqueue_many([Queue.prepare_data(NOOP) for _ in range(n)])
    reg = FailedJobRegistry(queue=q)
    with r.pipeline() as pipe:
        for job in jobs:
            q.remove(job, pipeline=pipe)
            job.set_status("failed", pipeline=pipe)
            reg.add(job, ttl=3600, pipeline=pipe)
        pipe.execute()
    t = time.perf_counter()
    for job in jobs:
        reg.requeue(job.id)
    return n / (time.perf_counter() - t)


def _http(config: Config, r: redis.Redis) -> tuple[Any, dict[str, str]]:
    """The admin HTTP app's test client and the headers that sign it in."""
    os.environ.setdefault("ADMIN_API_KEY", "bench-key-0123456789abcdef")
    from admin_api import create_app

    return create_app(config, r).test_client(), {"X-Admin-Key": os.environ["ADMIN_API_KEY"]}


def _listing(r: redis.Redis, config: Config, client: Client, http: Any, headers: dict[str, str],
             size: int) -> dict[str, Any]:
    """Timings of each listing with `size` jobs stored (Redis emptied first), and Redis memory."""
    r.flushdb()
    t = time.perf_counter()
    fill(client, size)
    fill_s = time.perf_counter() - t
    reps = 300
    figures = {
        "list": timed(lambda: list_jobs(r, config, JobFilter(), None, 50), reps),
        "list_queued": timed(lambda: list_jobs(r, config, JobFilter(state="queued", queue="q1"), None, 50),
                             reps),
        "http": timed(lambda: http.get("/api/v1/jobs?limit=50", headers=headers), reps),
        "stats": timed(lambda: counts_by(r, Keys(), "queue"), reps),
        "mem": r.info("memory")["used_memory"],
    }
    print(f"{size:>9,} jobs stored (filled at {size / fill_s:,.0f} jobs/s)", flush=True)
    return figures


def _listing_rows(results: dict[int, dict[str, Any]], small: int, big: int) -> list[tuple[str, str, str]]:
    rows = []
    for label, key in (("list 50 (newest first)", "list"), ("list 50 queued of one queue", "list_queued"),
                       ("GET /api/v1/jobs?limit=50", "http"), ("stats by queue", "stats")):
        (a50, a99), (b50, b99) = results[small][key], results[big][key]
        rows.append((f"{label}: p50 / p99 ms", f"{a50:.2f} / {a99:.2f}  (from {small:,})",
                     f"{b50:.2f} / {b99:.2f}  (from {big:,}; p99 ratio {b99 / a99:.2f})"))
    rows.append(("Redis memory", f"{results[small]['mem'] / 2**20:,.0f} MiB",
                 f"{results[big]['mem'] / 2**20:,.0f} MiB"))
    return rows


def _bulk_retry_row(r: redis.Redis, config: Config, client: Client, retry_n: int, rq_n: int) -> tuple[str, str, str]:
    r.flushdb()
    make_failed(r, client, retry_n, "bulk")
    t = time.perf_counter()
    res = bulk_retry(r, config, BulkFilter(queue="bulk", state="failed"))
    ours = res.changed / (time.perf_counter() - t)
    theirs = rq_requeue_rate(r, rq_n)
    return (f"bulk retry of {retry_n:,} failed jobs", f"jobsvc {ours:,.0f} jobs/s",
            f"RQ FailedJobRegistry.requeue {theirs:,.0f} jobs/s ({rq_n:,} jobs); ratio {ours / theirs:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.admin")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    big, small, retry_n, rq_n = (20_000, 1_000, 5_000, 1_000) if args.quick else (1_000_000, 1_000, 100_000, 10_000)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, persist=False) as srv:
        r = redis.Redis.from_url(srv.url)
        config = Config(redis_url=srv.url)
        client = Client(r, config)
        http, headers = _http(config, r)
        results = {size: _listing(r, config, client, http, headers, size) for size in (small, big)}
        rows = _listing_rows(results, small, big)
        rows.append(_bulk_retry_row(r, config, client, retry_n, rq_n))
    width = max(len(a) for a, _, _ in rows)
    for a, b, c in rows:
        print(f"{a:<{width}}  {b:<34} {c}")


if __name__ == "__main__":
    main()
