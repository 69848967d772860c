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
from jobsvc.admin.workers_info import CALLBACK_HOLDER

from .. import schemas as s
from ..api import config, conn, operation, reply
from ..auth import Principal

bp = Blueprint("workers", __name__, url_prefix="/api/v1")


def _leases(who: Principal) -> tuple[dict[str, list[dict[str, Any]]], bool]:
    """Running jobs by worker name, with their lease expiry (only jobs the key may see), and whether more leases
    exist than were read. Leases held by `callback` (HTTP handler jobs that answered 202) or `pull:...` workers
    come out under those names, which are no registered worker's."""
    leased, truncated = workers_info.leased_jobs(conn(), config().key_prefix)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for job in leased:
        if who.sees(job.queue, job.namespace):
            out[job.worker].append({"id": job.id, "queue": job.queue, "lease_expires_at": job.lease_expires_ms})
    return out, truncated


@bp.get("/workers")
@operation("Workers (registered and pull): host, pid, queues, state, current jobs and leases, heartbeat, counts",
           scope=READ,
           responses={200: ("registered workers", s.WorkerListSchema)},
           description="Pull workers (kind `pull`) are listed while they claim (an idle one for "
                       f"{workers_info.PULL_WORKER_SEEN_MS // 60000} minutes after its last claim) or hold a lease; "
                       "their last claim is their last_heartbeat_at. "
                       "A key limited to queues sees the workers of those queues; a limited key sees only the "
                       "current jobs it may see. Current jobs come from the "
                       f"{defaults.WORKERS_LEASES_MAX} soonest-expiring leases; leases_truncated says more exist.")
def list_(who: Principal) -> Response:
    return reply(s.WorkerListSchema, worker_rows(who))


def worker_rows(who: Principal) -> dict[str, Any]:
    """Workers the key may see, by name: registered (RQ's registry, kind `rq`) and pull workers (kind `pull`: seen
    claiming lately, or holding a lease under a name no registered worker has), each with the jobs it holds a
    lease on, and whether more leases exist than were read (`leases_truncated`); also the dashboard's."""
    leases, truncated = _leases(who)
    workers = []
    for w in workers_info.registered(conn()):
        if who.queues is not None and not set(w.queues) & who.queues:
            continue
        current = sorted(leases.pop(w.name, []), key=lambda j: j["id"])
        workers.append({
            "name": w.name, "kind": "rq", "hostname": w.hostname, "pid": w.pid, "queues": w.queues,
            "state": "busy" if current else (w.state or "idle"), "birth_at": w.birth_ms,
            "last_heartbeat_at": w.last_heartbeat_ms, "current_jobs": current,
            "processed": w.processed, "failed": w.failed,
        })
    leases.pop(CALLBACK_HOLDER, None)  # HTTP handler jobs that answered 202: no worker holds them
    workers += _pull_rows(who, leases)
    return {"workers": sorted(workers, key=lambda w: w["name"]), "leases_truncated": truncated}


def _pull_rows(who: Principal, leases: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Pull workers: those seen claiming, plus any other lease holder (one whose claims were before the window,
    or a claim from Python with the default name). They keep no counts: `processed` and `failed` are 0."""
    seen = {p.name: p for p in workers_info.pull_workers(conn(), config().key_prefix)}
    rows = []
    for name in sorted(set(seen) | set(leases)):
        current = sorted(leases.get(name, []), key=lambda j: j["id"])
        p = seen.get(name)
        queues = p.queues if p else sorted({j["queue"] for j in current if j["queue"]})
        if who.queues is not None and not set(queues) & who.queues and not current:
            continue
        rows.append({"name": name, "kind": "pull", "hostname": None, "pid": None, "queues": queues,
                     "state": "busy" if current else "idle", "birth_at": None,
                     "last_heartbeat_at": p.last_seen_ms if p else None, "current_jobs": current,
                     "processed": 0, "failed": 0})
    return rows
