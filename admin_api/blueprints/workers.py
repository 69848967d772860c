"""/api/v1/workers: RQ's worker registry (`rq:workers`, `rq:worker:<name>` hashes) plus the jobs each
holds a lease on (`<prefix>leases`, and the job hash's worker_name). Only the WORKERS_LEASES_MAX
soonest-expiring leases are read: a request costs what it shows, not the number of jobs running."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response

from jobsvc import defaults
from jobsvc.apikeys import READ
from jobsvc.job import DEFAULT_NAMESPACE
from jobsvc.keys import Keys

from .. import schemas as s
from ..api import config, conn, operation, reply
from ..auth import Principal

bp = Blueprint("workers", __name__, url_prefix="/api/v1")

RQ_WORKERS = "rq:workers"
RQ_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def _rq_ms(text: str | None) -> int | None:
    if not text:
        return None
    for fmt in (RQ_TIME, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return int(datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp() * 1000)
        except ValueError:
            continue
    return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def _leases(who: Principal) -> tuple[dict[str, list[dict[str, Any]]], bool]:
    """Running jobs by worker name, with their lease expiry (only jobs the key may see), read from the
    WORKERS_LEASES_MAX soonest-expiring leases; and whether more leases exist than were read. Leases held by
    `callback` (HTTP handler jobs that answered 202) or `pull:...` workers come out under those names, which
    are no registered worker's: the caller leaves them out."""
    r = conn()
    key = Keys(config().key_prefix).leases
    limit = defaults.WORKERS_LEASES_MAX
    pipe = r.pipeline(transaction=False)
    pipe.zrange(key, 0, limit - 1, withscores=True)
    pipe.zcard(key)
    rows, total = pipe.execute()
    pipe = r.pipeline(transaction=False)
    for job_id, _ in rows:
        pipe.hmget(Keys.job(job_id.decode()), "worker_name", "origin", "js_ns")
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (job_id, expiry), (worker, queue, ns) in zip(rows, pipe.execute() if rows else [], strict=True):
        if worker is None:
            continue
        queue_name = queue.decode() if queue else None
        namespace = ns.decode() if ns else DEFAULT_NAMESPACE
        if not who.sees(queue_name, namespace):
            continue
        out[worker.decode(errors="replace")].append(
            {"id": job_id.decode(), "queue": queue_name, "lease_expires_at": int(expiry)})
    return out, total > len(rows)


@bp.get("/workers")
@operation("Workers: host, pid, queues, state, current jobs and leases, heartbeat, counts", scope=READ,
           responses={200: ("registered workers", s.WorkerListSchema)},
           description="A key limited to queues sees the workers of those queues; a limited key sees only the "
                       "current jobs it may see. Current jobs come from the "
                       f"{defaults.WORKERS_LEASES_MAX} soonest-expiring leases; leases_truncated says more exist.")
def list_(who: Principal) -> Response:
    return reply(s.WorkerListSchema, worker_rows(who))


def worker_rows(who: Principal) -> dict[str, Any]:
    """Registered workers the key may see, by name, each with the jobs it holds a lease on, and whether more
    leases exist than were read (`leases_truncated`); also the dashboard's."""
    r = conn()
    keys = sorted(k.decode() for k in r.smembers(RQ_WORKERS))
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    leases, truncated = _leases(who)
    workers = []
    for key, raw in zip(keys, pipe.execute() if keys else [], strict=True):
        if not raw:
            continue  # registration outlived its hash: a dead worker RQ has not cleaned up yet
        f = {k.decode(): v.decode(errors="replace") for k, v in raw.items()}
        name = key.removeprefix("rq:worker:")
        queues = [q for q in f.get("queues", "").split(",") if q]
        if who.queues is not None and not set(queues) & who.queues:
            continue
        current = sorted(leases.get(name, []), key=lambda j: j["id"])
        workers.append({
            "name": name, "hostname": f.get("hostname") or None, "pid": _int(f.get("pid")), "queues": queues,
            "state": "busy" if current else (f.get("state") or "idle"), "birth_at": _rq_ms(f.get("birth")),
            "last_heartbeat_at": _rq_ms(f.get("last_heartbeat")), "current_jobs": current,
            "processed": _int(f.get("successful_job_count")) or 0, "failed": _int(f.get("failed_job_count")) or 0,
        })
    return {"workers": workers, "leases_truncated": truncated}
