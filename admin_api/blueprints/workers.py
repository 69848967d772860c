"""/api/v1/workers: RQ's worker registry plus the jobs each holds a lease on (jobsvc/admin/workers_info.py). Only the
WORKERS_LEASES_MAX soonest-expiring leases are read: a request costs what it shows, not the number of jobs
running."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import Blueprint, Response

from jobsvc import defaults
from jobsvc.admin import workers_info
from jobsvc.admin.apikeys import READ

from .. import schemas as s
from ..api import config, conn, operation, reply
from ..auth import Principal

bp = Blueprint("workers", __name__, url_prefix="/api/v1")


def _leases(who: Principal) -> tuple[dict[str, list[dict[str, Any]]], bool]:
    """Running jobs by worker name, with their lease expiry (only jobs the key may see), and whether more leases
    exist than were read. Leases held by `callback` (HTTP handler jobs that answered 202) or `pull:...` workers
    come out under those names, which are no registered worker's: the caller leaves them out."""
    leased, truncated = workers_info.leased_jobs(conn(), config().key_prefix)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for job in leased:
        if who.sees(job.queue, job.namespace):
            out[job.worker].append({"id": job.id, "queue": job.queue, "lease_expires_at": job.lease_expires_ms})
    return out, truncated


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
    registered = workers_info.registered(conn())
    leases, truncated = _leases(who)
    workers = []
    for w in registered:
        if who.queues is not None and not set(w.queues) & who.queues:
            continue
        current = sorted(leases.get(w.name, []), key=lambda j: j["id"])
        workers.append({
            "name": w.name, "hostname": w.hostname, "pid": w.pid, "queues": w.queues,
            "state": "busy" if current else (w.state or "idle"), "birth_at": w.birth_ms,
            "last_heartbeat_at": w.last_heartbeat_ms, "current_jobs": current,
            "processed": w.processed, "failed": w.failed,
        })
    return {"workers": workers, "leases_truncated": truncated}
