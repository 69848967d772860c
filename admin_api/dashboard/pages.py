"""The dashboard's pages. Each is registered twice: the HTML page at its path, and its live-refresh twin at
/dashboard/api/live/<path> that answers {"regions": {name: html}} -- the page's changing parts rendered by the
same partial templates, which the page's script swaps in every few seconds without a reload."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Response, jsonify, render_template, request, url_for

from jobsvc.engine.states import State

from ..auth import Principal, forbidden
from . import data
from . import session as sess
from .actions import bulk_form, bulk_page
from .blueprint import bp

Context = Callable[..., dict[str, Any]]


def page(rule: str, endpoint: str, regions: tuple[str, ...]) -> Callable[[Context], Context]:
    """Register `context(who, **path_args) -> dict` as the page `endpoint` (template dashboard/<endpoint>.html)
    and its live twin (partials dashboard/_<region>.html)."""

    def deco(context: Context) -> Context:
        def html(**path: Any) -> str:
            ctx = context(_who(), **path)
            live = url_for(f"dashboard.live_{endpoint}", **{**_live_args(), **path})
            return render_template(f"dashboard/{endpoint}.html", page=endpoint, live_url=live, **ctx)

        def live(**path: Any) -> Response:
            ctx = context(_who(), **path)
            parts = {r: render_template(f"dashboard/_{r}.html", page=endpoint, **ctx) for r in regions}
            return jsonify({"regions": parts, "at_ms": int(time.time() * 1000)})

        bp.add_url_rule(rule, endpoint, html)
        bp.add_url_rule("/api/live" + (rule if rule != "/" else "/overview"), f"live_{endpoint}", live)
        return context

    return deco


# Query parameters a page reads: only these are carried to its live twin. Anything else is dropped, never
# handed to url_for, which reads keys such as _method, _external, _anchor or _scheme as its own options.
LIVE_ARGS = (*data.JOB_FILTERS, "cursor")


def _live_args() -> dict[str, str]:
    return {k: v for k in LIVE_ARGS if (v := request.args.get(k))}


def _who() -> Principal:
    who = sess.current()
    assert who is not None  # the gate let the request in
    return who


@page("/", "overview", ("summary", "queues", "charts"))
def overview(who: Principal) -> dict[str, Any]:
    return data.overview(who)


@page("/jobs", "jobs", ("jobs_table",))
def jobs(who: Principal) -> dict[str, Any]:
    return data.jobs(who, request.args)


@page("/jobs/<job_id>", "job", ("job_head", "job_runs"))
def job(who: Principal, job_id: str) -> dict[str, Any]:
    return data.job(who, job_id)


@page("/workers", "workers", ("workers_table",))
def workers(who: Principal) -> dict[str, Any]:
    return data.workers(who)


@page("/schedules", "schedules", ("schedules_table",))
def schedules(who: Principal) -> dict[str, Any]:
    return data.schedule_list(who, request.args)


@page("/schedules/<schedule_id>", "schedule", ("schedule_head", "schedule_runs"))
def schedule(who: Principal, schedule_id: str) -> dict[str, Any]:
    return data.schedule(who, schedule_id, request.args)


@page("/quarantine", "quarantine", ("jobs_table",))
def quarantine(who: Principal) -> dict[str, Any]:
    return data.jobs(who, request.args, state=State.QUARANTINED.value)


@page("/audit", "audit", ("audit_table",))
def audit_log(who: Principal) -> dict[str, Any]:
    if not data.Rights.of(who).audit:
        raise forbidden("the audit log needs a jobs:admin key that is not limited to namespaces or queues")
    return data.audit_log(request.args)


@bp.get("/bulk")
def bulk() -> tuple[str, int]:
    """The bulk form, prefilled from the query (the job browser links here with its filters)."""
    if not data.Rights.of(_who()).admin:
        raise forbidden("bulk actions need the jobs:admin scope")
    return bulk_page(bulk_form(request.args))
