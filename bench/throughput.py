"""No-op throughput of jobsvc and RQ (SimpleWorker and forking Worker) with 1 and 2 worker processes, and of
the bare BLPOP floor: jobs/s from the job hashes' own timestamps, and what each job cost Redis while they ran
(bench/redis_cost.py: CPU and commands from the first poll that saw a job done to the one that saw all done)."""
from __future__ import annotations

from typing import Any

from rq import Queue

from jobsvc import Client

from . import jobs
from .harness import BenchError, Env, rq_ts
from .measure import BATCH, FLOOR, FLOOR_PAYLOAD, JOBSVC, RQ_SIMPLE, RQ_WORKER, Results, Sizes, jobsvc_client, put
from .redis_cost import Drained, drain


def _span(starts: list[float | None], ends: list[float | None], n: int) -> tuple[float, float, float]:
    s = [x for x in starts if x is not None]
    e = [x for x in ends if x is not None]
    if len(s) < n or len(e) < n:
        raise BenchError(f"only {len(s)} start / {len(e)} end timestamps for {n} jobs")
    return min(s), max(e), max(e) - min(s)


def _figures(d: Drained, n: int, first: float, span: float) -> dict[str, float]:
    return {"rate": n / span, "wall_rate": n / (d.t_done - d.t_spawn), "startup": first - d.t_spawn, "n": n,
            "cpu": d.run.cpu_us_per_job, "cmds": d.run.commands_per_job, "busy": d.run.busy}


def _throughput_jobsvc(env: Env, n: int, procs: int) -> dict[str, float]:
    env.flush()
    client = jobsvc_client(env)
    ids: list[str] = []
    for start in range(0, n, BATCH):
        ids += [e.id for e in client.enqueue_many([Client.job(jobs.noop, queue="tp")
                                                  for _ in range(min(BATCH, n - start))])]

    def done() -> int:
        s = client.stats("tp")
        return s.get("completed", 0) + s.get("failed", 0)

    d = drain(env.r, env.children, lambda: [env.jobsvc_worker("tp", burst=True, concurrency=procs)], done, n,
              timeout=n / 200 + 30, settle=15)
    failed = client.stats("tp").get("failed", 0)
    if failed:
        raise BenchError(f"{failed} no-op jobs failed (worker logs: --keep)")
    rows = env.hmget_many([client.keys.job(i) for i in ids], ["js_started_ms", "js_ended_ms"])
    first, _last, span = _span([int(a) / 1000 if a else None for a, _ in rows],
                               [int(b) / 1000 if b else None for _, b in rows], n)
    return _figures(d, n, first, span)


def _throughput_rq(env: Env, n: int, procs: int, simple: bool) -> dict[str, float]:
    env.flush()
    q = Queue("tp", connection=env.r)
    ids: list[str] = []
    for start in range(0, n, BATCH):
        ids += [j.id for j in q.enqueue_many([Queue.prepare_data(jobs.noop) for _ in range(min(BATCH, n - start))])]

    def done() -> int:
        pipe = env.r.pipeline(transaction=False)
        pipe.zcard("rq:finished:tp")
        pipe.zcard("rq:failed:tp")
        return int(sum(pipe.execute()))

    d = drain(env.r, env.children, lambda: [env.rq_worker("tp", simple=simple, burst=True) for _ in range(procs)],
              done, n, timeout=n / (100 if simple else 15) + 30, settle=15)
    failed = env.r.zcard("rq:failed:tp")
    if failed:
        raise BenchError(f"{failed} RQ no-op jobs failed")
    rows = env.hmget_many([f"rq:job:{i}" for i in ids], ["started_at", "ended_at"])
    first, _last, span = _span([rq_ts(a) for a, _ in rows], [rq_ts(b) for _, b in rows], n)
    return _figures(d, n, first, span)


def _throughput_floor(env: Env, n: int, procs: int) -> dict[str, float]:
    env.flush()
    for start in range(0, n, BATCH):
        env.r.rpush("floor", *[FLOOR_PAYLOAD] * min(BATCH, n - start))
    d = drain(env.r, env.children, lambda: [env.bare("floor", "drain") for _ in range(procs)],
              lambda: n - int(env.r.llen("floor")), n, timeout=n / 500 + 30, settle=5)
    rows = [v.split() for v in env.r.lrange("floor:done", 0, -1)]
    if len(rows) < procs or sum(int(r[0]) for r in rows) != n:
        raise BenchError(f"bare consumers reported {rows} for {n} items")
    first, last = min(float(r[1]) for r in rows), max(float(r[2]) for r in rows)
    return _figures(d, n, first, last - first)


def throughput(env: Env, sizes: Sizes, out: Results, notes: list[str]) -> None:
    detail: dict[str, Any] = {}
    runs = [(FLOOR, lambda procs: _throughput_floor(env, sizes.tp_floor, procs)),
            (JOBSVC, lambda procs: _throughput_jobsvc(env, sizes.tp_jobsvc, procs)),
            (RQ_SIMPLE, lambda procs: _throughput_rq(env, sizes.tp_simple, procs, simple=True)),
            (RQ_WORKER, lambda procs: _throughput_rq(env, sizes.tp_fork, procs, simple=False))]
    for system, run in runs:
        for procs in (1, 2):
            try:
                r = run(procs)
            except BenchError as exc:
                notes.append(f"no-op throughput, {system} x{procs}: not measured: {exc}")
                continue
            for figure, key in (("noop", "rate"), ("noop_cpu", "cpu"), ("noop_cmds", "cmds")):
                put(out, f"{figure}_{procs}", system, r[key])
            detail[f"{system}_x{procs}"] = r
    out["_throughput_detail"] = detail
    notes.append("no-op jobs/s = N / (last job's end - first job's start), from the job hashes' own timestamps "
                 "(jobsvc js_started_ms/js_ended_ms, RQ started_at/ended_at): process start-up is excluded. "
                 f"N = {sizes.tp_jobsvc:,} (jobsvc), {sizes.tp_simple:,} (SimpleWorker), {sizes.tp_fork:,} "
                 "(forking Worker), pre-enqueued in batches, burst-mode workers. jobsvc 2 processes = "
                 "`--concurrency 2`; RQ 2 processes = two `rq worker` processes. Floor: "
                 f"{sizes.tp_floor:,} items of {len(FLOOR_PAYLOAD)} bytes drained by `python -m bench.bare` "
                 "(one BLPOP per item, nothing else). Redis µs and commands per job: over the window from the "
                 "first poll that saw a job done to the one that saw all done, the benchmark's polling subtracted.")
