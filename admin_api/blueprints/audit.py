"""/api/v1/audit: every mutating call (key id, action, parameters, counts, outcome, time), newest first."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from jobsvc.admin import audit
from jobsvc.admin.apikeys import ADMIN

from .. import schemas as s
from ..api import config, conn, operation, reply
from ..auth import Principal, require_unlimited

bp = Blueprint("audit", __name__, url_prefix="/api/v1")


@bp.get("/audit")
@operation("The audit log, newest first", scope=ADMIN, query=s.AuditQuery,
           responses={200: ("one page; pass next_cursor back as cursor for older entries", s.AuditPageSchema)})
def list_(who: Principal, q: dict[str, Any]) -> Response:
    require_unlimited(who, "reading the audit log")
    entries, cursor = audit.list_entries(conn(), config().key_prefix, q.get("cursor"), q["limit"])
    rows = [{"id": e.id, "time": e.time_ms, "key_id": e.key_id, "action": e.action, "status": e.status,
             "params": e.params, "counts": e.counts} for e in entries]
    return reply(s.AuditPageSchema, {"entries": rows, "next_cursor": cursor})
