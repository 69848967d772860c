"""Cron figures, on one private Redis with a real scheduler process: fire lateness of 1,000
schedules due in the same second, and the scheduler's (and Redis's) CPU per 1,000 schedules.

    python -m bench.schedules            # 1,000 per-second schedules, 10 s of firing
    python -m bench.schedules --quick    # 200 schedules, 4 s
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import redis

from jobsvc import Client, Config
from jobsvc.embedded import EmbeddedRedis
from jobsvc.schedules import Schedules

from .harness import ROOT, Children, percentile, wait_until


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.schedules")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n, window = (200, 4) if args.quick else (1000, 10)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, persist=False) as srv:
        r = redis.Redis.from_url(srv.url)
        client = Client(r, Config(redis_url=srv.url))
        schedules = Schedules(client)
        t = time.perf_counter()
        for i in range(n):
            # Every second, all due in the same second; jobs may pile up (no worker): overlap allowed.
            schedules.create(id=f"s{i:04d}", cron="* * * * * *", function="bench.jobs.noop")
        create_s = time.perf_counter() - t
        env = dict(os.environ, REDIS_URL=srv.url, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        children = Children(env, Path(tmp))
        try:
            sched = children.spawn("scheduler", [sys.executable, "-m", "jobsvc_cli", "scheduler"])
            wait_until(lambda: r.exists("jobsvc:scheduler:leader"), 15, "the scheduler to lead", procs=[sched],
                       children=children)
            time.sleep(2)  # warm-up: the first pass fires from creation; measure steady state after it
            cpu0, rcpu0 = cpu_seconds(sched.pid), redis_cpu(r)
            sec, usec = r.time()
            start_ms = (sec * 1000 + usec // 1000 + 999) // 1000 * 1000  # next whole second
            time.sleep(window)  # the measurement window itself (wall time), not a synchronisation
            cpu1, rcpu1 = cpu_seconds(sched.pid), redis_cpu(r)
            end_ms = start_ms + (window - 1) * 1000
            time.sleep(1.5)  # let the last second's fires land before reading them
        finally:
            children.kill_all()
        fires = [f"s{i:04d}:{ms}" for i in range(n) for ms in range(start_ms, end_ms, 1000)]
        pipe = r.pipeline(transaction=False)
        for job_id in fires:
            pipe.hget(f"rq:job:{job_id}", "js_created_ms")
        created = pipe.execute()
        late = [int(c) - int(f.rsplit(":", 1)[1]) for f, c in zip(fires, created) if c is not None]
        missing = sum(c is None for c in created)
        extra = sum(1 for _ in r.scan_iter("rq:job:s0000:*")) - len(range(start_ms, end_ms, 1000))
        fired_per_s = n
        sched_ms = (cpu1 - cpu0) * 1000 / window
        redis_ms = (rcpu1 - rcpu0) * 1000 / window
    print(f"{n} per-second schedules created in {create_s:.1f}s; {len(fires):,} fires expected in the window")
    print(f"fires found {len(late):,}, missing {missing}, early {sum(x < 0 for x in late)}")
    print(f"fire lateness (enqueued - fire time): p50 {percentile(late, 50):.0f} ms, "
          f"p99 {percentile(late, 99):.0f} ms, max {max(late)} ms")
    print(f"scheduler CPU: {sched_ms:.0f} ms per second of wall time = {sched_ms * 1000 / fired_per_s:.0f} ms "
          f"per 1,000 fires; Redis CPU: {redis_ms:.0f} ms per second = {redis_ms * 1000 / fired_per_s:.0f} ms "
          f"per 1,000 fires")
    print(f"(schedule s0000: fires outside the window counted too: {extra} beyond the window, warm-up and tail)")


if __name__ == "__main__":
    main()
