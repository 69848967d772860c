"""Cron figures, on one private Redis with a real scheduler process: fire lateness of 1,000
schedules due in the same second, every fire made exactly once, and the scheduler's (and Redis's) CPU
per 1,000 fires.

    python -m bench.schedules            # 1,000 per-second schedules, 10 s of firing measured
    python -m bench.schedules --quick    # 200 schedules, 4 s (well under a minute)

Each schedule is `* * * * * *` (6 fields, seconds first): all of them are due at every whole second.
Overlap is allowed (the default), so no worker is needed: the fired jobs stay queued. Lateness of a fire
= its job's `js_created_ms` (Redis time, set by enqueue.lua) - its fire time (the `<fire ms>` of its id
`<schedule id>:<fire ms>`).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import redis

from jobsvc import Client, Config
from jobsvc.embedded import EmbeddedRedis
from jobsvc.engine.keys import Keys
from jobsvc.scheduling.schedules import Schedules

from .harness import ROOT, Children, percentile, wait_until

WARMUP_S = 2.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat (fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def now_ms(r: redis.Redis) -> int:
    sec, usec = r.time()
    return int(sec) * 1000 + int(usec) // 1000


@dataclass(frozen=True)
class Window:
    """What was measured while the scheduler ran: the fire times counted and the CPU over a span of wall time."""
    first: int  # the first and last whole second (ms) whose fires are counted
    last: int
    t0: int  # Redis time (ms) at the start and end of the CPU span
    t1: int
    sched_cpu: float  # CPU seconds over that span: the scheduler process, Redis
    redis_cpu_s: float


def _create(r: redis.Redis, url: str, ids: list[str]) -> float:
    """One `* * * * * *` schedule per id; the seconds it took."""
    schedules = Schedules(Client(r, Config(redis_url=url)))
    t = time.perf_counter()
    for sid in ids:
        schedules.create(id=sid, cron="* * * * * *", function="bench.jobs.noop")
    return time.perf_counter() - t


def _run_scheduler(r: redis.Redis, url: str, tmp: str, keys: Keys, ids: list[str], window: int) -> Window:
    """Run a real scheduler process through the window, then stop it once the last second's fires are in."""
    env = dict(os.environ, REDIS_URL=url, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    children = Children(env, Path(tmp))
    try:
        sched = children.spawn("scheduler", [sys.executable, "-m", "jobsvc_cli", "scheduler"])
        wait_until(lambda: r.exists(keys.scheduler_leader), 15, "the scheduler to lead", procs=[sched],
                   children=children)
        time.sleep(WARMUP_S)  # the first pass fires from creation; measure the steady state after it
        # Fire times measured: the whole seconds in [first, last]; CPU over the same span of wall time.
        first = (now_ms(r) + 999) // 1000 * 1000
        last = first + (window - 1) * 1000
        cpu0, rcpu0, t0 = cpu_seconds(sched.pid), redis_cpu(r), now_ms(r)
        time.sleep(window)  # the measurement window itself (wall time), not a synchronisation
        cpu1, rcpu1, t1 = cpu_seconds(sched.pid), redis_cpu(r), now_ms(r)
        if sched.poll() is not None:
            raise SystemExit(f"the scheduler exited ({sched.returncode}):\n{children.tail(sched)}")
        # Bounded wait for the last measured second's fires to land (lateness can exceed a second).
        last_ids = [f"rq:job:{sid}:{last}" for sid in ids]
        wait_until(lambda: r.exists(*last_ids) == len(ids), 30, "the last second's fires", interval=0.1,
                   procs=[sched], children=children)
    finally:
        children.kill_all()
    return Window(first, last, t0, t1, cpu1 - cpu0, rcpu1 - rcpu0)


def _fired(r: redis.Redis, keys: Keys, ids: list[str]) -> tuple[dict[str, dict[int, int]], list[int]]:
    """Every job the scheduler made (it is stopped: nothing changes any more) as {schedule: {fire ms: created
    ms}}, and each schedule's `runs` counter."""
    job_keys = [k.decode() for k in r.scan_iter("rq:job:s*:*", count=5000)]
    pipe = r.pipeline(transaction=False)
    for k in job_keys:
        pipe.hget(k, "js_created_ms")
    created = pipe.execute()
    by_sched: dict[str, dict[int, int]] = defaultdict(dict)
    for k, c in zip(job_keys, created, strict=True):
        sid, _, fire = k[len("rq:job:"):].rpartition(":")
        by_sched[sid][int(fire)] = int(c)
    pipe = r.pipeline(transaction=False)
    for sid in ids:
        pipe.hget(keys.schedule_stats(sid), "runs")
    return by_sched, [int(x or 0) for x in pipe.execute()]


def _exactly_once(ids: list[str], runs: list[int], by_sched: dict[str, dict[int, int]]) -> tuple[int, int]:
    """Gaps and fires made twice, over all runs."""
    # Exactly once: each schedule's jobs are one per whole second from its first fire to its last (no
    # gap), and its `runs` counter (one HINCRBY per fire landed) equals its number of jobs (no fire twice).
    gaps = dup = 0
    for sid, count in zip(ids, runs, strict=True):
        fires = sorted(by_sched.get(sid, {}))
        if fires:
            gaps += (fires[-1] - fires[0]) // 1000 + 1 - len(fires)
        dup += count - len(fires)
    return gaps, dup


def _report(ids: list[str], window: int, create_s: float, w: Window, by_sched: dict[str, dict[int, int]],
            gaps: int, dup: int) -> None:
    n = len(ids)
    measured = [(fire, c) for sid in ids for fire, c in by_sched.get(sid, {}).items() if w.first <= fire <= w.last]
    expected = n * window
    late = [c - fire for fire, c in measured]
    # Fires actually enqueued while the CPU was measured (by enqueue time, whatever their fire time).
    fired_in_cpu = sum(1 for jobs in by_sched.values() for c in jobs.values() if w.t0 <= c < w.t1)
    wall = (w.t1 - w.t0) / 1000
    print(f"{n:,} per-second schedules created in {create_s:.1f}s; fire times measured: {window} s "
          f"({expected:,} fires expected)")
    print(f"fires counted {len(measured):,} / {expected:,} expected; early {sum(x < 0 for x in late)}; "
          f"all runs: gaps {gaps}, fired twice {dup}")
    print(f"fire lateness (js_created_ms - fire ms): p50 {percentile(late, 50):,.0f} ms, "
          f"p99 {percentile(late, 99):,.0f} ms, max {max(late):,} ms")
    print(f"CPU over {wall:.1f} s of wall time, {fired_in_cpu:,} fires enqueued in it:")
    print(f"  scheduler {w.sched_cpu * 1000 / wall:,.0f} ms per second of wall time, "
          f"{w.sched_cpu * 1e6 / max(1, fired_in_cpu):,.0f} ms per 1,000 fires")
    print(f"  Redis     {w.redis_cpu_s * 1000 / wall:,.0f} ms per second of wall time, "
          f"{w.redis_cpu_s * 1e6 / max(1, fired_in_cpu):,.0f} ms per 1,000 fires")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.schedules")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n, window = (200, 4) if args.quick else (1000, 10)
    keys = Keys()
    ids = [f"s{i:04d}" for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, persist=False) as srv:
        r = redis.Redis.from_url(srv.url)
        create_s = _create(r, srv.url, ids)
        w = _run_scheduler(r, srv.url, tmp, keys, ids, window)
        by_sched, runs = _fired(r, keys, ids)
    gaps, dup = _exactly_once(ids, runs, by_sched)
    _report(ids, window, create_s, w, by_sched, gaps, dup)


if __name__ == "__main__":
    main()
