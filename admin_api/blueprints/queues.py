"""/api/v1/queues: list with counts per state and the paused flag; pause and resume."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from jobsvc.admin.apikeys import ADMIN, READ
from jobsvc.admin.listing import queue_exists
from jobsvc.engine.keys import Keys
from jobsvc.engine.states import State
from jobsvc.engine.stats import Counts, read_counts
from jobsvc.errors import NotFound

from .. import schemas as s
from ..api import audit_counts, client, config, conn, operation, reply
from ..auth import Principal, forbidden

bp = Blueprint("queues", __name__, url_prefix="/api/v1")

QUEUE = ("the queue", s.QueueSchema)


def visible_counts(who: Principal) -> Counts:
    """The counts every surface shows (jobsvc/engine/stats.py: read_counts, jobs enqueued with RQ's own API included),
    narrowed to the queues and namespaces the key may see."""
    return read_counts(conn(), Keys(config().key_prefix)).seen_by(who.sees, who.namespaces is None)


def queue_counts(who: Principal) -> dict[str, dict[str, int]]:
    """Jobs per state of each queue the key may see (for a key limited to namespaces, only their jobs)."""
    return visible_counts(who).queues


def paused_queues() -> set[str]:
    return client().paused()


def _visible_names(who: Principal, counts: dict[str, dict[str, int]]) -> list[str]:
    """Queue names the key may know of: every queue jobsvc or plain RQ has used, within its queues; for a key
    limited to namespaces, only queues holding jobs of those namespaces (another namespace's queue names are
    its business). queue_counts has narrowed them already."""
    return sorted(q for q in counts if who.queues is None or q in who.queues)


def known_queue(name: str, who: Principal) -> bool:
    """Does /queues/{name} show this queue to the key? In O(1) for a key that sees every namespace (the queue
    set: every queue jobsvc or plain RQ has used); a key limited to namespaces knows the queues holding its jobs."""
    if who.queues is not None and name not in who.queues:
        return False
    if who.namespaces is None:
        return queue_exists(conn(), config(), name)
    return name in queue_counts(who)


def _queue(name: str, who: Principal) -> dict[str, Any]:
    all_counts = queue_counts(who)
    if name not in _visible_names(who, all_counts):
        raise NotFound(f"no queue {name}")
    counts = all_counts.get(name) or {st.value: 0 for st in State}
    return {"name": name, "paused": name in paused_queues(), "counts": counts}


@bp.get("/queues")
@operation("Queues with their counts and paused flag", scope=READ, responses={200: ("queues", s.QueueListSchema)})
def list_(who: Principal) -> Response:
    counts, paused = queue_counts(who), paused_queues()
    names = _visible_names(who, counts)
    empty = {st.value: 0 for st in State}
    rows = [{"name": q, "paused": q in paused, "counts": counts.get(q, empty)} for q in names]
    return reply(s.QueueListSchema, {"queues": rows})


@bp.get("/queues/<name>")
@operation("One queue", scope=READ, responses={200: QUEUE}, errors=(404,))
def get(name: str, who: Principal) -> Response:
    return reply(s.QueueSchema, _queue(name, who))


def _set_paused(name: str, who: Principal, paused: bool) -> Response:
    """Pause or resume a queue the key may see. A queue holds jobs of every namespace, so a key limited to
    namespaces may do neither: it would stop (or start) other namespaces' work."""
    if who.namespaces is not None:
        raise forbidden("a queue holds jobs of every namespace: a key limited to namespaces may not pause it")
    _queue(name, who)  # 404 for a queue the key may not know of, before anything changes
    if paused:
        client().pause(name)
    else:
        client().resume(name)
    audit_counts(changed=1)
    return reply(s.QueueSchema, _queue(name, who))


@bp.post("/queues/<name>/pause")
@operation("Pause a queue: workers stop claiming its jobs", scope=ADMIN, action="queues.pause",
           responses={200: QUEUE}, errors=(404,))
def pause(name: str, who: Principal) -> Response:
    return _set_paused(name, who, True)


@bp.post("/queues/<name>/resume")
@operation("Resume a paused queue", scope=ADMIN, action="queues.resume", responses={200: QUEUE}, errors=(404,))
def resume(name: str, who: Principal) -> Response:
    return _set_paused(name, who, False)
