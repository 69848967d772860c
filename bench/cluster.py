"""`python -m bench.cluster [--jobs N] [--markdown]`: the same work on a Redis Cluster of 1 shard and of 3 shards
(docs/cluster.md; issue 15's bench section).

The work: N no-op jobs spread over 6 queues (two per shard on 3 shards), enqueued in batches through
`Client.enqueue_many`, then drained by one in-process worker loop (`Leases.claim_many` over the 6 queues, 50 at
a time, and one complete.lua call per queue of each batch), as the core runs on a cluster today (the worker
processes do not yet: docs/cluster.md). Each shard's Redis CPU (INFO commandstats) and commands are read per
phase. On a machine with few CPUs the one Python loop, not Redis, bounds jobs/s; the figure that shows the
sharding is each shard's Redis CPU per job: on 3 shards about a third of the 1-shard figure for the same work."""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobsvc import Client, Config, JobSpec
from jobsvc.embedded_cluster import LocalCluster, queues_per_shard
from jobsvc.engine import scripts
from jobsvc.engine.leases import Completion, Leases

from .harness import markdown_table, text_table

QUEUES = 6
BATCH = 1000
CLAIM = 50


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


def _drain(client: Client, leases: Leases, queues: list[str], n: int) -> None:
    done = 0
    while done < n:
        got = leases.claim_many(queues, "bench.1.w", CLAIM)
        by_queue: dict[str, list[Completion]] = {}
        for lease in got:
            by_queue.setdefault(lease.queue, []).append(Completion(lease, None, 0.0, 0.0))
        scripts.call_many(client.redis, [leases.complete_many_call("bench.1.w", c) for c in by_queue.values()])
        done += len(got)


def run(shards: int, n: int, workdir: Path) -> dict[str, Any]:
    cluster = LocalCluster(workdir / f"shards{shards}", masters=shards, replicas_per_master=0).start()
    try:
        rc = cluster.client()
        config = Config(redis_url=cluster.url)
        client, leases = Client(rc, config), Leases(rc, config)
        queues = queues_per_shard(rc, QUEUES // shards, name="bench")
        client.enqueue_many([JobSpec("bench.jobs.noop", queue=q) for q in queues])  # load scripts, warm up
        _drain(client, leases, queues, len(queues))
        specs = [JobSpec("bench.jobs.noop", queue=queues[i % len(queues)]) for i in range(n)]
        enq_s, enq = _phase(cluster, lambda: [client.enqueue_many(specs[i:i + BATCH]) for i in range(0, n, BATCH)])
        run_s, ran = _phase(cluster, lambda: _drain(client, leases, queues, n))
        rc.close()
        return {"shards": shards, "jobs": n, "enqueue_rate": n / enq_s, "run_rate": n / run_s,
                "cpu_us": [(a[0] + b[0]) / n for a, b in zip(enq, ran, strict=True)],
                "commands": [(a[1] + b[1]) / n for a, b in zip(enq, ran, strict=True)]}
    finally:
        cluster.stop()


def render(results: list[dict[str, Any]], markdown: bool = False) -> str:
    one = next((r for r in results if r["shards"] == 1), None)
    header = ["shards", "jobs", "enqueue jobs/s", "run jobs/s", "Redis CPU µs/job, each shard",
              "vs 1 shard", "commands/job, each shard"]
    rows = []
    for r in results:
        ratio = ("-" if one is None else
                 " / ".join(f"{c / sum(one['cpu_us']):.2f}" for c in r["cpu_us"]))
        rows.append([str(r["shards"]), f"{r['jobs']:,}", f"{r['enqueue_rate']:,.0f}", f"{r['run_rate']:,.0f}",
                     " / ".join(f"{c:.1f}" for c in r["cpu_us"]), ratio,
                     " / ".join(f"{c:.2f}" for c in r["commands"])])
    return (markdown_table if markdown else text_table)(header, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=30_000, help="no-op jobs per cluster (default 30,000)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jobsvc-bench-cluster-") as tmp:
        results = []
        for shards in (1, 3):
            print(f"  {shards} shard(s), {args.jobs:,} jobs over {QUEUES} queues ...", file=sys.stderr, flush=True)
            results.append(run(shards, args.jobs, Path(tmp)))
    print(render(results, args.markdown))
    print(f"\nOne in-process client: enqueue_many in batches of {BATCH}, then claim_many over the {QUEUES} queues "
          f"({CLAIM} at a time) and one complete.lua call per queue of each batch. Redis CPU and commands per job "
          "are each master's own (INFO commandstats), over both phases; 'vs 1 shard' is each shard's CPU per job "
          "over the 1-shard cluster's.")


if __name__ == "__main__":
    main()
