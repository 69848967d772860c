"""Peer comparison: the same no-op jobs through jobsvc, RQ (SimpleWorker), Huey and Dramatiq, and the bare
Redis floor, on the benchmark's one private Redis, with K worker processes for each K of --procs.

For each system and K: flush; one warm-up enqueue on another queue (scripts loaded, connections open); N jobs
prefilled with the system's bulk path, its Redis cost measured (`enqueue`); then K worker processes started
and the queue drained, its Redis cost measured from the first poll that sees a job done to the one that sees
all done (`run`, the benchmark's polling subtracted, see bench/redis_cost.py)."""
from __future__ import annotations

import importlib
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rq import Queue

from jobsvc import Client

from . import jobs
from .harness import PY, BenchError, Env, markdown_table, text_table
from .measure import BATCH, Results, Sizes, floor_batch, jobsvc_client
from .redis_cost import Cost, drain, measured

QUEUE = "peer"
Procs = list[subprocess.Popen[bytes]]


@dataclass(frozen=True)
class Peer:
    label: str
    prefill: Callable[[Env, int], Callable[[], object]]  # warm-up now; returns what enqueues the N jobs
    spawn: Callable[[Env, int], Procs]                  # K worker processes
    done: Callable[[Env, int], Callable[[], int]]       # jobs finished so far, given N
    workers: str                                        # how K is given, for the notes
    burst: bool = False                                 # its workers exit by themselves once the queue is empty


def _chunks(n: int) -> list[int]:
    return [min(BATCH, n - start) for start in range(0, n, BATCH)]


# -- jobsvc --------------------------------------------------------------------------------------------

def _jobsvc_prefill(env: Env, n: int) -> Callable[[], object]:
    client = jobsvc_client(env)
    client.enqueue(jobs.noop, queue="warm")
    return lambda: [client.enqueue_many([Client.job(jobs.noop, queue=QUEUE) for _ in range(c)]) for c in _chunks(n)]


def _jobsvc_done(env: Env, n: int) -> Callable[[], int]:
    client = jobsvc_client(env)

    def done() -> int:
        s = client.stats(QUEUE)
        return s.get("completed", 0) + s.get("failed", 0)
    return done


# -- RQ --------------------------------------------------------------------------------------------------

def _rq_prefill(env: Env, n: int) -> Callable[[], object]:
    Queue("warm", connection=env.r).enqueue(jobs.noop)
    q = Queue(QUEUE, connection=env.r)
    return lambda: [q.enqueue_many([Queue.prepare_data(jobs.noop) for _ in range(c)]) for c in _chunks(n)]


def _rq_done(env: Env, n: int) -> Callable[[], int]:
    def done() -> int:
        pipe = env.r.pipeline(transaction=False)
        pipe.zcard(f"rq:finished:{QUEUE}")
        pipe.zcard(f"rq:failed:{QUEUE}")
        return int(sum(pipe.execute()))
    return done


# -- Huey -----------------------------------------------------------------------------------------------

def _module(name: str, env: Env) -> Any:
    # The peer modules connect to $REDIS_URL at import; in this process too, it must be the private Redis.
    os.environ["REDIS_URL"] = env.url
    return importlib.import_module(name)


def _huey_prefill(env: Env, n: int) -> Callable[[], object]:
    mod = _module("bench.peer_huey", env)
    mod.noop()  # Huey's own enqueue: one LPUSH (warm-up; removed below)
    env.r.delete(mod.huey.storage.queue_key)

    def fill() -> None:
        # Huey has no bulk enqueue: Huey.enqueue is one LPUSH of the serialized task. The same LPUSHes,
        # pipelined by BATCH, are its bulk path.
        for c in _chunks(n):
            pipe = env.r.pipeline(transaction=False)
            for _ in range(c):
                pipe.lpush(mod.huey.storage.queue_key, mod.huey.serialize_task(mod.noop.s()))
            pipe.execute()
    return fill


def _huey_done(env: Env, n: int) -> Callable[[], int]:
    key = _module("bench.peer_huey", env).huey.storage.queue_key
    # Taken off the list = done: Huey keeps no record of a finished task that returned None. At most K
    # no-op tasks are between the BRPOP and their end.
    return lambda: n - int(env.r.llen(key))


def _huey_spawn(env: Env, k: int) -> Procs:
    return [env.children.spawn("huey", [PY, "-m", "huey.bin.huey_consumer", "bench.peer_huey.huey",
                                        "-w", str(k), "-k", "process"])]


# -- Dramatiq --------------------------------------------------------------------------------------------

def _dramatiq_prefill(env: Env, n: int) -> Callable[[], object]:
    from dramatiq.brokers.redis import RedisBroker

    mod = _module("bench.peer_dramatiq", env)
    mod.broker.enqueue(mod.noop.message().copy(queue_name="warm"))  # also reads Lua's stack size once

    def fill() -> None:
        # Dramatiq has no bulk enqueue either: RedisBroker.enqueue is one EVALSHA of its dispatch script.
        # A broker whose client is a pipeline sends the same EVALSHAs, BATCH per round trip.
        for c in _chunks(n):
            pipe = env.r.pipeline(transaction=False)
            batch = RedisBroker(client=pipe, namespace=mod.broker.namespace)
            for _ in range(c):
                batch.enqueue(mod.noop.message())
            pipe.execute()
    return fill


def _dramatiq_done(env: Env, n: int) -> Callable[[], int]:
    mod = _module("bench.peer_dramatiq", env)
    key = f"{mod.broker.namespace}:{mod.QUEUE}.msgs"  # a message leaves this hash when it is acked
    return lambda: n - int(env.r.hlen(key))


def _dramatiq_spawn(env: Env, k: int) -> Procs:
    return [env.children.spawn("dramatiq", [PY, "-m", "dramatiq", "bench.peer_dramatiq", "-p", str(k)])]


# -- bare floor -------------------------------------------------------------------------------------------

def _floor_prefill(env: Env, n: int) -> Callable[[], object]:
    return lambda: floor_batch(env, n, QUEUE)


PEERS: dict[str, Peer] = {
    "jobsvc": Peer("jobsvc", _jobsvc_prefill,
                   lambda env, k: [env.jobsvc_worker(QUEUE, burst=True, concurrency=k)], _jobsvc_done,
                   "`jobsvc worker --burst --concurrency K`", burst=True),
    "rq_simple": Peer("RQ SimpleWorker", _rq_prefill,
                      lambda env, k: [env.rq_worker(QUEUE, simple=True, burst=True) for _ in range(k)], _rq_done,
                      "K x `rq worker --burst -w rq.worker.SimpleWorker`", burst=True),
    "huey": Peer("Huey", _huey_prefill, _huey_spawn, _huey_done,
                 "`huey_consumer bench.peer_huey.huey -w K -k process`"),
    "dramatiq": Peer("Dramatiq", _dramatiq_prefill, _dramatiq_spawn, _dramatiq_done,
                     "`dramatiq bench.peer_dramatiq -p K` (8 threads each)"),
    "floor": Peer("bare Redis floor", _floor_prefill,
                  lambda env, k: [env.bare(QUEUE, "drain") for _ in range(k)],
                  lambda env, n: lambda: n - int(env.r.llen(QUEUE)), "K x `python -m bench.bare` (BLPOP)"),
}


# -- the section ----------------------------------------------------------------------------------------

# (figure key, column header, format)
METRICS = (("rate", "jobs/s", "{:,.0f}"), ("busy", "Redis busy", "{:.0%}"),
           ("run_cpu", "run: Redis µs/job", "{:.1f}"), ("run_cmds", "run: cmds/job", "{:.2f}"),
           ("enq_rate", "enqueue jobs/s", "{:,.0f}"), ("enq_cpu", "enqueue: Redis µs/job", "{:.1f}"),
           ("enq_cmds", "enqueue: cmds/job", "{:.2f}"))


def run_one(env: Env, peer: Peer, n: int, k: int, detail: dict[str, Any]) -> dict[str, float]:
    """One system with k worker processes: its figures; `detail` gets the commands per job by name."""
    env.flush()
    fill = peer.prefill(env, n)
    t0 = time.perf_counter()
    enq: Cost = measured(env.r, n, fill)
    enq_rate = n / (time.perf_counter() - t0)
    d = drain(env.r, env.children, lambda: peer.spawn(env, k), peer.done(env, n), n, timeout=n / 100 + 60,
              settle=15 if peer.burst else 0)
    run = d.run
    detail["enqueue_calls_per_job"] = {c: v / n for c, v in sorted(enq.calls.items(), key=lambda i: -i[1])}
    detail["run_calls_per_job"] = {c: v / run.jobs for c, v in sorted(run.calls.items(), key=lambda i: -i[1]) if v}
    detail["run_jobs"] = run.jobs
    return {"rate": run.jobs / run.wall, "busy": run.busy, "run_cpu": run.cpu_us_per_job,
            "run_cmds": run.commands_per_job, "enq_rate": enq_rate, "enq_cpu": enq.cpu_us_per_job,
            "enq_cmds": enq.commands_per_job, "startup": d.startup,
            "poll_cmds": d.polling.commands, "poll_cpu_us": d.polling.cpu * 1e6}


def peers(env: Env, sizes: Sizes, out: Results, notes: list[str]) -> None:
    n, procs = sizes.peer_jobs, sizes.peer_procs
    for system, peer in PEERS.items():
        for k in procs:
            detail = out.setdefault("_peer_detail", {}).setdefault(f"{system}_x{k}", {})
            try:
                r = run_one(env, peer, n, k, detail)
            except (BenchError, ImportError) as exc:
                notes.append(f"peers, {peer.label} x{k}: not measured: {type(exc).__name__}: {exc}")
                continue
            for key, value in r.items():
                out.setdefault(f"peer_{key}_{k}", {})[system] = value
    env.flush()
    notes.append(f"peers: {n:,} no-op jobs per system and process count, prefilled by its bulk path, then "
                 "drained by K worker processes: " + "; ".join(f"{p.label} {p.workers}" for p in PEERS.values())
                 + ". jobs/s and 'run' costs over the window from the first poll that saw a job done to the one "
                 "that saw all done (start-up excluded); Huey counts a task done when it leaves the list.")


def render(out: Results, procs: tuple[int, ...], markdown: bool = False) -> str:
    """The per-job cost table (one row per system and process count) and the scaling table."""
    if not any(f"peer_rate_{k}" in out for k in procs):
        return ""
    header = ["system", "procs", *(h for _, h, _ in METRICS)]
    rows = []
    for system, peer in PEERS.items():
        for k in procs:
            vals = [out.get(f"peer_{key}_{k}", {}).get(system) for key, _, _ in METRICS]
            if any(v is not None for v in vals):
                rows.append([peer.label, str(k), *("-" if v is None else f.format(v)
                                                    for v, (_, _, f) in zip(vals, METRICS, strict=True))])
    scale_header = ["procs", *(f"{p.label} jobs/s (Redis busy)" for p in PEERS.values())]
    scale = []
    for k in procs:
        cells = []
        for system in PEERS:
            rate, busy = out.get(f"peer_rate_{k}", {}).get(system), out.get(f"peer_busy_{k}", {}).get(system)
            cells.append("-" if rate is None else f"{rate:,.0f} ({busy:.0%})")
        scale.append([str(k), *cells])
    table = markdown_table if markdown else text_table
    return table(header, rows) + "\n\n" + table(scale_header, scale)
