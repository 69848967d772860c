"""The measurements. Each takes the shared Env and the sizes, and returns {figure: {system: value}}
plus notes; a measurement that fails leaves its figures out and says why. Throughput and enqueue -> start
latency are in bench/throughput.py and bench/latency.py."""
from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from rq import Queue
from rq.job import Job

from jobsvc import Client, Config

from . import jobs
from .harness import BenchError, Env, percentile, wait_exit, wait_until
from .redis_cost import measured

JOBSVC, RQ_SIMPLE, RQ_WORKER, FLOOR = "jobsvc", "rq_simple", "rq_worker", "floor"
# The floor's payload: about the size of a job hash, so the floor moves as many bytes as a job system.
FLOOR_PAYLOAD = b"x" * 400

Results = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Sizes:
    enqueue_one: int = 5_000          # jobs enqueued one by one, per system
    enqueue_batch: int = 50_000       # jobs enqueued in batches of BATCH, per system
    tp_jobsvc: int = 20_000           # no-op jobs for the jobsvc worker(s)
    tp_simple: int = 5_000            # ... for RQ SimpleWorker(s)
    tp_fork: int = 500                # ... for RQ's forking Worker(s), ~60 jobs/s each
    tp_floor: int = 50_000            # items for the bare BLPOP consumer(s)
    latency: int = 500                # enqueue->start samples, jobsvc and RQ SimpleWorker
    latency_fork: int = 100           # ... RQ forking Worker
    latency_gap: float = 0.010        # seconds between two enqueues (workers idle in between)
    latency_gap_fork: float = 0.060   # the forking Worker needs ~15 ms per job
    delayed: int = 300                # delayed jobs for the jobsvc scheduler
    delayed_rq: int = 60              # ... for RQ's scheduler (1 s poll)
    delayed_spacing: float = 0.010    # seconds between enqueues, so earlier jobs keep arriving while it sleeps
    kill_trials: int = 3              # SIGKILL trials for jobsvc
    rq_kill_watch: float = 10.0       # seconds to watch an RQ job after its worker was killed
    memory: int = 2_000               # jobs whose memory is measured, per system
    peer_jobs: int = 5_000            # no-op jobs per system and process count in the peer comparison
    peer_procs: tuple[int, ...] = (1, 2)  # worker process counts of the peer comparison (--procs)


FULL = Sizes()
QUICK = Sizes(enqueue_one=500, enqueue_batch=5_000, tp_jobsvc=2_000, tp_simple=300, tp_fork=30, tp_floor=5_000,
              latency=100,
              latency_fork=15, delayed=60, delayed_rq=12, delayed_spacing=0.02, kill_trials=1, rq_kill_watch=3.0,
              memory=200, peer_jobs=1_000)

BATCH = 1000
LEASE_TTL = 2.0


def jobsvc_client(env: Env) -> Client:
    return Client(env.r, Config(redis_url=env.url))


def put(out: Results, figure: str, system: str, value: Any) -> None:
    out.setdefault(figure, {})[system] = value


# -- 1. enqueue -----------------------------------------------------------------------------------------

def _timed(env: Env, out: Results, figure: str, system: str, n: int, body: Callable[[], object]) -> None:
    """Run `body` (enqueues n jobs) on a flushed Redis: jobs/s, and what each job cost Redis."""
    env.flush()
    t0 = time.perf_counter()
    cost = measured(env.r, n, body)
    put(out, figure, system, n / (time.perf_counter() - t0))
    put(out, f"{figure}_cpu", system, cost.cpu_us_per_job)
    put(out, f"{figure}_cmds", system, cost.commands_per_job)


def floor_batch(env: Env, n: int, key: str = "floor") -> None:
    """The floor's bulk enqueue: one RPUSH of FLOOR_PAYLOAD per item, BATCH per round trip."""
    for start in range(0, n, BATCH):
        pipe = env.r.pipeline(transaction=False)
        for _ in range(min(BATCH, n - start)):
            pipe.rpush(key, FLOOR_PAYLOAD)
        pipe.execute()


def enqueue(env: Env, sizes: Sizes, out: Results, notes: list[str]) -> None:
    one, many = sizes.enqueue_one, sizes.enqueue_batch
    client = jobsvc_client(env)
    client.enqueue(jobs.noop, queue="warm")  # loads the scripts, opens the connection
    _timed(env, out, "enqueue_one", JOBSVC, one, lambda: [client.enqueue(jobs.noop, queue="enq") for _ in range(one)])
    _timed(env, out, "enqueue_batch", JOBSVC, many, lambda: [
        client.enqueue_many([Client.job(jobs.noop, queue="enq") for _ in range(min(BATCH, many - start))])
        for start in range(0, many, BATCH)])
    q = Queue("enq", connection=env.r)
    q.enqueue(jobs.noop)
    _timed(env, out, "enqueue_one", RQ_SIMPLE, one, lambda: [q.enqueue(jobs.noop) for _ in range(one)])
    _timed(env, out, "enqueue_batch", RQ_SIMPLE, many, lambda: [
        q.enqueue_many([Queue.prepare_data(jobs.noop) for _ in range(min(BATCH, many - start))])
        for start in range(0, many, BATCH)])
    _timed(env, out, "enqueue_one", FLOOR, one, lambda: [env.r.rpush("floor", FLOOR_PAYLOAD) for _ in range(one)])
    _timed(env, out, "enqueue_batch", FLOOR, many, lambda: floor_batch(env, many))
    env.flush()
    notes.append(f"enqueue: {one:,} jobs one by one and {many:,} in batches of {BATCH} per system, building the "
                 "job specs inside the timed loop, one connection; Redis µs and commands per job over the loop.")


# -- 3. enqueue -> start latency: bench/latency.py -------------------------------------------------------


# -- 4. delayed-job lateness -----------------------------------------------------------------------------

def _lateness(out: Results, system: str, late: list[float]) -> None:
    """The delayed-job figures of one system from its lateness samples (ms; negative = started early)."""
    put(out, "delayed_p50", system, percentile(late, 50))
    put(out, "delayed_p99", system, percentile(late, 99))
    put(out, "delayed_max", system, max(late))
    put(out, "delayed_early", system, sum(1 for x in late if x < 0))


def _jobsvc_dues(env: Env, client: Client, sizes: Sizes, rng: random.Random) -> tuple[dict[str, float], int]:
    """Enqueue the delayed jobs; each one's due time (s) and how many came from the client clock."""
    dues: dict[str, float] = {}
    fallback = 0
    for _ in range(sizes.delayed):
        d = rng.uniform(0.2, 2.0)
        t = time.time()
        job_id = client.enqueue(jobs.stamp, queue="dly", delay=d).id
        raw = env.r.hget(client.keys.job(job_id), "js_due")  # the exact due time, Redis ms
        if not raw:  # promoted already (make_ready blanks js_due)
            fallback += 1
            dues[job_id] = t + d
        else:
            dues[job_id] = int(raw) / 1000
        time.sleep(sizes.delayed_spacing)
    return dues, fallback


def _delayed_jobsvc(env: Env, sizes: Sizes, out: Results, notes: list[str], rng: random.Random) -> None:
    env.flush()
    client = jobsvc_client(env)
    ps = [env.jobsvc_scheduler(), env.jobsvc_worker("dly")]
    try:
        env.wait_workers(1, ps)
        wait_until(lambda: env.r.exists(client.keys.scheduler_leader), 20, "jobsvc scheduler leading", procs=ps,
                   children=env.children)
        for _ in range(3):
            client.enqueue(jobs.stamp, queue="dly")
        wait_until(lambda: client.stats("dly").get("completed", 0) >= 3, 20, "jobsvc warm-up", procs=ps,
                   children=env.children)
        dues, fallback = _jobsvc_dues(env, client, sizes, rng)
        wait_until(lambda: client.stats("dly").get("completed", 0) >= sizes.delayed + 3, 30, "jobsvc delayed jobs",
                   procs=ps, children=env.children)
        _lateness(out, JOBSVC, [(client.result(i) - due) * 1000 for i, due in dues.items()])
        if fallback:
            notes.append(f"delayed, jobsvc: {fallback} due time(s) taken from the client clock (js_due gone)")
    except BenchError as exc:
        notes.append(f"delayed, jobsvc: not measured: {exc}")
    finally:
        env.children.stop(ps)


def _delayed_rq(env: Env, sizes: Sizes, out: Results, notes: list[str], rng: random.Random) -> None:
    env.flush()
    q = Queue("dly", connection=env.r)
    ps = [env.rq_worker("dly", simple=True, with_scheduler=True)]
    try:
        env.wait_workers(1, ps)
        wait_until(lambda: env.r.exists("rq:scheduler-lock:dly"), 20, "RQ scheduler lock", procs=ps,
                   children=env.children)
        dues = {}
        spacing = sizes.delayed_spacing * sizes.delayed / sizes.delayed_rq  # same time span as jobsvc
        for _ in range(sizes.delayed_rq):
            d = rng.uniform(0.2, 2.0)
            t = time.time()
            dues[q.enqueue_in(timedelta(seconds=d), jobs.stamp).id] = t + d  # what the caller asked for
            time.sleep(spacing)
        wait_until(lambda: env.r.zcard("rq:finished:dly") >= sizes.delayed_rq, 30, "RQ delayed jobs", procs=ps,
                   children=env.children)
        _lateness(out, RQ_SIMPLE, [(Job.fetch(i, connection=env.r).return_value() - due) * 1000
                                   for i, due in dues.items()])
    except BenchError as exc:
        notes.append(f"delayed, RQ: not measured: {exc}")
    finally:
        env.children.stop(ps)


def delayed(env: Env, sizes: Sizes, out: Results, notes: list[str]) -> None:
    rng = random.Random(42)  # one stream for both systems, so their delays are the same from run to run
    _delayed_jobsvc(env, sizes, out, notes, rng)
    _delayed_rq(env, sizes, out, notes, rng)
    notes.append(f"delayed: {sizes.delayed} jobs (RQ: {sizes.delayed_rq}) with delay uniform 0.2-2 s, enqueued "
                 "over the same ~3 s so earlier jobs keep arriving while the scheduler sleeps; lateness = "
                 "job start - due. jobsvc due = the job's js_due (Redis ms, read right after enqueue); RQ due = "
                 "time.time() before enqueue_in + delay (RQ itself keeps whole seconds, rounded down). "
                 "jobsvc: `jobsvc scheduler` + 1 worker; RQ: 1 SimpleWorker `--with-scheduler`.")


# -- 5. SIGKILL -> job runs again -------------------------------------------------------------------------

def _marker_lines(path: Path) -> list[tuple[int, float]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines(keepends=True):
        if line.endswith("\n"):
            pid, ts = line.split()
            out.append((int(pid), float(ts)))
    return out


def _jobsvc_kill_trial(env: Env, client: Client, marker: Path, ps: list[Any]) -> float:
    """One trial on running processes ps (scheduler, two workers): seconds from the kill to the re-run."""
    env.wait_workers(2, ps)
    wait_until(lambda: env.r.exists(client.keys.scheduler_leader), 20, "jobsvc scheduler leading",
               procs=ps, children=env.children)
    client.enqueue(jobs.mark_and_sleep, str(marker), 60, queue="crash", timeout=120)
    lines = wait_until(lambda: _marker_lines(marker), 20, "job started", procs=ps, children=env.children)
    pid = lines[0][0]
    victim = next((p for p in ps[1:] if p.pid == pid), None)
    if victim is None:
        raise BenchError(f"job ran in pid {pid}, which is not one of our worker processes")
    t_kill = time.time()
    os.kill(victim.pid, 9)
    lines = wait_until(lambda: len(_marker_lines(marker)) >= 2 and _marker_lines(marker),
                       LEASE_TTL + 15,
                       "job re-run after SIGKILL", procs=[p for p in ps if p is not victim],
                       children=env.children)
    return lines[1][1] - t_kill


def _kill_jobsvc(env: Env, sizes: Sizes, out: Results, notes: list[str]) -> None:
    client = jobsvc_client(env)
    times: list[float] = []
    for trial in range(sizes.kill_trials):
        env.flush()
        marker = env.workdir / f"kill-jobsvc-{uuid.uuid4().hex}.txt"
        ps = [env.jobsvc_scheduler(),
              env.jobsvc_worker("crash", lease_ttl=LEASE_TTL, name="jobsvc-worker-a"),
              env.jobsvc_worker("crash", lease_ttl=LEASE_TTL, name="jobsvc-worker-b")]
        try:
            times.append(_jobsvc_kill_trial(env, client, marker, ps))
        except BenchError as exc:
            notes.append(f"SIGKILL trial {trial}, jobsvc: {exc}")
        finally:
            env.children.stop(ps, grace=0.5)
    if times:
        put(out, "kill_rerun_max", JOBSVC, max(times))
        put(out, "kill_rerun_p50", JOBSVC, percentile(times, 50))
        out["_kill_detail"] = {"jobsvc_trials_s": times, "lease_ttl": LEASE_TTL}


def _rq_after_kill(env: Env, sizes: Sizes, out: Results, job: Job, marker: Path, t_kill: float) -> None:
    """Watch the killed RQ job for a while: did it run again, and where RQ left it."""
    deadline = time.monotonic() + sizes.rq_kill_watch
    while time.monotonic() < deadline and len(_marker_lines(marker)) < 2:
        time.sleep(0.05)
    reran = len(_marker_lines(marker)) >= 2
    status = job.get_status(refresh=True)
    wip = {m.decode(): s for m, s in env.r.zrange("rq:wip:crash", 0, -1, withscores=True)}
    entry = next(((m, s) for m, s in wip.items() if m.startswith(job.id)), None)
    info = {"reran": reran, "watched_s": sizes.rq_kill_watch, "status": str(status.value if status else None),
            "in_started_registry": entry is not None,
            "started_registry_expiry_after_kill_s": (entry[1] - t_kill) if entry else None}
    if reran:
        put(out, "kill_rerun_max", RQ_SIMPLE, _marker_lines(marker)[1][1] - t_kill)
    else:
        put(out, "kill_rerun_max", RQ_SIMPLE, f"never (>{sizes.rq_kill_watch:.0f}s)")
    out.setdefault("_kill_detail", {})["rq_simple"] = info


def _kill_rq(env: Env, sizes: Sizes, out: Results, notes: list[str]) -> None:
    # RQ SimpleWorker: two workers, kill the one running the job, watch what happens to it.
    env.flush()
    marker = env.workdir / f"kill-rq-{uuid.uuid4().hex}.txt"
    q = Queue("crash", connection=env.r)
    ps = [env.rq_worker("crash", simple=True), env.rq_worker("crash", simple=True)]
    try:
        env.wait_workers(2, ps)
        job = q.enqueue(jobs.mark_and_sleep, str(marker), 60, job_timeout=120)
        lines = wait_until(lambda: _marker_lines(marker), 20, "RQ job started", procs=ps, children=env.children)
        victim = next((p for p in ps if p.pid == lines[0][0]), None)
        if victim is None:
            raise BenchError(f"RQ job ran in pid {lines[0][0]}, not one of our workers")
        t_kill = time.time()
        os.kill(victim.pid, 9)
        _rq_after_kill(env, sizes, out, job, marker, t_kill)
    except BenchError as exc:
        notes.append(f"SIGKILL, RQ: {exc}")
    finally:
        env.children.stop(ps, grace=0.5)


def kill_rerun(env: Env, sizes: Sizes, out: Results, notes: list[str]) -> None:
    _kill_jobsvc(env, sizes, out, notes)
    _kill_rq(env, sizes, out, notes)
    notes.append(f"SIGKILL: `jobsvc scheduler` + two `jobsvc worker --lease-ttl {LEASE_TTL:g}`; a job appends "
                 "'pid time' to a file then sleeps; once it appears the worker running it gets SIGKILL; "
                 f"figure = the second run's own start time - the kill ({sizes.kill_trials} trial(s), worst shown). "
                 "RQ: two SimpleWorkers, same job, watched for "
                 f"{sizes.rq_kill_watch:.0f} s after the kill.")


# -- 6. memory per job -----------------------------------------------------------------------------------

def _drop(env: Env, pattern: str) -> None:
    keys = env.r.keys(pattern)
    if keys:
        env.r.delete(*keys)


def _memory_jobsvc(env: Env, client: Client, n: int, out: Results) -> None:
    env.flush()
    client.enqueue(jobs.noop, queue="warm")
    _drop(env, "*")
    m0 = env.used_memory()
    ids = []
    for start in range(0, n, BATCH):
        ids += [e.id for e in client.enqueue_many([Client.job(jobs.noop, queue="mem")
                                                  for _ in range(min(BATCH, n - start))])]
    m1 = env.used_memory()
    sample = ids[: min(100, n)]
    put(out, "mem_queued_hash", JOBSVC, sum(env.memory_usage([client.keys.job(i) for i in sample])) / len(sample))
    put(out, "mem_queued_total", JOBSVC, (m1 - m0) / n)
    p = env.jobsvc_worker("mem", burst=True)
    try:
        wait_until(lambda: client.stats("mem").get("completed", 0) >= n, n / 100 + 30, "jobsvc memory jobs",
                   procs=[p], children=env.children)
        wait_exit([p], 15)
    finally:
        env.children.stop([p])
    _drop(env, "rq:worker*")  # the worker's own registration is not per job
    m2 = env.used_memory()
    keys = [k for i in sample for k in (client.keys.job(i), client.keys.results(i), client.keys.runs(i))]
    put(out, "mem_done_keys", JOBSVC, sum(env.memory_usage(keys)) / len(sample))
    put(out, "mem_done_total", JOBSVC, (m2 - m0) / n)


def _memory_rq(env: Env, n: int, out: Results) -> None:
    env.flush()
    q = Queue("mem", connection=env.r)
    q.enqueue(jobs.noop)
    _drop(env, "*")
    m0 = env.used_memory()
    ids = []
    for start in range(0, n, BATCH):
        ids += [j.id for j in q.enqueue_many([Queue.prepare_data(jobs.noop) for _ in range(min(BATCH, n - start))])]
    m1 = env.used_memory()
    sample = ids[: min(100, n)]
    put(out, "mem_queued_hash", RQ_SIMPLE, sum(env.memory_usage([f"rq:job:{i}" for i in sample])) / len(sample))
    put(out, "mem_queued_total", RQ_SIMPLE, (m1 - m0) / n)
    p = env.rq_worker("mem", simple=True, burst=True)
    try:
        wait_until(lambda: env.r.zcard("rq:finished:mem") >= n, n / 50 + 30, "RQ memory jobs", procs=[p],
                   children=env.children)
        wait_exit([p], 15)
    finally:
        env.children.stop([p])
    _drop(env, "rq:worker*")
    m2 = env.used_memory()
    keys = [k for i in sample for k in (f"rq:job:{i}", f"rq:results:{i}")]
    put(out, "mem_done_keys", RQ_SIMPLE, sum(env.memory_usage(keys)) / len(sample))
    put(out, "mem_done_total", RQ_SIMPLE, (m2 - m0) / n)


def memory(env: Env, sizes: Sizes, out: Results, notes: list[str]) -> None:
    n = sizes.memory
    client = jobsvc_client(env)
    try:
        _memory_jobsvc(env, client, n, out)
    except BenchError as exc:
        notes.append(f"memory, jobsvc: {exc}")
    try:
        _memory_rq(env, n, out)
    except BenchError as exc:
        notes.append(f"memory, RQ: {exc}")
    env.flush()
    notes.append(f"memory: {n:,} no-op jobs per system. 'hash' = MEMORY USAGE of rq:job:<id> (SAMPLES 0); "
                 "'keys' after completion adds rq:results:<id> (and jobsvc:runs:<id> for jobsvc); 'used_memory' "
                 "= growth of INFO used_memory per job (lists, registries, counters included; worker "
                 "registrations removed before reading).")
