"""/api/v1/jobs/{id}/runs (a page of the run history), /disable, /enable (hold a pending job, not a state
change) and /trigger (run a scheduled job now). The work is jobsvc's: jobsvc/engine/run_history.py and
Client.disable / enable / trigger."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from jobsvc.admin.apikeys import READ, WRITE
from jobsvc.engine.job import JobInfo
from jobsvc.engine.run_history import RunPage, runs_page
from jobsvc.errors import WrongState

from .. import schemas as s
from ..api import audit_counts, client, conn, operation, reply
from ..auth import Principal
from ..schemas.job_runs import JobRunPageSchema, JobRunsQuery, TriggeredSchema
from .jobs import job_dict, visible_job

bp = Blueprint("job_runs", __name__, url_prefix="/api/v1")

JOB = ("the job", s.JobSchema)
PENDING = "queued, scheduled or deferred"


def run_row(run: dict[str, Any]) -> dict[str, Any]:
    return {"id": run["id"], "job_id": run["job_id"], "attempt": run.get("attempt"), "outcome": run.get("outcome"),
            "worker": run.get("worker") or None, "scheduled_at": run.get("scheduled_ms"),
            "started_at": run.get("started_ms"), "ended_at": run.get("ended_ms"),
            "duration_ms": run.get("duration_ms"), "exc_type": run.get("exc_type") or None,
            "message": run.get("message") or None, "traceback": run.get("traceback") or None,
            "http_status": run.get("http_status")}


@bp.get("/jobs/<job_id>/runs")
@operation("A job's runs, a page at a time", scope=READ, query=JobRunsQuery,
           responses={200: ("runs, oldest first; pass next_cursor back as cursor", JobRunPageSchema)},
           errors=(404,),
           description="Every attempt that ended (failed, lost, handed back, terminated, completed), each with a "
                       "stable id `<job id>.<n>`, its duration and, for a job a schedule fired, `scheduled_at`. "
                       "A page costs what it shows.")
def runs(job_id: str, who: Principal, q: dict[str, Any]) -> Response:
    page = runs_of(visible_job(who, job_id), q.get("cursor"), q["limit"])
    return reply(JobRunPageSchema, {"runs": [run_row(r) for r in page.runs], "next_cursor": page.next_cursor})


def runs_of(info: JobInfo, cursor: str | None = None, limit: int | None = None) -> RunPage:
    """A page of a job's runs (also the dashboard's); on a Redis Cluster in its queue's slot (its `origin`)."""
    return runs_page(conn(), client().keys, info.id, cursor, limit, queue=info.queue if client().cluster else None)


def _hold(job_id: str, who: Principal, act: Any) -> Response:
    visible_job(who, job_id)
    act(job_id)
    audit_counts(changed=1)
    return reply(s.JobSchema, job_dict(client().get(job_id)))


@bp.post("/jobs/<job_id>/disable")
@operation("Hold a pending job: no worker claims it until it is enabled", scope=WRITE, action="jobs.disable",
           responses={200: JOB}, errors=(404, 409),
           description=f"For a {PENDING} job (409 with its state otherwise). It keeps its state, run time and "
                       "dependencies, and shows `disabled: true`; once due it waits in its queue. Idempotent.")
def disable(job_id: str, who: Principal) -> Response:
    return _hold(job_id, who, client().disable)


@bp.post("/jobs/<job_id>/enable")
@operation("Let workers claim a job that was disabled", scope=WRITE, action="jobs.enable",
           responses={200: JOB}, errors=(404, 409),
           description=f"For a {PENDING} job (409 with its state otherwise). Idempotent.")
def enable(job_id: str, who: Principal) -> Response:
    return _hold(job_id, who, client().enable)


@bp.post("/jobs/<job_id>/trigger")
@operation("Run a scheduled job now", scope=WRITE, action="jobs.trigger",
           responses={200: ("the run it starts", TriggeredSchema)}, errors=(404, 409),
           description="scheduled -> queued at once, its other settings unchanged. 409 for any other state: a "
                       "queued job runs as soon as a worker is free, a deferred one waits for its dependencies "
                       "(trigger would skip them), and a disabled one must be enabled first. `run_id` is the id "
                       "the run will have in GET /jobs/{id}/runs.")
def trigger(job_id: str, who: Principal) -> Response:
    info = visible_job(who, job_id)
    if info.disabled:
        raise WrongState(f"job {job_id} is disabled: enable it first", info.state.value)
    run_id, at_ms = client().trigger(job_id)
    audit_counts(changed=1, run_id=run_id)
    return reply(TriggeredSchema, {"job_id": job_id, "run_id": run_id, "triggered_at": at_ms})


__all__ = ["bp", "run_row"]
