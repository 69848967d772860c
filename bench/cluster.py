"""`python -m bench.cluster [--jobs N] [--workers W] [--markdown]`: the same work on a Redis Cluster of 1 shard and
of 3 shards (docs/cluster.md; issue 15's bench section).

The work: N no-op jobs spread over 6 queues (two per shard on 3 shards), enqueued in batches through
`Client.enqueue_many`, then run by W `jobsvc worker --burst` processes on all 6 queues (a redis+cluster:// URL),
timed from their start to their exit. Each shard's Redis CPU (INFO commandstats) and commands are read per
phase. On a machine with few CPUs the worker processes, not Redis, bound jobs/s; the figure that shows the
sharding is each shard's Redis CPU per job: on 3 shards about a third of the 1-shard figure for the same work."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobsvc import Client, Config, JobSpec
from jobsvc.embedded_cluster import LocalCluster, queues_per_shard
from jobsvc.engine.keys import template

from .harness import markdown_table, text_table

QUEUES = 6
BATCH = 1000
ROOT = Path(__file__).resolve().parents[1]  # the workers import bench.jobs from here


def _shard_cost(cluster: LocalCluster) -> list[tuple[float, int]]:
    """(Redis CPU µs, commands) of each master since its last CONFIG RESETSTAT."""
    out = []
    for node in cluster.masters:
        stats = node.conn.info("commandstats")
        out.append((sum(v["usec"] for v in stats.values()), sum(v["calls"] for v in stats.values())))
    return out


def _phase(cluster: LocalCluster, work: Callable[[], Any]) -> tuple[float, list[tuple[float, int]]]:
    for node in cluster.masters:
        node.conn.config_resetstat()
    start = time.perf_counter()
    work()
    return time.perf_counter() - start, _shard_cost(cluster)


def _drain(url: str, queues: list[str], workers: int) -> None:
    """Run every queued job with `workers` burst worker processes (they exit once the queues are empty)."""
    env = {**os.environ, "REDIS_URL": url.replace("redis://", "redis+cluster://"), "JOBSVC_ALLOWED_MODULES": "bench"}
    procs = [subprocess.Popen([sys.executable, "-m", "jobsvc_cli", "worker", "--burst", "-q", ",".join(queues)],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(workers)]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"a worker failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")


def _finished(rc: Any, queues: list[str]) -> int:
    return sum(rc.zcard(template("finished", Config().key_prefix, q) % q) for q in queues)


def run(shards: int, n: int, workdir: Path, workers: int = 2) -> dict[str, Any]:
    cluster = LocalCluster(workdir / f"shards{shards}", masters=shards, replicas_per_master=0).start()
    try:
        rc = cluster.client()
        client = Client(rc, Config(redis_url=cluster.url))
        queues = queues_per_shard(rc, QUEUES // shards, name="bench")
        client.enqueue_many([JobSpec("bench.jobs.noop", queue=q) for q in queues])  # load scripts, warm up
        _drain(cluster.url, queues, 1)
        specs = [JobSpec("bench.jobs.noop", queue=queues[i % len(queues)]) for i in range(n)]
        enq_s, enq = _phase(cluster, lambda: [client.enqueue_many(specs[i:i + BATCH]) for i in range(0, n, BATCH)])
        run_s, ran = _phase(cluster, lambda: _drain(cluster.url, queues, workers))
        if _finished(rc, queues) != n + len(queues):
            raise RuntimeError(f"{_finished(rc, queues) - len(queues)} of {n} jobs finished")
        rc.close()
        return {"shards": shards, "jobs": n, "workers": workers, "enqueue_rate": n / enq_s, "run_rate": n / run_s,
                "cpu_us": [(a[0] + b[0]) / n for a, b in zip(enq, ran, strict=True)],
                "commands": [(a[1] + b[1]) / n for a, b in zip(enq, ran, strict=True)],
                "enqueue_cpu_us": sum(a[0] for a in enq) / n, "enqueue_commands": sum(a[1] for a in enq) / n}
    finally:
        cluster.stop()


def render(results: list[dict[str, Any]], markdown: bool = False) -> str:
    one = next((r for r in results if r["shards"] == 1), None)
    header = ["shards", "jobs", "enqueue jobs/s", "run jobs/s", "Redis CPU µs/job, each shard",
              "vs 1 shard", "commands/job, each shard", "enqueue µs/job, all shards",
              "enqueue commands/job, all shards"]
    rows = []
    for r in results:
        ratio = ("-" if one is None else
                 " / ".join(f"{c / sum(one['cpu_us']):.2f}" for c in r["cpu_us"]))
        rows.append([str(r["shards"]), f"{r['jobs']:,}", f"{r['enqueue_rate']:,.0f}", f"{r['run_rate']:,.0f}",
                     " / ".join(f"{c:.1f}" for c in r["cpu_us"]), ratio,
                     " / ".join(f"{c:.2f}" for c in r["commands"]), f"{r['enqueue_cpu_us']:.1f}",
                     f"{r['enqueue_commands']:.2f}"])
    return (markdown_table if markdown else text_table)(header, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=30_000, help="no-op jobs per cluster (default 30,000)")
    parser.add_argument("--workers", type=int, default=2, help="burst worker processes (default 2)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jobsvc-bench-cluster-") as tmp:
        results = []
        for shards in (1, 3):
            print(f"  {shards} shard(s), {args.jobs:,} jobs over {QUEUES} queues ...", file=sys.stderr, flush=True)
            results.append(run(shards, args.jobs, Path(tmp), args.workers))
    print(render(results, args.markdown))
    print(f"\nenqueue_many in batches of {BATCH}, then {args.workers} `jobsvc worker --burst` processes on the "
          f"{QUEUES} queues, timed from their start to their exit (their start-up included). Redis CPU and commands "
          "per job are each master's own (INFO commandstats), over both phases; 'vs 1 shard' is each shard's CPU "
          "per job over the 1-shard cluster's; the enqueue columns are the enqueue phase alone, every master summed.")


if __name__ == "__main__":
    main()
