"""What a stretch of work cost the Redis server itself: CPU seconds (`INFO cpu`: used_cpu_sys + used_cpu_user)
and commands run (`INFO commandstats`: the sum of every command's `calls`), and the drain loop that measures
a queue of prefilled jobs being worked off while subtracting the benchmark's own polling.

commandstats counts a command however it arrives: a client's, one inside a pipeline or MULTI, and every
`redis.call` a Lua script makes, as well as the EVALSHA that ran the script. So an EVALSHA whose script
makes 5 calls counts 6. INFO itself is left out of every count (it is the benchmark reading these numbers)."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from .harness import BenchError, Children, wait_exit

# The benchmark's own snapshots; no job system measured here calls INFO per job (RQ reads `INFO server`
# once per worker start, outside any window).
EXCLUDED = frozenset({"info"})
POLL = 0.02  # seconds between two looks at a draining queue: 1 % of a 2 s window at worst
CALIBRATION_STEPS = 50


@dataclass(frozen=True)
class Snapshot:
    t: float                 # time.monotonic() after the INFO calls
    cpu: float               # Redis's used_cpu_sys + used_cpu_user, seconds since it started
    calls: dict[str, int]    # command name -> calls since start (or CONFIG RESETSTAT), EXCLUDED left out


def snapshot(r: redis.Redis) -> Snapshot:
    cpu = r.info("cpu")
    calls = {}
    for key, row in r.info("commandstats").items():
        name = str(key).removeprefix("cmdstat_")
        if name.split("|")[0] not in EXCLUDED:  # Redis 7 names subcommands 'client|setinfo'
            calls[name] = int(row["calls"])
    return Snapshot(time.monotonic(), float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), calls)


@dataclass(frozen=True)
class Cost:
    """Redis's work between two snapshots, for `jobs` jobs."""
    wall: float
    cpu: float
    calls: dict[str, float]
    jobs: int

    @property
    def commands(self) -> float:
        return sum(self.calls.values())

    @property
    def cpu_us_per_job(self) -> float:
        return self.cpu / max(1, self.jobs) * 1e6

    @property
    def commands_per_job(self) -> float:
        return self.commands / max(1, self.jobs)

    @property
    def busy(self) -> float:
        """Share of the window Redis spent on a CPU (1.0 = its one main thread saturated)."""
        return self.cpu / self.wall if self.wall > 0 else 0.0

    def minus(self, other: Cost, times: float) -> Cost:
        """This cost less `times` x `other` (the benchmark's own polling), floored at zero."""
        calls = {k: max(0.0, v - other.calls.get(k, 0) * times) for k, v in self.calls.items()}
        return Cost(self.wall, max(0.0, self.cpu - other.cpu * times), calls, self.jobs)


def between(a: Snapshot, b: Snapshot, jobs: int) -> Cost:
    calls = {k: float(v - a.calls.get(k, 0)) for k, v in b.calls.items() if v != a.calls.get(k, 0)}
    return Cost(b.t - a.t, b.cpu - a.cpu, calls, jobs)


def measured(r: redis.Redis, jobs: int, work: Callable[[], object]) -> Cost:
    """Run `work` (no polling inside) and return what it cost Redis."""
    a = snapshot(r)
    work()
    return between(a, snapshot(r), jobs)


def calibrate(r: redis.Redis, done: Callable[[], int], steps: int = CALIBRATION_STEPS) -> Cost:
    """What one poll step of `drain` (its done() check and its snapshot) costs Redis, on average."""
    a = snapshot(r)
    b = a
    for _ in range(steps):
        done()
        b = snapshot(r)
    total = between(a, b, 1)
    return Cost(total.wall / steps, total.cpu / steps, {k: v / steps for k, v in total.calls.items()}, 1)


@dataclass(frozen=True)
class Drained:
    run: Cost           # first poll that saw a job done -> first poll that saw all done, polling subtracted
    polling: Cost       # one poll step, as subtracted
    t_spawn: float      # time.time() just before the workers were started
    t_done: float       # time.time() at the poll that saw all done
    startup: float      # seconds from spawn to the first poll that saw a job done


def drain(r: redis.Redis, children: Children, spawn: Callable[[], list[subprocess.Popen[bytes]]],
          done: Callable[[], int], n: int, timeout: float, settle: float = 0.0) -> Drained:
    """Start the workers, poll `done()` (jobs finished so far) every POLL s until it reaches n, then let them
    exit on their own for up to `settle` s (burst workers) and stop the rest. The cost window opens at the
    first poll that sees progress, so process start-up is outside it; the jobs in it are n minus those
    already done then."""
    t_spawn = time.time()
    procs = spawn()
    first: tuple[Snapshot, int, float] | None = None
    steps = 0
    t_done = 0.0
    exited = False
    deadline = time.monotonic() + timeout
    try:
        while True:
            d = done()
            s = snapshot(r)
            if first is None and d > 0:
                first = (s, d, time.time())
            elif first is not None:
                steps += 1
            if d >= n:
                t_done = time.time()
                break
            if exited:  # they had all exited before this poll, which still saw jobs left
                raise BenchError(f"worker process(es) exited ({[p.returncode for p in procs]}) with {d} of {n} "
                                 f"done\n{children.tail(procs[0])}")
            exited = all(p.poll() is not None for p in procs)
            if time.monotonic() > deadline:
                raise BenchError(f"{d} of {n} done within {timeout:.0f}s")
            time.sleep(POLL)
        wait_exit(procs, settle)
    finally:
        children.stop(procs)
    assert first is not None  # d >= n > 0 was seen
    if first[1] >= n:
        raise BenchError(f"all {n} jobs were done by the first poll that saw any: too few jobs to time")
    polling = calibrate(r, done)
    run = between(first[0], s, n - first[1]).minus(polling, steps)
    return Drained(run, polling, t_spawn, t_done, first[2] - t_spawn)
