"""/api/v1/jobs/... bulk operations: retry, requeue quarantined, prune, TTL sweep, integrity sweep.

Each takes filters and `dry_run`. A dry run returns the count and a sample of ids and changes
nothing; anything else needs `X-Confirm: true` (428 without). The work is jobsvc.admin.bulk's; requests run
to completion within the call (bounded chunks in Lua), so the web server's timeout bounds their size."""
from __future__ import annotations

import dataclasses
from typing import Any

from flask import Blueprint, Response

from jobsvc.admin import bulk as core
from jobsvc.admin.apikeys import ADMIN

from .. import schemas as s
from ..api import audit_counts, config, confirm, conn, operation, reply
from ..auth import Principal, require_unlimited

bp = Blueprint("bulk", __name__, url_prefix="/api/v1")

RESULT = {200: ("what matched and what changed", s.BulkResultSchema)}
# request field -> BulkFilter field
FILTER_FIELDS = {"queue": "queue", "namespace": "namespace", "function": "function", "state": "state",
                 "older_than": "older_than_s", "newer_than": "newer_than_s", "error_contains": "error_contains"}


def bulk_filter(who: Principal, body: dict[str, Any]) -> core.BulkFilter:
    """The BulkFilter of a request body, narrowed to the key's namespace / queue limits (also the dashboard's)."""
    values = {name: body[k] for k, name in FILTER_FIELDS.items() if body.get(k) is not None}
    for what in ("queue", "namespace"):
        narrowed = who.narrow(what, values.get(what))
        if narrowed is not None:
            values[what] = narrowed
    return core.BulkFilter(**values)


def _result(res: core.BulkResult) -> Response:
    out = dataclasses.asdict(res)
    audit_counts(matched=res.matched, changed=res.changed, skipped=res.skipped)
    return reply(s.BulkResultSchema, out)


def _run(name: str, who: Principal, body: dict[str, Any]) -> Response:
    flt = bulk_filter(who, body)
    confirm(body["dry_run"])
    return _result(getattr(core, name)(conn(), config(), flt, dry_run=body["dry_run"]))


@bp.post("/jobs/batch/retry")
@operation("Retry the failed (or quarantined, or cancelled) jobs that match", scope=ADMIN, body=s.BulkRetrySchema,
           body_required=False, action="bulk.retry", responses=RESULT, errors=(428,),
           description="Attempts start over. Dry run: count and sample only.")
def bulk_retry(who: Principal, body: dict[str, Any]) -> Response:
    return _run("bulk_retry", who, body)


@bp.post("/jobs/batch/requeue_quarantined")
@operation("Requeue quarantined jobs that match", scope=ADMIN, body=s.BulkQuarantineSchema, body_required=False,
           action="bulk.requeue_quarantined", responses=RESULT, errors=(428,))
def requeue_quarantined(who: Principal, body: dict[str, Any]) -> Response:
    return _run("requeue_quarantined", who, body)


@bp.post("/jobs/prune")
@operation("Delete ended jobs that match", scope=ADMIN, body=s.BulkPruneSchema, body_required=False,
           action="bulk.prune", responses=RESULT, errors=(428,))
def prune(who: Principal, body: dict[str, Any]) -> Response:
    return _run("prune", who, body)


@bp.post("/jobs/ttl/sweep")
@operation("Delete jobs past their result or failure TTL", scope=ADMIN, body=s.TtlSweepSchema, body_required=False,
           action="bulk.ttl_sweep", responses=RESULT, errors=(428,),
           description="Needs a key without namespace or queue limits.")
def ttl_sweep(who: Principal, body: dict[str, Any]) -> Response:
    require_unlimited(who, "the TTL sweep")
    confirm(body["dry_run"])
    limit = {"limit": body["limit"]} if body.get("limit") else {}
    return _result(core.ttl_sweep(conn(), config(), dry_run=body["dry_run"], **limit))


@bp.post("/jobs/integrity/sweep")
@operation("Check (dry run) or repair the indexes and gauges", scope=ADMIN, body=s.SweepSchema, body_required=False,
           action="bulk.integrity_sweep", responses={200: ("what was found (and fixed)", s.IntegrityResultSchema)},
           errors=(428,), description="Needs a key without namespace or queue limits.")
def integrity_sweep(who: Principal, body: dict[str, Any]) -> Response:
    require_unlimited(who, "the integrity sweep")
    confirm(body["dry_run"])
    report = core.integrity_sweep(conn(), config(), fix=not body["dry_run"])
    data = dict(dataclasses.asdict(report), total=report.total, clean=report.clean)
    audit_counts(problems=report.total, scanned=report.scanned, fixed=report.fixed)
    return reply(s.IntegrityResultSchema, {"operation": "integrity_sweep", "dry_run": body["dry_run"], "report": data})
