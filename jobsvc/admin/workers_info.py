"""Who is working: RQ's worker registry (`rq:workers`, the `rq:worker:<name>` hashes RQ's worker code keeps,
for jobsvc's workers and plain RQ's alike), the pull workers seen claiming (`<prefix>pull_workers`, written by
claim.lua) and the jobs under a lease (`<prefix>leases`, the job hash's worker_name). GET /api/v1/workers and
the dashboard's Workers page show it.

On a Redis Cluster the leases and the pull workers seen are per queue (`{q}:leases`, `{q}:pull_workers`, in the
queue's slot where claim.lua writes them): each read walks the cluster's queues, pipelined per shard, and merges
them (the soonest-expiring leases, the most recent pull workers). RQ's worker registry keeps its names there too
(jobsvc/engine/cluster.py: register_worker)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

import redis

from .. import defaults
from ..engine.connection import text
from ..engine.job import DEFAULT_NAMESPACE
from ..engine.keys import RQ_WORKER, RQ_WORKERS
from ..engine.layout import Layout

RQ_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
# How long a pull worker that stopped claiming is still listed: twice the longest visibility timeout a claim may
# ask for, so one that holds jobs that long between claims is not dropped while it works.
PULL_WORKER_SEEN_MS = int(2 * defaults.PULL_VISIBILITY_MAX * 1000)
# The lease holder await_callback.lua writes for an HTTP handler job that answered 202: a service, no worker.
CALLBACK_HOLDER = "callback"
PULL_WORKERS_MAX = 1000  # (queue, worker) pairs read per request: a request costs what it shows


@dataclass(frozen=True)
class WorkerInfo:
    """One registered worker as its hash says; None where the hash lacks a field or holds no readable value."""

    name: str
    hostname: str | None
    pid: int | None
    queues: list[str]
    state: str | None  # RQ's own word (idle, busy, suspended, ...)
    birth_ms: int | None
    last_heartbeat_ms: int | None
    processed: int
    failed: int


@dataclass(frozen=True)
class LeasedJob:
    """A job under a lease: who holds it (a worker name, `callback` for an HTTP handler job that answered 202,
    `pull:...` for a pull worker), where the job lives and when the lease runs out."""

    id: str
    worker: str
    queue: str | None
    namespace: str
    lease_expires_ms: int


def registered(conn: redis.Redis) -> list[WorkerInfo]:
    """Every registered worker, by name. A registration that outlived its hash (a dead worker RQ has not cleaned
    up yet) is left out."""
    keys = sorted(text(k) for k in conn.smembers(RQ_WORKERS))
    pipe = conn.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    out = []
    for key, raw in zip(keys, pipe.execute() if keys else [], strict=True):
        if not raw:
            continue
        f = {k.decode(): v.decode(errors="replace") for k, v in raw.items()}
        out.append(WorkerInfo(
            name=key.removeprefix(RQ_WORKER), hostname=f.get("hostname") or None, pid=_int(f.get("pid")),
            queues=[q for q in f.get("queues", "").split(",") if q], state=f.get("state") or None,
            birth_ms=_rq_ms(f.get("birth")), last_heartbeat_ms=_rq_ms(f.get("last_heartbeat")),
            processed=_int(f.get("successful_job_count")) or 0, failed=_int(f.get("failed_job_count")) or 0))
    return out


def _queues(conn: redis.Redis, layout: Layout) -> list[str | None]:
    """The scopes a per-queue read walks: each queue of a cluster, or the one global key set of a single Redis."""
    return list(layout.cluster_queues(conn)) if layout.cluster else [None]


def leased_jobs(conn: redis.Redis, prefix: str) -> tuple[list[LeasedJob], bool]:
    """The WORKERS_LEASES_MAX soonest-expiring leases with their jobs, and whether more leases exist than were
    read: a read costs what it shows, not the number of jobs running (on a cluster, that many per queue at most,
    merged). A lease whose job names no worker is left out."""
    layout, limit = Layout.of(conn, prefix), defaults.WORKERS_LEASES_MAX  # read per call: tests lower the limit
    queues = _queues(conn, layout)
    pipe = conn.pipeline(transaction=False)
    for queue in queues:
        pipe.zrange(layout.key("leases", queue), 0, limit - 1, withscores=True)
        pipe.zcard(layout.key("leases", queue))
    replies = pipe.execute()
    merged = sorted((expiry, job_id, queue) for queue, rows in zip(queues, replies[::2], strict=True)
                    for job_id, expiry in rows)
    rows, total = merged[:limit], sum(replies[1::2])
    pipe = conn.pipeline(transaction=False)
    for _, job_id, queue in rows:
        pipe.hmget(layout.job(queue, job_id.decode()), "worker_name", "origin", "js_ns")
    out = []
    for (expiry, job_id, _), (worker, queue, ns) in zip(rows, pipe.execute() if rows else [], strict=True):
        if worker is None:
            continue
        out.append(LeasedJob(id=job_id.decode(), worker=worker.decode(errors="replace"),
                             queue=queue.decode() if queue else None,
                             namespace=ns.decode() if ns else DEFAULT_NAMESPACE, lease_expires_ms=int(expiry)))
    return out, total > len(rows)


@dataclass(frozen=True)
class PullWorker:
    """A pull worker (jobsvc/http/pull.py) as its claim calls show it: the queues it claimed from and when it
    last did, within PULL_WORKER_SEEN_MS."""

    name: str
    queues: list[str]
    last_seen_ms: int


def pull_workers(conn: redis.Redis, prefix: str, now_ms: int | None = None) -> list[PullWorker]:
    """Pull workers that claimed (jobs or nothing) within PULL_WORKER_SEEN_MS, by name; at most
    PULL_WORKERS_MAX (queue, worker) pairs, the most recent. Older entries are dropped here: claim.lua only adds."""
    layout = Layout.of(conn, prefix)
    since = (int(time.time() * 1000) if now_ms is None else now_ms) - PULL_WORKER_SEEN_MS
    pipe = conn.pipeline(transaction=False)
    for queue in _queues(conn, layout):
        pipe.zremrangebyscore(layout.key("pull_workers", queue), "-inf", f"({since}")
        pipe.zrevrange(layout.key("pull_workers", queue), 0, PULL_WORKERS_MAX - 1, withscores=True)
    replies = pipe.execute()
    rows = sorted((row for read in replies[1::2] for row in read), key=lambda r: -r[1])[:PULL_WORKERS_MAX]
    queues: dict[str, set[str]] = {}
    seen: dict[str, int] = {}
    for member, score in rows:
        queue, _, name = member.decode(errors="replace").partition("/")
        queues.setdefault(name, set()).add(queue)
        seen[name] = max(seen.get(name, 0), int(score))
    return [PullWorker(name, sorted(queues[name]), seen[name]) for name in sorted(queues)]


def _rq_ms(value: str | None) -> int | None:
    """Epoch ms of one of RQ's UTC timestamps (with or without microseconds); None if absent or unreadable."""
    if not value:
        return None
    for fmt in (RQ_TIME, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return int(datetime.strptime(value, fmt).replace(tzinfo=timezone.utc).timestamp() * 1000)
        except ValueError:
            continue
    return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None
