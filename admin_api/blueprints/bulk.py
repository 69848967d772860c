"""/api/v1/jobs/... bulk operations: retry, requeue quarantined, prune, the cancel-stale sweep (the "TTL sweep" of
other admin APIs), the expired-job sweep (/jobs/expired/delete; /jobs/ttl/sweep is its deprecated alias), the
integrity sweep.

Each takes filters and `dry_run` (the integrity sweep: `fix`). A dry run returns the count and a sample of ids and
changes nothing; anything else needs `X-Confirm: true` (428 without). The work is jobsvc.admin.bulk's; requests run
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


def _prune_filter(who: Principal, body: dict[str, Any]) -> core.BulkFilter:
    """Prune's filter: its states from state, states or statuses; its age from older_than or older_than_days."""
    body = dict(body)
    for many in ("states", "statuses"):
        if body.get(many) is not None:
            body["state"] = body[many]
    if body.get("older_than_days") is not None:
        body["older_than"] = body["older_than_days"] * 86_400
    return bulk_filter(who, body)


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
    flt = _prune_filter(who, body)
    confirm(body["dry_run"])
    return _result(core.prune(conn(), config(), flt, dry_run=body["dry_run"]))


@bp.post("/jobs/stale/cancel")
@operation("Cancel jobs queued too long, terminate jobs running too long", scope=ADMIN, body=s.CancelStaleSchema,
           action="bulk.cancel_stale", responses=RESULT, errors=(428,),
           description="The TTL sweep of other admin APIs. Queued jobs created more than queued_for seconds ago are "
                       "cancelled; running jobs started more than running_for seconds ago are terminated through "
                       "their lease (the worker stops them). details: queued / running jobs matched.")
def cancel_stale(who: Principal, body: dict[str, Any]) -> Response:
    flt = bulk_filter(who, body)
    queued = body.get("queued_for", body.get("age_seconds"))
    running = body.get("running_for", body.get("runtime_seconds"))
    confirm(body["dry_run"])
    return _result(core.cancel_stale(conn(), config(), flt, queued_for_s=queued, running_for_s=running,
                                     dry_run=body["dry_run"]))


EXPIRED = ("Needs a key without namespace or queue limits. Not the TTL sweep of other admin APIs (cancel jobs "
           "queued or running too long): that is POST /jobs/stale/cancel.")


def _delete_expired(who: Principal, body: dict[str, Any]) -> Response:
    require_unlimited(who, "the expired-job sweep")
    confirm(body["dry_run"])
    limit = {"limit": body["limit"]} if body.get("limit") else {}
    return _result(core.ttl_sweep(conn(), config(), dry_run=body["dry_run"], **limit))


@bp.post("/jobs/expired/delete")
@operation("Delete ended jobs past their result or failure TTL", scope=ADMIN, body=s.TtlSweepSchema,
           body_required=False, action="bulk.ttl_sweep", responses=RESULT, errors=(428,), description=EXPIRED)
def delete_expired(who: Principal, body: dict[str, Any]) -> Response:
    return _delete_expired(who, body)


@bp.post("/jobs/ttl/sweep")
@operation("Deprecated alias of POST /jobs/expired/delete", scope=ADMIN, body=s.TtlSweepSchema,
           body_required=False, action="bulk.ttl_sweep", responses=RESULT, errors=(428,), description=EXPIRED,
           deprecated=True)
def ttl_sweep(who: Principal, body: dict[str, Any]) -> Response:
    return _delete_expired(who, body)


@bp.post("/jobs/integrity/sweep")
@operation("Check the indexes and gauges (or, with fix, repair them)", scope=ADMIN, body=s.IntegritySweepSchema,
           body_required=False, action="bulk.integrity_sweep",
           responses={200: ("what was found (and fixed)", s.IntegrityResultSchema)}, errors=(428,),
           description="Reports only unless fix is true (then X-Confirm: true is needed). A key with namespace or "
                       "queue limits must scope the sweep within them.")
def integrity_sweep(who: Principal, body: dict[str, Any]) -> Response:
    fix = body["fix"] and not body.get("dry_run")
    queue, namespace = (who.narrow(what, body.get(what)) for what in ("queue", "namespace"))
    confirm(not fix)
    report = core.integrity_sweep(conn(), config(), fix=fix, queue=queue, namespace=namespace)
    data = dict(dataclasses.asdict(report), total=report.total, clean=report.clean)
    audit_counts(problems=report.total, scanned=report.scanned, fixed=report.fixed)
    return reply(s.IntegrityResultSchema, {"operation": "integrity_sweep", "dry_run": not fix, "report": data})
