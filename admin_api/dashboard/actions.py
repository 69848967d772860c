"""Dashboard actions (form POSTs): retry / cancel / terminate a job, run / enable / disable a schedule, and bulk
retry or requeue with a dry-run preview and a confirm step. Each needs the scope its API endpoint needs, acts
only on what the key may see (the API's own checks), and writes the same audit entry, marked via=dashboard."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response  # what redirect() makes (flask's Response derives from it)

from jobsvc.admin import audit
from jobsvc.admin import bulk as core
from jobsvc.admin.apikeys import ADMIN, WRITE
from jobsvc.errors import ValidationError, WrongState

from ..api import client, config, conn
from ..auth import Principal, forbidden
from ..blueprints.bulk import bulk_filter
from ..blueprints.jobs import visible_job
from ..blueprints.schedules import schedules, visible_schedule
from ..errors import status_of
from . import session as sess
from .blueprint import bp, safe_next
from .data import visible_queues

log = logging.getLogger("jobsvc.api")

VIA = {"via": "dashboard"}
BULK_OPERATIONS = {"retry": ("bulk.retry", core.bulk_retry), "requeue_quarantined":
                   ("bulk.requeue_quarantined", core.requeue_quarantined)}
BULK_FIELDS = ("queue", "namespace", "function", "state", "older_than", "newer_than", "error_contains")


def record(who: Principal, action: str, params: dict[str, Any], counts: dict[str, Any], status: int) -> None:
    """One audit entry, as admin_api.api.write_audit writes it for the API (Redis down: not recorded)."""
    if status == 503:
        return
    try:
        audit.record(conn(), config().key_prefix, who.key_id, action, {**params, **VIA}, counts, status)
    except Exception:  # the action is done; say so loudly, but answer it
        log.exception("could not write the audit entry of %s", action)


def perform(scope: str, action: str, params: dict[str, Any], fn: Callable[[Principal], dict[str, Any]]) -> None:
    """Check the scope, run fn(who) -> audit counts, and audit the outcome with the API's status for it."""
    who = sess.current()
    assert who is not None  # the gate let the request in
    try:
        if not who.grants(scope):
            raise forbidden(f"this key lacks the {scope} scope")
        counts = fn(who)
    except Exception as exc:
        record(who, action, params, {}, status_of(exc))
        raise
    record(who, action, params, counts, 200)


def _back(default: str) -> Response:
    return redirect(safe_next(request.form.get("next"), default), code=303)


# -- one job --------------------------------------------------------------------------------------------


def _job_action(job_id: str, action: str, verb: str, act: Callable[[str], Any]) -> Response:
    def run(who: Principal) -> dict[str, Any]:
        visible_job(who, job_id)  # 404 for a job outside the key's namespaces / queues
        act(job_id)
        return {"changed": 1}

    try:
        perform(WRITE, action, {"job_id": job_id}, run)
        flash(f"Job {job_id}: {verb}.", "ok")
    except (WrongState, ValidationError) as exc:  # the job moved on: say why on its page
        flash(f"Job {job_id}: {exc}", "error")
    return _back(url_for("dashboard.job", job_id=job_id))


@bp.post("/jobs/<job_id>/retry")
def job_retry(job_id: str) -> Response:
    return _job_action(job_id, "jobs.retry", "queued again", client().requeue)


@bp.post("/jobs/<job_id>/cancel")
def job_cancel(job_id: str) -> Response:
    return _job_action(job_id, "jobs.cancel", "cancelled", client().cancel)


@bp.post("/jobs/<job_id>/terminate")
def job_terminate(job_id: str) -> Response:
    return _job_action(job_id, "jobs.terminate", "terminated", client().terminate)


# -- schedules ------------------------------------------------------------------------------------------


def _schedule_action(schedule_id: str, action: str, params: dict[str, Any],
                     act: Callable[[], dict[str, Any]], message: Callable[[dict[str, Any]], str]) -> Response:
    out: dict[str, Any] = {}

    def run(who: Principal) -> dict[str, Any]:
        visible_schedule(who, schedule_id)
        out.update(act())
        return out

    try:
        perform(WRITE, action, {"schedule_id": schedule_id, **params}, run)
        flash(message(out), "ok")
    except (WrongState, ValidationError) as exc:
        flash(f"Schedule {schedule_id}: {exc}", "error")
    return _back(url_for("dashboard.schedule", schedule_id=schedule_id))


@bp.post("/schedules/<schedule_id>/run")
def schedule_run(schedule_id: str) -> Response:
    return _schedule_action(schedule_id, "schedules.execute", {},
                            lambda: {"job_id": schedules().execute(schedule_id)},
                            lambda out: f"Schedule {schedule_id}: job {out['job_id']} enqueued.")


@bp.post("/schedules/<schedule_id>/enable")
def schedule_enable(schedule_id: str) -> Response:
    return _schedule_action(schedule_id, "schedules.patch", {"enabled": True},
                            lambda: (schedules().enable(schedule_id), {"changed": 1})[1],
                            lambda out: f"Schedule {schedule_id}: enabled.")


@bp.post("/schedules/<schedule_id>/disable")
def schedule_disable(schedule_id: str) -> Response:
    return _schedule_action(schedule_id, "schedules.patch", {"enabled": False},
                            lambda: (schedules().disable(schedule_id), {"changed": 1})[1],
                            lambda out: f"Schedule {schedule_id}: disabled.")


# -- bulk -----------------------------------------------------------------------------------------------


def bulk_form(args: Mapping[str, str]) -> dict[str, str]:
    """The bulk form's fields as text (what the page shows and the confirm step posts back)."""
    form = {k: (args.get(k) or "").strip() for k in BULK_FIELDS}
    op = args.get("operation") or "retry"
    form["operation"] = op if op in BULK_OPERATIONS else "retry"
    return form


def _bulk_body(form: Mapping[str, str]) -> dict[str, Any]:
    """The API's request body for these fields: empty ones left out, seconds as numbers."""
    body: dict[str, Any] = {}
    for k in BULK_FIELDS:
        v = form.get(k, "")
        if not v:
            continue
        if k in ("older_than", "newer_than"):
            try:
                body[k] = float(v)
            except ValueError:
                raise ValidationError(f"{k.replace('_', ' ')} must be a number of seconds") from None
        else:
            body[k] = v
    if form["operation"] == "requeue_quarantined":
        body.pop("state", None)
    return body


def bulk_page(form: dict[str, str], result: core.BulkResult | None = None, error: str | None = None,
              status: int = 200) -> tuple[str, int]:
    who = sess.current()
    assert who is not None
    return render_template("dashboard/bulk.html", page="bulk", form=form, result=result, error=error,
                           queues=visible_queues(who), operations=list(BULK_OPERATIONS)), status


def _bulk(dry_run: bool) -> tuple[str, int]:
    form = bulk_form(request.form)
    action, fn = BULK_OPERATIONS[form["operation"]]
    out: list[core.BulkResult] = []

    def run(who: Principal) -> dict[str, Any]:
        res = fn(conn(), config(), bulk_filter(who, _bulk_body(form)), dry_run=dry_run)
        out.append(res)
        return {"matched": res.matched, "changed": res.changed, "skipped": res.skipped}

    # Audited with the form's fields as given, like the API's request body (a 403 or 422 included).
    params = {k: v for k, v in form.items() if v and (k != "state" or form["operation"] == "retry")}
    try:
        perform(ADMIN, action, {**params, "dry_run": dry_run}, run)
    except (ValidationError, WrongState) as exc:
        return bulk_page(form, error=str(exc), status=422)
    return bulk_page(form, result=out[0])


@bp.post("/bulk/preview")
def bulk_preview() -> tuple[str, int]:
    """Step 1: a dry run. Counts and samples what would change; the page then offers the confirm button."""
    return _bulk(dry_run=True)


@bp.post("/bulk/run")
def bulk_run() -> tuple[str, int]:
    """Step 2: the change itself, only from the preview page's confirm form."""
    if request.form.get("confirm") != "yes":
        return bulk_page(bulk_form(request.form), error="preview first, then confirm", status=428)
    return _bulk(dry_run=False)
