"""What each dashboard page shows, read straight from the core for the signed-in key. Every function does work
proportional to what it returns (gauges, one cursor page, per-minute hashes), never a scan of jobs."""
from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobsvc import defaults
from jobsvc.admin import audit, lookup, timeseries
from jobsvc.admin.apikeys import ADMIN, WRITE
from jobsvc.admin.listing import JobFilter
from jobsvc.engine.job import JobInfo
from jobsvc.engine.keys import Keys
from jobsvc.engine.states import State
from jobsvc.errors import JobsvcError

from ..api import client, config, conn
from ..auth import Principal
from ..blueprints.job_runs import runs_of
from ..blueprints.jobs import UNREADABLE, list_page, visible_job
from ..blueprints.queues import paused_queues, queue_counts
from ..blueprints.schedules import schedules, sees_schedule, visible_schedule
from ..blueprints.workers import worker_rows
from . import charts
from .redact import shown

STATES = [s.value for s in State]
PAGE = defaults.DASHBOARD_PAGE_SIZE
JOB_FILTERS = ("queue", "state", "function", "namespace")


@dataclass(frozen=True)
class Rights:
    """What the signed-in key may do: the templates show only the buttons it may use."""

    write: bool
    admin: bool
    audit: bool

    @classmethod
    def of(cls, who: Principal) -> Rights:
        return cls(write=who.grants(WRITE), admin=who.grants(ADMIN), audit=who.grants(ADMIN) and not who.limited)


def _keys() -> Keys:
    return Keys(config().key_prefix)


def visible_queues(who: Principal) -> list[str]:
    names = set(client().queues())
    return sorted(q for q in names if who.queues is None or q in who.queues)


# -- overview ---------------------------------------------------------------------------------------------


def overview(who: Principal) -> dict[str, Any]:
    """Queues with counts per state and paused flag, oldest queued age, and the last hour's charts."""
    counts = queue_counts(who)
    names = sorted(set(visible_queues(who)) | set(counts))
    paused = paused_queues()
    # A queue's oldest job may belong to another namespace: a key limited to namespaces does not see it.
    ages = timeseries.oldest_queued_ages_ms(conn(), _keys(), names) if who.namespaces is None and names else {}
    empty = dict.fromkeys(STATES, 0)
    rows: list[dict[str, Any]] = [{"name": q, "paused": q in paused, "counts": counts.get(q, empty),
                                   "oldest_ms": ages.get(q)} for q in names]
    totals = {s: sum(r["counts"].get(s, 0) for r in rows) for s in STATES}
    series = _series(who)
    waiting = [r["oldest_ms"] for r in rows if r["oldest_ms"] is not None]
    out: dict[str, Any] = {"queues": rows, "totals": totals, "series": series, "charts": None,
                           "oldest_ms": max(waiting) if waiting else None}
    if series is not None:
        finished = sum(r["completed"] + r["failed"] for r in series)
        out["hour"] = {k: sum(r[k] for r in series) for k in timeseries.EVENTS}
        # Per job ending, not per job: a job an operator retries counts again each time it ends (the
        # per-minute counters are all there is; counting distinct jobs would cost a write per job).
        out["hour"]["ended"] = finished
        out["hour"]["failure_rate"] = (100.0 * out["hour"]["failed"] / finished) if finished else None
        out["charts"] = {"throughput": charts.throughput(series), "failure_rate": charts.failure_rate(series)}
    return out


def _series(who: Principal) -> list[dict[str, int]] | None:
    """Per-minute counts of the queues the key sees; None for any key limited to namespaces, with or without
    queues (the counters are per queue, so they would show other namespaces' traffic in those queues)."""
    if who.namespaces is not None:
        return None
    minutes = defaults.PER_MINUTE_WINDOW
    if who.queues is None:
        return timeseries.per_minute(conn(), _keys(), minutes)
    total: list[dict[str, int]] = []
    for queue in sorted(who.queues):
        rows = timeseries.per_minute(conn(), _keys(), minutes, queue=queue)
        if not total:
            total = rows
            continue
        for acc, row in zip(total, rows, strict=True):
            for event in timeseries.EVENTS:
                acc[event] += row[event]
    return total


# -- jobs -------------------------------------------------------------------------------------------------


def job_filters(who: Principal, args: Mapping[str, str]) -> dict[str, str | None]:
    """The browser's filters from the query string; a key limited to several queues / namespaces starts on
    its first one (the listing needs one)."""
    values = {k: (args.get(k) or "").strip() or None for k in JOB_FILTERS}
    for what, allowed in (("queue", who.queues), ("namespace", who.namespaces)):
        if values[what] is None and allowed is not None:
            values[what] = min(allowed)
    return values


def jobs(who: Principal, args: Mapping[str, str], state: str | None = None) -> dict[str, Any]:
    """One cursor page of jobs matching the filters (`state` forces one, for the quarantine page)."""
    values = job_filters(who, args)
    if state is not None:
        values["state"] = state
    out: dict[str, Any] = {"filters": values, "filter_args": {k: v for k, v in values.items() if v},
                           "jobs": [], "next_cursor": None, "error": None,
                           "cursor": args.get("cursor") or None, "states": STATES, "queues": visible_queues(who)}
    try:
        flt = JobFilter(queue=who.narrow("queue", values["queue"]), state=values["state"],
                        function=values["function"], namespace=who.narrow("namespace", values["namespace"]))
        out["jobs"], out["next_cursor"] = list_page(flt, out["cursor"], PAGE)
    except JobsvcError as exc:  # a bad filter or cursor in the address bar: say so on the page
        out["error"] = str(exc)
    return out


def job(who: Principal, job_id: str) -> dict[str, Any]:
    """One job (404 if the key may not see it): fields, every run with its traceback, payload redacted."""
    info = visible_job(who, job_id)
    payload: dict[str, str] = {"args": shown(list(info.args)), "kwargs": shown(dict(info.kwargs))}
    meta = _meta(info)
    if meta is not None:
        payload["meta"] = shown(meta)
    if info.raw.get("js_payload"):
        payload["payload"] = shown(_json(info.raw["js_payload"]))
    if info.state == State.COMPLETED:
        payload["result"] = shown(_result(job_id))
    runs = mark_operator_retries(runs_of(info).runs)
    return {"job": info, "payload": payload, "runs": list(reversed(runs)),  # newest first: the latest traceback
            "operator_retries": sum(1 for run in runs if run["after_retry"]),  # is what one looks for
            "description": _description(info), "handler": info.raw.get("js_handler")}


# A run that ends with its attempt still to come back: the next run keeps the same attempt number.
SAME_ATTEMPT_NEXT = frozenset({"handed_back", "accepted"})


def mark_operator_retries(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs, oldest first, each with `after_retry`: True for the first run after an operator's retry or
    requeue. Those reset the job's attempts, so the attempt number starts over: it goes down, or stays the
    same after a run that did not hand its attempt back (a worker's handback and an HTTP handler's 202
    leave the number to the next run). Read off the history alone: no Redis write marks a retry."""
    out: list[dict[str, Any]] = []
    prev: dict[str, Any] | None = None
    for run in runs:
        attempt = run.get("attempt")
        restarted = False
        if prev is not None and isinstance(attempt, int) and isinstance(prev.get("attempt"), int):
            restarted = attempt < prev["attempt"] or (
                attempt == prev["attempt"] and prev.get("outcome") not in SAME_ATTEMPT_NEXT)
        out.append({**run, "after_retry": restarted})
        prev = run
    return out


def _description(info: JobInfo) -> str | None:
    """A description someone wrote. The one jobsvc and RQ make up is the call with its arguments, unredacted:
    never shown (the payload above shows them, redacted)."""
    text = info.raw.get("description") or ""
    if not text or text.startswith(f"{info.func_name}("):
        return None
    return text


def _meta(info: JobInfo) -> Any:
    raw = info.raw.get("meta")
    if not raw:
        return None
    try:
        return pickle.loads(raw)  # RQ's default serializer; what the API process cannot read it says so
    except Exception:  # noqa: BLE001
        return "<meta not readable by the API process>"


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _result(job_id: str) -> Any:
    return lookup.latest_results(conn(), config().key_prefix, [job_id], UNREADABLE)[job_id]


# -- workers, schedules, audit ----------------------------------------------------------------------------


def workers(who: Principal) -> dict[str, Any]:
    """Registered workers and their current jobs, from the WORKERS_LEASES_MAX soonest-expiring leases."""
    return {**worker_rows(who), "leases_max": defaults.WORKERS_LEASES_MAX}


def schedule_list(who: Principal, args: Mapping[str, str]) -> dict[str, Any]:
    """One page of schedules by id, with next and last run (a limited key sees those of its jobs only)."""
    cursor = args.get("cursor") or None
    out: dict[str, Any] = {"schedules": [], "next_cursor": None, "cursor": cursor, "error": None}
    try:
        # One allowed namespace filters in the core; several are filtered here (a page may come out short).
        only = next(iter(who.namespaces)) if who.namespaces is not None and len(who.namespaces) == 1 else None
        items, out["next_cursor"] = schedules().list(cursor, PAGE, namespace=only)
        out["schedules"] = [sc for sc in items if sees_schedule(who, sc)]
    except JobsvcError as exc:
        out["error"] = str(exc)
    return out


def schedule(who: Principal, schedule_id: str, args: Mapping[str, str]) -> dict[str, Any]:
    """One schedule and a page of its run history, newest first."""
    sc = visible_schedule(who, schedule_id)
    cursor = args.get("cursor") or None
    out: dict[str, Any] = {"schedule": sc, "runs": [], "next_cursor": None, "cursor": cursor, "error": None}
    try:
        out["runs"], out["next_cursor"] = schedules().runs(schedule_id, cursor, PAGE)
    except JobsvcError as exc:
        out["error"] = str(exc)
    return out


def audit_log(args: Mapping[str, str]) -> dict[str, Any]:
    cursor = args.get("cursor") or None
    out: dict[str, Any] = {"entries": [], "next_cursor": None, "cursor": cursor, "error": None}
    try:
        out["entries"], out["next_cursor"] = audit.list_entries(conn(), config().key_prefix, cursor, PAGE)
    except JobsvcError as exc:
        out["error"] = str(exc)
    return out
