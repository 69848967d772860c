"""/api/v1/jobs: create (one or a batch), list, get, patch, delete, cancel, terminate, retry, runs, stats."""
from __future__ import annotations

import json
import time
from typing import Any

import redis
from flask import Blueprint, Response

from jobsvc.admin import lookup
from jobsvc.admin.apikeys import ADMIN, READ, WRITE
from jobsvc.admin.listing import JobFilter, list_jobs
from jobsvc.allowlist import ORIGIN_API, ORIGIN_FIELD
from jobsvc.engine.backoff import Backoff
from jobsvc.engine.enqueueing import Enqueued, enqueue
from jobsvc.engine.functions import Registry
from jobsvc.engine.job import DEFAULT_NAMESPACE, JobInfo, JobSpec, handler_name
from jobsvc.engine.keys import Keys
from jobsvc.engine.states import State
from jobsvc.engine.stats import BY, Counts, read_counts
from jobsvc.errors import JobsvcError, NotFound, ValidationError, WrongState

from .. import schemas as s
from ..api import ApiError, audit_counts, client, config, conn, jsonable, no_content, operation, reply
from ..auth import Principal, forbidden, require_code_choice
from ..schemas.jobs import ALL, JobCancelSchema, JobWhereQuery
from .queues import known_queue

bp = Blueprint("jobs", __name__, url_prefix="/api/v1")

JOB = ("the job", s.JobSchema)
UNREADABLE = "<result not readable by the API process>"


# -- rendering -------------------------------------------------------------------------------------------


def job_dict(info: JobInfo, result: Any = ...) -> dict[str, Any]:
    out = {
        "id": info.id, "function": info.func_name, "queue": info.queue, "namespace": info.namespace,
        "trigger": info.trigger, "state": info.state.value, "args": jsonable(list(info.args)),
        "kwargs": jsonable(dict(info.kwargs)), "priority": info.priority, "progress": info.progress,
        "progress_message": info.progress_message, "attempts": info.attempts, "max_attempts": info.max_attempts,
        "timeout": info.timeout, "created_at": info.created_ms, "enqueued_at": info.enqueued_ms,
        "run_at": info.due_ms if info.state == State.SCHEDULED else None, "started_at": info.started_ms,
        "ended_at": info.ended_ms, "error": info.error, "worker": info.worker,
        "lease_expires_at": info.lease_expires_ms if info.state == State.RUNNING else None,
        "handler": info.raw.get("js_handler") or None, "payload": _payload(info.raw.get("js_payload")),
        "callback_url": info.raw.get("js_callback") or None, "notification": info.raw.get("js_notify") or None,
        "disabled": info.disabled,
    }
    if result is not ...:
        out["result"] = jsonable(result)
    return out


def _payload(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _results(ids: list[str]) -> dict[str, Any]:
    """Latest successful return value of each job (None when it has none), in one round trip."""
    return lookup.latest_results(conn(), config().key_prefix, ids, UNREADABLE)


def visible_job(who: Principal, job_id: str, queue: str | None = None) -> JobInfo:
    """The job, or 404 when there is none, the key may not see it (its existence is not revealed) or it is not
    in `queue` (when given: clients that address a job by queue and id)."""
    info = client().get(job_id)
    if not who.sees(info.queue, info.namespace) or queue not in (None, info.queue):
        raise NotFound(f"no job {job_id}" + (f" in queue {queue}" if queue is not None else ""))
    return info


# -- create ------------------------------------------------------------------------------------------------


def _spec(who: Principal, body: dict[str, Any]) -> tuple[JobSpec, dict[str, str]]:
    """The job to create and its extra hash fields. `function` is an import path (`app.tasks.f`) or a
    registry function (`ns/name`): then its defaults fill the options not given (a disabled one is a 409).
    Or `handler`, an https URL: an HTTP handler job."""
    if "/" in (body.get("function") or ""):
        spec, extra = _registry_spec(who, body)
    else:
        spec, extra = _direct_spec(who, body), {}
    # Workers run this job's Python function only from the allowed modules (jobsvc.allowlist).
    extra[ORIGIN_FIELD] = ORIGIN_API
    if body.get("trigger") == "pull":  # a job for pull workers (POST /jobs/claim): it is ready now
        if spec.trigger != "immediate":
            raise ValidationError(f"trigger 'pull' runs now: give no delay or run_at (given: {spec.trigger!r})")
        extra["js_trigger"] = "pull"
    elif body.get("trigger") and body["trigger"] != spec.trigger:
        raise ValidationError(f"trigger {body['trigger']!r} does not match the timing given (that is {spec.trigger!r})")
    return spec, extra


def _registry_spec(who: Principal, body: dict[str, Any]) -> tuple[JobSpec, dict[str, str]]:
    """A registry function's job: its queue and namespace apply; the key's limits are checked on the result."""
    options = _options(body)
    try:
        fjob = Registry(client()).job(body["function"], *body["args"], kwargs=dict(body["kwargs"]),
                                      queue=body.get("queue"), namespace=body.get("namespace"), **options)
    except NotFound:
        raise ValidationError(f"function {body['function']} is not registered") from None
    if not who.sees(fjob.spec.queue, fjob.spec.namespace):
        raise forbidden(f"function {body['function']} makes jobs outside this key's namespaces or queues")
    return fjob.spec, dict(fjob.fields)


def _direct_spec(who: Principal, body: dict[str, Any]) -> JobSpec:
    """A job of an import path or a handler URL, in the queue and namespace given (or the key's only ones)."""
    queue = who.narrow("queue", body.get("queue")) or "default"
    namespace = who.narrow("namespace", body.get("namespace")) or DEFAULT_NAMESPACE
    options = _options(body)
    if body.get("handler") is not None:
        return JobSpec(func=None, handler=body["handler"], queue=queue, namespace=namespace, **options)
    require_code_choice(who, body["function"], "a job")
    return JobSpec(func=body["function"], args=tuple(body["args"]), kwargs=dict(body["kwargs"]), queue=queue,
                   namespace=namespace, **options)


def _options(body: dict[str, Any]) -> dict[str, Any]:
    """The job options a create body gives, as JobSpec takes them."""
    options: dict[str, Any] = {k: body[k] for k in ("priority", "max_attempts", "timeout", "idempotency_key",
                                                    "result_ttl", "failure_ttl", "description", "meta", "payload",
                                                    "callback_url", "callback_timeout")
                               if body.get(k) is not None}
    if body.get("backoff"):
        b = body["backoff"]
        default = Backoff(config().backoff, config().backoff_base, config().backoff_cap)
        options["backoff"] = Backoff(kind=b["type"], base=b.get("base", default.base), cap=b.get("cap", default.cap),
                                     jitter=b.get("jitter", True))
    if body.get("delay") is not None:
        options["delay"] = body["delay"]
    if body.get("run_at") is not None:
        options["at"] = body["run_at"]
    return options


def _enqueue(specs: list[JobSpec], extras: list[dict[str, str]]) -> list[Enqueued]:
    """Enqueue a batch, with each job's extra hash fields (`js_fn` of a registry function's job)."""
    return enqueue(conn(), config(), specs, extras)


def _idempotency_precheck(who: Principal, specs: list[JobSpec]) -> None:
    """A limited key reusing an idempotency key of a job it may not see gets a 409 before anything is enqueued.
    Keys are scoped to a namespace, but a key limited to queues shares its namespace with jobs it may not see;
    the check after enqueueing stays as the backstop of a race."""
    keyed = [(sp.queue, sp.namespace, sp.idempotency_key) for sp in specs if sp.idempotency_key]
    if not who.limited or not keyed:
        return
    prefix = config().key_prefix
    for place in lookup.places(conn(), prefix, lookup.idempotent_ids(conn(), prefix, keyed)):
        if place is not None and not who.sees(*place):
            raise _idempotency_conflict()


def _idempotency_conflict() -> ApiError:
    return ApiError(409, "the idempotency key belongs to a job this key may not see", "idempotency_conflict")


def _created(who: Principal, ids: list[str], specs: list[JobSpec],
             extras: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The answer rows of enqueued jobs: each job as stored, or `_gone` when its idempotency key outlived it."""
    rows = []
    infos = lookup.jobs(conn(), config().key_prefix, ids, config().max_attempts)
    for job_id, info, spec, extra in zip(ids, infos, specs, extras, strict=True):
        if info is None:
            rows.append(_gone(job_id, spec, extra))
            continue
        if not who.sees(info.queue, info.namespace):
            raise _idempotency_conflict()
        rows.append(job_dict(info))
    return rows


def _gone(job_id: str, spec: JobSpec, extra: dict[str, str]) -> dict[str, Any]:
    """The answer for an idempotency key whose job is gone (its TTL ended, or it was pruned): the key outlives
    it (idempotency_ttl), so the request was done already and nothing is created again. State `deleted`,
    the job's id, and the rest as this request asked for it (what the job was is no longer stored)."""
    name = handler_name(spec.handler) if spec.handler else (spec.func if isinstance(spec.func, str) else "")
    return {"id": job_id, "state": "deleted", "function": name, "queue": spec.queue, "namespace": spec.namespace,
            "trigger": extra.get("js_trigger") or spec.trigger, "args": jsonable(list(spec.args)),
            "kwargs": jsonable(dict(spec.kwargs)), "priority": spec.priority, "progress": None,
            "progress_message": None, "attempts": 0, "max_attempts": spec.max_attempts or config().max_attempts,
            "timeout": spec.timeout, "created_at": None, "enqueued_at": None, "run_at": None, "started_at": None,
            "ended_at": None, "error": None, "worker": None, "lease_expires_at": None, "handler": spec.handler,
            "payload": jsonable(spec.payload), "callback_url": spec.callback_url, "notification": None}


@bp.post("/jobs")
@operation("Create a job", scope=WRITE, body=s.JobCreateSchema, action="jobs.create",
           responses={201: ("created", s.JobSchema), 200: ("the existing job of this idempotency key", s.JobSchema)},
           errors=(409,), description="Runs now, after `delay` seconds, or at `run_at`. Returns 200 with the "
                                      "existing job when `idempotency_key` matched one (for `JOBSVC_IDEMPOTENCY_TTL` "
                                      "after the first request, even once that job is gone: then its `state` is "
                                      "`deleted`). A `function` of the form "
                                      "`ns/name` is a registry function: its defaults apply to options not given, "
                                      "and a disabled one is refused (409, `details.state` `disabled`).")
def create_job(who: Principal, body: dict[str, Any]) -> Response:
    spec, extra = _spec(who, body)
    _idempotency_precheck(who, [spec])
    enq = _enqueue([spec], [extra])[0]
    row = _created(who, [enq.id], [spec], [extra])[0]
    audit_counts(created=int(enq.created), job_id=enq.id)
    return reply(s.JobSchema, row, 201 if enq.created else 200)


@bp.post("/jobs/batch")
@operation("Create up to 100 jobs", scope=WRITE, body=s.JobBatchSchema, action="jobs.create_batch",
           responses={201: ("created (some may be existing jobs of their idempotency keys)", s.JobBatchResultSchema)},
           errors=(409,), description="All or nothing: one invalid job and none is created (422 names its index).")
def create_batch(who: Principal, body: dict[str, Any]) -> Response:
    specs, extras, problems = [], [], {}
    for i, item in enumerate(body["jobs"]):
        try:
            spec, extra = _spec(who, item)
            specs.append(spec)
            extras.append(extra)
        except ValidationError as exc:
            problems[str(i)] = [str(exc)]
    if problems:
        raise ApiError(422, "request failed validation; no job was created", "validation_error",
                       {"fields": {"jobs": problems}})
    _idempotency_precheck(who, specs)
    enqueued = _enqueue(specs, extras)
    rows = _created(who, [e.id for e in enqueued], specs, extras)
    audit_counts(created=sum(e.created for e in enqueued), existing=sum(not e.created for e in enqueued))
    return reply(s.JobBatchResultSchema, {"jobs": rows, "created": [e.created for e in enqueued]}, 201)


# -- read --------------------------------------------------------------------------------------------------


@bp.get("/jobs")
@operation("List jobs", scope=READ, query=s.JobListQuery, responses={200: ("one page", s.JobPageSchema)},
           errors=(404,),
           description="Filters combine. Pass `next_cursor` back as `cursor` for the next page; a page may be "
                       "short (sparse filters look at a bounded number of jobs per call) while a cursor remains. "
                       "A `queue` that does not exist is a 404.")
def list_(who: Principal, q: dict[str, Any]) -> Response:
    state = q.get("state") or q.get("status")
    queue = who.narrow("queue", q.get("queue"))
    if q.get("queue") is not None and not known_queue(q["queue"], who):
        raise NotFound(f"no queue {q['queue']}")  # a typo is not an empty queue
    flt = JobFilter(queue=queue, state=None if state == ALL else state,
                    function=q.get("function"), namespace=who.narrow("namespace", q.get("namespace")),
                    trigger=q.get("trigger") or q.get("trigger_type"),
                    created_after_ms=s.epoch_ms(q["created_after"]) if q.get("created_after") else None,
                    created_before_ms=s.epoch_ms(q["created_before"]) if q.get("created_before") else None)
    jobs, cursor = list_page(flt, q.get("cursor"), q["limit"])
    if q["include_result"]:
        results = _results([j.id for j in jobs])
        rows = [job_dict(j, results[j.id]) for j in jobs]
    else:
        rows = [job_dict(j) for j in jobs]
    out: dict[str, Any] = {"jobs": rows, "next_cursor": cursor}
    if q["include_counts"]:
        out["counts"] = _counts(who, flt.queue, flt.namespace, flt.function).total()
    return reply(s.JobPageSchema, out)


def _counts(who: Principal, queue: str | None, namespace: str | None, function: str | None) -> Counts:
    """The counts of jobsvc/engine/stats.py (O(groups), from the gauges: never a scan of jobs) the key may see,
    of one queue, namespace and/or function."""
    counts = read_counts(conn(), Keys(config().key_prefix), queue).seen_by(who.sees, who.namespaces is None)
    return counts.narrowed(queue, namespace, _group_functions(function))


def _group_functions(ref: str | None) -> set[str] | None:
    """The function names a filter means in the gauges' groups, which name a job's import path (or handler):
    a registry function `ns/name` means its own."""
    if ref is None:
        return None
    names = {ref}
    if "/" in ref:
        try:
            fn = Registry(client()).resolve(ref)
        except (NotFound, ValidationError):
            return names
        names.add(fn.path if fn.path is not None else handler_name(fn.handler or ""))
    return names


def list_page(flt: JobFilter, cursor: str | None, limit: int) -> tuple[list[JobInfo], str | None]:
    """list_jobs, with a cursor that decodes but holds positions of the wrong shape turned into a 422
    (a cursor is client input: it must never become a 500). Also the dashboard's."""
    try:
        return list_jobs(conn(), config(), flt, cursor, limit)
    except (TypeError, ValueError, IndexError, KeyError, AttributeError, redis.ResponseError) as exc:
        if cursor is None or isinstance(exc, JobsvcError):
            raise
        raise ValidationError("malformed cursor") from None


@bp.get("/jobs/stats")
@bp.get("/stats")  # where people look first; the same answer
@operation("Counts per state by queue, namespace and function", scope=READ, query=s.StatsQuery,
           responses={200: ("counts", s.StatsSchema)})
def stats(who: Principal, q: dict[str, Any]) -> Response:
    # The counts every surface shows (jobsvc/engine/stats.py: jobs enqueued with RQ's own API included), narrowed to
    # what the key may see and to the filters.
    counts = _counts(who, q.get("queue"), q.get("namespace"), q.get("function"))
    out: dict[str, Any] = {"total": counts.total()}
    if q.get("group_by"):
        out["groups"] = [{**values, "counts": row} for values, row in counts.grouped(q["group_by"])]
        return reply(s.StatsSchema, out)
    for by in [q["by"]] if q.get("by") else list(BY):
        out[by] = counts.by(by)
    return reply(s.StatsSchema, out)


@bp.get("/jobs/<job_id>")
@operation("Get a job", scope=READ, query=s.JobGetQuery, responses={200: JOB}, errors=(404,))
def get(job_id: str, who: Principal, q: dict[str, Any]) -> Response:
    info = visible_job(who, job_id, q.get("queue"))
    if q["include_result"]:
        return reply(s.JobSchema, job_dict(info, _results([job_id])[job_id]))
    return reply(s.JobSchema, job_dict(info))


# -- change ------------------------------------------------------------------------------------------------


@bp.patch("/jobs/<job_id>")
@operation("Change a queued or scheduled job", scope=WRITE, body=s.JobPatchSchema, action="jobs.patch",
           responses={200: JOB}, errors=(404, 409),
           description="Arguments, priority, run time. 409 (with the current state) once the job has started. "
                       "Arguments of a job enqueued from Python (not through the API) change only with an admin key.")
def patch(job_id: str, who: Principal, body: dict[str, Any]) -> Response:
    info = visible_job(who, job_id)
    if (body.get("args") is not None or body.get("kwargs") is not None) and not who.grants(ADMIN) \
            and info.raw.get(ORIGIN_FIELD) != ORIGIN_API:
        # A job enqueued from Python runs any function, unchecked by the allow-list: a lesser key choosing its
        # arguments would be choosing what that trusted code does.
        raise forbidden("this job was enqueued from Python: only an admin key may change its arguments")
    run_at_ms = None
    if body.get("run_at") is not None:
        run_at_ms = max(0, s.epoch_ms(body["run_at"]))
    elif body.get("delay") is not None:
        run_at_ms = int(time.time() * 1000 + body["delay"] * 1000)
    info = client().patch(job_id, args=body.get("args"), kwargs=body.get("kwargs"), priority=body.get("priority"),
                          run_at_ms=run_at_ms)
    audit_counts(changed=1)
    return reply(s.JobSchema, job_dict(info))


@bp.delete("/jobs/<job_id>")
@operation("Delete a job (not while it runs)", scope=WRITE, action="jobs.delete",
           responses={204: ("deleted", None)}, errors=(404, 409))
def delete(job_id: str, who: Principal) -> Response:
    visible_job(who, job_id)
    client().delete(job_id)
    audit_counts(deleted=1)
    return no_content()


def _transition(job_id: str, who: Principal, act: Any, queue: str | None = None) -> Response:
    visible_job(who, job_id, queue)
    act(job_id)
    audit_counts(changed=1)
    return reply(s.JobSchema, job_dict(client().get(job_id)))


@bp.post("/jobs/<job_id>/cancel")
@operation("Cancel a job", scope=WRITE, action="jobs.cancel", body=JobCancelSchema, body_required=False,
           responses={200: JOB}, errors=(404, 409),
           description="A queued or scheduled job. A running one with `{\"terminate\": true}` (as "
                       "/jobs/{id}/terminate); without it, a running job is a 409 that says so.")
def cancel(job_id: str, who: Principal, body: dict[str, Any]) -> Response:
    return _transition(job_id, who, lambda jid: cancel_job(jid, body["terminate"]))


def cancel_job(job_id: str, terminate: bool) -> None:
    """Cancel a waiting job; a running one is terminated when asked (terminate.lua), else a 409 naming the call."""
    try:
        client().cancel(job_id)
    except WrongState as exc:
        if exc.state != State.RUNNING.value:
            raise
        if not terminate:
            raise WrongState(f"job {job_id} is running: cancel it with {{\"terminate\": true}} "
                             f"or POST /api/v1/jobs/{job_id}/terminate", exc.state) from None
        client().terminate(job_id)


@bp.post("/jobs/<job_id>/terminate")
@operation("Stop a running job (it ends cancelled)", scope=WRITE, action="jobs.terminate", responses={200: JOB},
           errors=(404, 409), description="The lease is revoked at once; the worker stops the job within a second.")
def terminate(job_id: str, who: Principal) -> Response:
    return _transition(job_id, who, client().terminate)


@bp.post("/jobs/<job_id>/retry")
@operation("Run a failed, quarantined or cancelled job again", scope=WRITE, action="jobs.retry",
           query=JobWhereQuery, responses={200: JOB}, errors=(404, 409),
           description="Attempts start over; the run history is kept.")
def retry(job_id: str, who: Principal, q: dict[str, Any]) -> Response:
    return _transition(job_id, who, client().requeue, q.get("queue"))


__all__ = ["bp", "cancel_job", "job_dict", "list_page", "visible_job"]
