"""What every measurement shares: the private Redis, child processes (always killed), bounded waits,
percentiles, and reading timestamps back from job hashes."""
from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

_RQ_TS = "%Y-%m-%dT%H:%M:%S.%fZ"


class BenchError(Exception):
    """A measurement could not be taken (deadline passed, a worker died...)."""


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    if not values:
        raise BenchError("no samples")
    s = sorted(values)
    rank = math.ceil(p / 100 * len(s))
    return s[max(0, min(len(s), rank) - 1)]


def rq_ts(raw: bytes | str | None) -> float | None:
    """An RQ timestamp ('2024-01-01T00:00:00.123456Z', UTC) as epoch seconds."""
    if not raw:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    return datetime.strptime(text, _RQ_TS).replace(tzinfo=timezone.utc).timestamp()


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the first left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"
    return "\n".join(["| " + " | ".join(header) + " |", rule] + ["| " + " | ".join(r) + " |" for r in rows])


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Fraction of all CPUs busy over `seconds` (from /proc/stat): other load on the machine skews every figure."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields[:8]), idle
    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (i1 - i0) / max(1, t1 - t0)


class LoadMeter:
    """CPU used on the whole machine vs by this benchmark (itself, its reaped children, the Redis server)
    over an interval: the rest is other load, which skews the figures of that interval."""

    def __init__(self, redis_pid: int | None):
        import psutil  # not a jobsvc dependency: without it the benchmark runs unmetered (see __main__)

        self._psutil = psutil
        self.me = psutil.Process()
        self.redis = psutil.Process(redis_pid) if redis_pid else None
        self._start: tuple[float, float, float, float] | None = None

    def _sample(self) -> tuple[float, float, float, float]:
        t = self._psutil.cpu_times()
        busy = t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)
        steal = getattr(t, "steal", 0.0)
        m = self.me.cpu_times()
        ours = m.user + m.system + m.children_user + m.children_system
        if self.redis is not None:
            try:
                r = self.redis.cpu_times()
                ours += r.user + r.system
            except self._psutil.Error:
                pass
        return time.monotonic(), busy, ours, steal

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> dict[str, float]:
        """Seconds of wall time, and the share of all CPUs used by us and by other processes."""
        assert self._start is not None
        t1, b1, o1, s1 = self._sample()
        t0, b0, o0, s0 = self._start
        wall = max(1e-9, t1 - t0)
        ncpu = os.cpu_count() or 1
        ours = (o1 - o0) / (wall * ncpu)
        return {"wall": wall, "ours": ours, "other": max(0.0, (b1 - b0) / (wall * ncpu) - ours),
                "steal": (s1 - s0) / (wall * ncpu)}


class Children:
    """Child processes started by the benchmark, each in its own session (so a supervisor's forked
    workers go with it); all of them are killed by `kill_all`, which the caller runs in `finally`."""

    def __init__(self, env: dict[str, str], logdir: Path):
        self.env = env
        self.logdir = logdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self._n = 0

    def spawn(self, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        self._n += 1
        log = open(self.logdir / f"{self._n:03d}-{name}.log", "wb")  # noqa: SIM115 - closed by the OS at exit
        proc = subprocess.Popen(list(argv), env=self.env, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        proc.log_path = log.name  # type: ignore[attr-defined]
        log.close()
        self.procs.append(proc)
        return proc

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # the session we created for it: the process and its forks

    def stop(self, procs: Sequence[subprocess.Popen[bytes]], grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL whatever is left of each process group after `grace` seconds."""
        for p in procs:
            if p.poll() is None:
                self._signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.0, deadline - time.monotonic()))
        for p in procs:
            self._signal_group(p, signal.SIGKILL)  # also reaps orphaned forks of a dead leader
            if p.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(5)

    def kill_all(self) -> None:
        self.stop(self.procs, grace=1.0)
        self.procs.clear()

    def tail(self, proc: subprocess.Popen[bytes], lines: int = 15) -> str:
        try:
            text = Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def wait_until(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.02,
               procs: Sequence[subprocess.Popen[bytes]] = (), children: Children | None = None) -> Any:
    """Poll `pred` until it returns a truthy value; BenchError after `timeout` seconds, or as soon as
    every process in `procs` has exited while the condition still does not hold."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if procs and all(p.poll() is not None for p in procs):
            value = pred()
            if value:
                return value
            detail = children.tail(procs[0]) if children else ""
            raise BenchError(f"{what}: worker process(es) exited ({[p.returncode for p in procs]}) first\n{detail}")
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not done within {timeout:.0f}s")
        time.sleep(interval)


def wait_exit(procs: Sequence[subprocess.Popen[bytes]], timeout: float) -> None:
    """Give burst-mode workers `timeout` seconds in all to exit on their own (their registrations go with
    them); whatever is left is the caller's to stop."""
    deadline = time.monotonic() + timeout
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.0, deadline - time.monotonic()))


class Env:
    """The private Redis and the child-process environment of one benchmark run."""

    def __init__(self, url: str, workdir: Path):
        self.url = url
        self.workdir = workdir
        self.r = redis.Redis.from_url(url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSVC_")}  # defaults only
        env["REDIS_URL"] = url
        env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
        env["PYTHONUNBUFFERED"] = "1"
        self.env = env
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        self.children = Children(env, workdir / "logs")

    def flush(self) -> None:
        self.r.flushdb()  # our own redis-server on its own port: nothing else lives here

    # -- processes -------------------------------------------------------------------------------

    def jobsvc_worker(self, queue: str, *, burst: bool = False, concurrency: int = 1,
                      lease_ttl: float | None = None, name: str = "jobsvc-worker") -> subprocess.Popen[bytes]:
        argv = [PY, "-m", "jobsvc_cli", "worker", "--url", self.url, "-q", queue]
        if burst:
            argv.append("--burst")
        if concurrency != 1:
            argv += ["--concurrency", str(concurrency)]
        if lease_ttl is not None:
            # --heartbeat-interval given explicitly (lease/3, the documented default): without it,
            # `jobsvc worker --lease-ttl` below the default heartbeat interval (10 s) is rejected by Config.
            argv += ["--lease-ttl", str(lease_ttl), "--heartbeat-interval", f"{lease_ttl / 3:.3f}"]
        return self.children.spawn(name, argv)

    def jobsvc_scheduler(self) -> subprocess.Popen[bytes]:
        return self.children.spawn("jobsvc-scheduler", [PY, "-m", "jobsvc_cli", "scheduler", "--url", self.url])

    def rq_worker(self, queue: str, *, simple: bool = True, burst: bool = False,
                  with_scheduler: bool = False) -> subprocess.Popen[bytes]:
        argv = [PY, "-m", "rq.cli", "worker", "--url", self.url]
        if simple:
            argv += ["-w", "rq.worker.SimpleWorker"]
        if burst:
            argv.append("--burst")
        if with_scheduler:
            argv.append("--with-scheduler")
        argv.append(queue)
        return self.children.spawn("rq-simpleworker" if simple else "rq-worker", argv)

    def bare(self, key: str, mode: str) -> subprocess.Popen[bytes]:
        return self.children.spawn(f"bare-{mode}", [PY, "-m", "bench.bare", self.url, key, mode])

    def wait_workers(self, n: int, procs: Sequence[subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
        """Until n workers have registered (jobsvc's worker registers as an RQ worker too)."""
        wait_until(lambda: self.r.scard("rq:workers") >= n, timeout, f"{n} worker(s) registering",
                   procs=procs, children=self.children)

    # -- reading back ----------------------------------------------------------------------------

    def hmget_many(self, keys: Sequence[str], fields: Sequence[str], chunk: int = 2000) -> list[list[Any]]:
        out: list[list[Any]] = []
        for i in range(0, len(keys), chunk):
            pipe = self.r.pipeline(transaction=False)
            for k in keys[i:i + chunk]:
                pipe.hmget(k, *fields)
            out += pipe.execute()
        return out

    def used_memory(self) -> int:
        return int(self.r.info("memory")["used_memory"])

    def memory_usage(self, keys: Sequence[str]) -> list[int]:
        pipe = self.r.pipeline(transaction=False)
        for k in keys:
            pipe.memory_usage(k, samples=0)
        return [int(v or 0) for v in pipe.execute()]
