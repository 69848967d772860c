"""Pull workers over HTTP: claim + ack round trips per second through the real API (gunicorn), with 1 and 8
client processes and claim batches of 1 and 50, on one private Redis.

    python -m bench.pull                 # 8 s per configuration (~1 minute in all)
    python -m bench.pull --quick         # 2 s per configuration
    python -m bench.pull --web-workers 4 --seconds 10

Each client process runs `POST /jobs/claim {count}` then one `POST /jobs/{id}/ack` per job it got (or, in
the batch-ack rows, one `POST /jobs/ack` for all of them), in a loop, over its own keep-alive
requests.Session, until the time is up; the queue holds more no-op jobs than can be drained. Reported: jobs
acked per second, HTTP requests per second, and p50 / p99 of one claim call. Also the same claim + ack done
in-process on jobsvc.http.pull (no HTTP), the floor the API adds to.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import requests

from jobsvc import Client, Config
from jobsvc.embedded import EmbeddedRedis, free_port
from jobsvc.http import pull

from .harness import PY, Children, cpu_busy, percentile, wait_until

NOOP = "bench.jobs.noop"
KEY = "bench-key-0123456789abcdef"
QUEUE = "pull"
# (client processes, claim count, batch ack): the four, then count 50 acked with one POST /jobs/ack.
CONFIGS = ((1, 1, False), (1, 50, False), (8, 1, False), (8, 50, False), (1, 50, True), (8, 50, True))


@dataclass
class ClientRun:
    jobs: int
    requests: int
    claim_ms: list[float]
    ended: float  # wall clock
    cpu_s: float


def client_loop(base: str, count: int, start_at: float, stop_at: float, out: Any, batch_ack: bool = False) -> None:
    """One client process: claim `count`, ack each (or all in one batch ack), until stop_at (wall clock);
    reports through `out`."""
    jobs = reqs = 0
    claim_ms: list[float] = []
    with requests.Session() as http:
        http.headers["X-Admin-Key"] = KEY
        http.get(f"{base}/health", timeout=10)  # open the keep-alive connection before the clock starts
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < stop_at:
            t = time.perf_counter()
            resp = http.post(f"{base}/api/v1/jobs/claim", json={"queue": QUEUE, "count": count}, timeout=30)
            claim_ms.append((time.perf_counter() - t) * 1000)
            reqs += 1
            resp.raise_for_status()
            got = resp.json()["jobs"]
            if not got:
                raise RuntimeError("the queue ran dry: fill more jobs")
            if batch_ack:
                acks = [{"id": job["id"], "token": job["token"], "status": "completed"} for job in got]
                done = http.post(f"{base}/api/v1/jobs/ack", json={"acks": acks}, timeout=30)
                reqs += 1
                done.raise_for_status()
                jobs += sum(1 for row in done.json()["results"] if row["state"] == "completed")
                continue
            for job in got:
                ack = http.post(f"{base}/api/v1/jobs/{job['id']}/ack",
                                json={"token": job["token"], "status": "completed"}, timeout=30)
                reqs += 1
                ack.raise_for_status()
                jobs += 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put(ClientRun(jobs, reqs, claim_ms, time.time(), usage.ru_utime + usage.ru_stime))


def fill(client: Client, n: int) -> None:
    for start in range(0, n, 5000):
        client.enqueue_pull_many([client.job(NOOP, queue=QUEUE) for _ in range(min(5000, n - start))])


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds used so far by these processes and all their descendants (psutil)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for p in [root, *root.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


def settle(pids: list[int], timeout: float = 30.0) -> None:
    """Until the web workers have booted (each imports the app on its own): their CPU use goes quiet."""
    deadline = time.monotonic() + timeout
    last = tree_cpu(pids)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = tree_cpu(pids)
        if now - last < 0.05:
            return
        last = now


def machine_cpu() -> float:
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


def measure(base: str, clients: int, count: int, seconds: float, pids: list[int],
            batch_ack: bool = False) -> dict[str, float]:
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 1.0  # every client connected and waiting
    procs = [ctx.Process(target=client_loop, args=(base, count, start_at, start_at + seconds, out, batch_ack))
             for _ in range(clients)]
    for p in procs:
        p.start()
    time.sleep(max(0.0, start_at - time.time()))
    cpu0, ours0 = machine_cpu(), tree_cpu(pids)
    runs = [out.get(timeout=seconds + 120) for _ in procs]
    wall = max(r.ended for r in runs) - start_at
    cpu1, ours1 = machine_cpu(), tree_cpu(pids)
    for p in procs:
        p.join(30)
    ours = ours1 - ours0 + sum(r.cpu_s for r in runs)
    ncpu = os.cpu_count() or 1
    samples = [ms for r in runs for ms in r.claim_ms]
    return {"jobs_s": sum(r.jobs for r in runs) / wall, "req_s": sum(r.requests for r in runs) / wall,
            "p50": percentile(samples, 50), "p99": percentile(samples, 99), "jobs": sum(r.jobs for r in runs),
            "other": max(0.0, (cpu1 - cpu0 - ours) / (wall * ncpu))}


def core_floor(r: redis.Redis, config: Config, client: Client, count: int, jobs: int, batch_ack: bool) -> float:
    """Claim + ack jobs/s on jobsvc.http.pull in this process, no HTTP: what the API adds to."""
    r.flushdb()
    fill(client, jobs)
    t = time.perf_counter()
    done = 0
    while done < jobs:
        leases = pull.claim(r, config, QUEUE, count)
        if batch_ack:
            pull.ack_many(r, config, [pull.Ack(lease.job_id, lease.token, "completed") for lease in leases])
        else:
            for lease in leases:
                pull.ack(r, config, lease.job_id, lease.token, "completed")
        done += len(leases)
    return done / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pull", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 s per configuration")
    ap.add_argument("--seconds", type=float, default=None, help="measured seconds per configuration (default 8)")
    ap.add_argument("--web-workers", type=int, default=4, help="gunicorn worker processes (default 4)")
    args = ap.parse_args(argv)
    seconds = args.seconds or (2.0 if args.quick else 8.0)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, persist=False) as srv:
        r = redis.Redis.from_url(srv.url)
        config = Config(redis_url=srv.url)
        client = Client(r, config)
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSVC_")}
        env.update(REDIS_URL=srv.url, ADMIN_API_KEY=KEY, PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(p for p in [str(Path(__file__).resolve().parents[1]),
                                                          env.get("PYTHONPATH", "")] if p))
        (Path(tmp) / "logs").mkdir()
        children = Children(env, Path(tmp) / "logs")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        busy = cpu_busy(1.0)
        try:
            web = children.spawn("gunicorn", [PY, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers",
                                              str(args.web_workers), "--log-level", "warning",
                                              "admin_api:create_app()"])
            wait_until(lambda: _healthy(base), 30, "gunicorn answering /health", procs=[web], children=children)
            redis_pid = srv.process.pid if srv.process else None
            pids = [web.pid] + ([redis_pid] if redis_pid else [])
            settle(pids)
            print(f"{os.cpu_count()} CPUs, busy {busy:.0%} before the run; gunicorn --workers {args.web_workers}; "
                  f"{seconds:g} s per configuration", flush=True)
            rows = []
            for clients, count, batch_ack in CONFIGS:
                r.flushdb()
                fill(client, int(2500 * seconds * (clients if count > 1 else min(clients, 4))
                                 * (4 if batch_ack else 1)) + 20_000)
                res = measure(base, clients, count, seconds, pids, batch_ack)
                rows.append((clients, count, res))
                how = "batch ack" if batch_ack else "ack each "
                print(f"{clients} client(s), count {count:>2}, {how}: {res['jobs_s']:8,.0f} jobs/s  "
                      f"{res['req_s']:8,.0f} requests/s  claim p50 {res['p50']:6.2f} ms  p99 {res['p99']:7.2f} ms  "
                      f"({res['jobs']:,} jobs; other load {res['other']:.0%})", flush=True)
            for count, batch_ack in ((1, False), (50, False), (50, True)):
                rate = core_floor(r, config, client, count, 5000, batch_ack)
                how = "ack_many" if batch_ack else "ack each"
                print(f"in-process jobsvc pull, no HTTP, count {count:>2}, {how}: {rate:8,.0f} jobs/s (claim + ack)",
                      flush=True)
        finally:
            children.kill_all()
    return 0


def _healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


if __name__ == "__main__":
    sys.exit(main())
