"""/api/v1/schedules: cron (or interval) schedules -- list, create, get, patch, delete, run now, cancel (its
running jobs), run history.

The work is jobsvc.scheduling.schedules' (`Schedules`); this layer validates the request, keeps a key limited to
namespaces or queues to the schedules whose jobs it could see, and renders times as ISO 8601."""
from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, Response

from jobsvc import defaults
from jobsvc.admin.apikeys import ADMIN, READ, WRITE
from jobsvc.allowlist import ORIGIN_API
from jobsvc.engine.functions import Registry
from jobsvc.errors import NotFound, WrongState
from jobsvc.scheduling.schedules import Schedule, Schedules, ScheduleSpec

from .. import schemas as s
from ..api import audit_counts, client, no_content, operation, reply
from ..auth import Principal, forbidden, require_code_choice
from ..schemas.jobs import ScheduleCancelledSchema
from .functions import backoff_in, backoff_out

bp = Blueprint("schedules", __name__, url_prefix="/api/v1")

SCHEDULE = ("the schedule", s.ScheduleSchema)
# Definition fields passed through as they are (the rest are converted).
PLAIN = ("id", "function", "handler", "payload", "cron", "interval", "timezone", "args", "kwargs", "queue",
         "namespace", "priority", "max_attempts", "timeout", "result_ttl", "failure_ttl", "enabled", "misfire",
         "misfire_grace", "max_catchup", "overlap", "description", "status", "version", "runs", "completed",
         "failed", "skipped", "missed", "avg_runtime_ms")


def schedules() -> Schedules:
    return Schedules(client())


def schedule_dict(sc: Schedule) -> dict[str, Any]:
    d = sc.to_dict()
    out = {k: d.get(k) for k in PLAIN}
    out["description"] = out["description"] or ""
    out["backoff"] = backoff_out(d.get("backoff"))
    out.update(start_at=sc.start_ms, end_at=sc.end_ms, created_at=d.get("created_ms"),
               updated_at=d.get("updated_ms"), next_run_at=d.get("next_run_ms"))
    last = d.get("last_run")
    out["last_run"] = None if not last else {"job_id": last.get("job_id"), "scheduled_at": last.get("scheduled_ms"),
                                             "status": last.get("status")}
    return out


def _where(spec: ScheduleSpec, who: Principal) -> tuple[str | None, str]:
    """The queue and namespace of a schedule's jobs (the queue looked up only for a key limited to queues)."""
    namespace = Schedules._namespace(spec)  # the core's one definition of it
    queue = spec.queue
    if queue is None and who.queues is not None and spec.function is not None and spec.from_registry:
        try:
            queue = Registry(client()).resolve(spec.function).queue
        except NotFound:
            queue = None
    return queue or "default", namespace


def sees_schedule(who: Principal, spec: ScheduleSpec) -> bool:
    """May this key see a schedule (one whose jobs it could see)? Also the dashboard's."""
    return not who.limited or who.sees(*_where(spec, who))


def visible_schedule(who: Principal, schedule_id: str) -> Schedule:
    """The schedule, or 404 when there is none or the key may not see its jobs."""
    sc = schedules().get(schedule_id)
    if not sees_schedule(who, sc):
        raise NotFound(f"no schedule {schedule_id}")
    return sc


def _core_values(who: Principal, body: dict[str, Any]) -> dict[str, Any]:
    """The core's fields from a create or patch body. A raw import path as `function` (not `ns/name`) names
    Python code: an admin key's choice only, inside the allowed modules."""
    function = body.get("function")
    if function and "/" not in function:
        require_code_choice(who, function, "a schedule")
    values = dict(body)
    # Its fires are then the API's jobs: workers run their Python function only from the allowed modules.
    values["origin"] = ORIGIN_API
    if "backoff" in values:
        values["backoff"] = backoff_in(values["backoff"])
    return values


@bp.get("/schedules")
@operation("List schedules", scope=READ, query=s.ScheduleListQuery, responses={200: ("one page", s.SchedulePageSchema)},
           description="By id. Pass `next_cursor` back as `cursor`; with filters a page may be short while a "
                       "cursor remains.")
def list_(who: Principal, q: dict[str, Any]) -> Response:
    namespace = who.narrow("namespace", q.get("namespace"))
    items, cursor = schedules().list(q.get("cursor"), q["limit"], namespace=namespace, enabled=q.get("enabled"))
    rows = [schedule_dict(sc) for sc in items if sees_schedule(who, sc)]
    return reply(s.SchedulePageSchema, {"schedules": rows, "next_cursor": cursor})


@bp.post("/schedules")
@operation("Create a schedule", scope=WRITE, body=s.ScheduleCreateSchema, action="schedules.create",
           responses={201: SCHEDULE}, errors=(409,),
           description="Give `cron` (with `timezone`) or `interval`. A `function` of the form `ns/name` is a "
                       "registry function (it must exist). 409 when the id is taken.")
def create(who: Principal, body: dict[str, Any]) -> Response:
    values = _core_values(who, body)
    values.setdefault("id", secrets.token_hex(8))
    spec = ScheduleSpec.from_dict(values)
    if not sees_schedule(who, spec):
        raise forbidden("this key may not create schedules outside its namespaces or queues")
    sc = schedules().create(spec)
    audit_counts(created=1, schedule_id=sc.id)
    return reply(s.ScheduleSchema, schedule_dict(sc), 201)


@bp.get("/schedules/<schedule_id>")
@operation("Get a schedule", scope=READ, responses={200: SCHEDULE}, errors=(404,))
def get(schedule_id: str, who: Principal) -> Response:
    return reply(s.ScheduleSchema, schedule_dict(visible_schedule(who, schedule_id)))


@bp.patch("/schedules/<schedule_id>")
@operation("Change a schedule", scope=WRITE, body=s.SchedulePatchSchema, action="schedules.patch",
           responses={200: SCHEDULE}, errors=(404, 409),
           description="Any definition field; `enabled: false` disables it. A change of cron, interval, timezone, "
                       "start_at or end_at (or enabling it) moves its next run to the first one from now.")
def patch(schedule_id: str, who: Principal, body: dict[str, Any]) -> Response:
    current = visible_schedule(who, schedule_id)
    values = _core_values(who, body)
    if who.limited:
        merged = dict(current.spec_dict())
        merged.update(values)
        if values.get("cron") is not None and "interval" not in values:
            merged["interval"] = None
        if values.get("interval") is not None and "cron" not in values:
            merged["cron"] = None
        if not sees_schedule(who, ScheduleSpec.from_dict(merged)):
            raise forbidden("this key may not move a schedule outside its namespaces or queues")
    sc = schedules().patch(schedule_id, **values)
    audit_counts(changed=1)
    return reply(s.ScheduleSchema, schedule_dict(sc))


@bp.delete("/schedules/<schedule_id>")
@operation("Delete a schedule and its run history (jobs it fired stay)", scope=ADMIN, action="schedules.delete",
           responses={204: ("deleted", None)}, errors=(404,))
def delete(schedule_id: str, who: Principal) -> Response:
    visible_schedule(who, schedule_id)
    schedules().delete(schedule_id)
    audit_counts(deleted=1)
    return no_content()


@bp.post("/schedules/<schedule_id>/execute")
@operation("Run a schedule's job now", scope=WRITE, action="schedules.execute",
           responses={201: ("the job enqueued", s.ScheduleExecutedSchema)}, errors=(404, 409),
           description="Whatever its timing, enabled flag or overlap policy; its next run does not move. 409 when "
                       "its registry function is disabled or gone.")
def execute(schedule_id: str, who: Principal) -> Response:
    visible_schedule(who, schedule_id)
    job_id = schedules().execute(schedule_id)
    audit_counts(job_id=job_id)
    return reply(s.ScheduleExecutedSchema, {"schedule_id": schedule_id, "job_id": job_id}, 201)


@bp.post("/schedules/<schedule_id>/cancel")
@operation("Stop a schedule's running jobs", scope=WRITE, action="schedules.cancel",
           responses={200: ("the jobs stopped", ScheduleCancelledSchema)}, errors=(404,),
           description="Every job the schedule fired that is running now is terminated (it ends cancelled, as "
                       "POST /jobs/{id}/terminate does). The schedule itself stays as it is (disable it with PATCH "
                       "`enabled: false`). Safe to repeat: with nothing running, `terminated` is empty.")
def cancel(schedule_id: str, who: Principal) -> Response:
    visible_schedule(who, schedule_id)
    stopped = [job_id for job_id in _running_jobs(schedule_id) if _terminated(job_id)]
    audit_counts(changed=len(stopped))
    return reply(ScheduleCancelledSchema, {"schedule_id": schedule_id, "terminated": stopped})


def _running_jobs(schedule_id: str) -> list[str]:
    """The schedule's jobs running now, read off its run history (O(runs kept), SCHEDULE_RUNS_KEPT at most:
    runs still in flight are read off their jobs), never a scan of the running jobs of every schedule."""
    running: list[str] = []
    cursor = None
    while True:
        items, cursor = schedules().runs(schedule_id, cursor, defaults.PAGE_LIMIT_MAX)
        running += [r["job_id"] for r in items if r["status"] == "running" and r["job_id"]]
        if cursor is None:
            return running


def _terminated(job_id: str) -> bool:
    """Terminate one running job; False when it ended (or went) meanwhile."""
    try:
        client().terminate(job_id)
    except (WrongState, NotFound):
        return False
    return True


@bp.get("/schedules/<schedule_id>/runs")
@operation("A schedule's runs, newest first", scope=READ, query=s.ScheduleRunsQuery,
           responses={200: ("one page", s.ScheduleRunPageSchema)}, errors=(404,),
           description="Each fire: its job, scheduled time, status and, once it ran, start, end, duration and "
                       "error. Pass `next_cursor` back as `cursor`.")
def runs(schedule_id: str, who: Principal, q: dict[str, Any]) -> Response:
    visible_schedule(who, schedule_id)
    items, cursor = schedules().runs(schedule_id, q.get("cursor"), q["limit"])
    rows = [{"job_id": r.get("job_id"), "scheduled_at": r.get("scheduled_ms"), "trigger": r.get("trigger"),
             "status": r.get("status"), "started_at": r.get("started_ms"), "finished_at": r.get("finished_ms"),
             "duration_ms": r.get("duration_ms"), "error": r.get("error")} for r in items]
    return reply(s.ScheduleRunPageSchema, {"runs": rows, "next_cursor": cursor})


__all__ = ["bp", "schedule_dict", "sees_schedule", "visible_schedule"]
