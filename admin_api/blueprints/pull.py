"""/api/v1/jobs/claim, /jobs/{id}/heartbeat, /ack, /callback: pull workers over HTTP (jobsvc.http.pull).

These are worker calls, not operator actions: they write no audit entry (no `action=`). The lease token is
the authority over a job (so /callback, for HTTP handler services that answered 202, needs no key); a key
limited to queues claims from its queues only, and a limited key acting on a job outside its limits gets 404,
as everywhere else."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from marshmallow import Schema

from jobsvc.admin import lookup
from jobsvc.admin.apikeys import WRITE
from jobsvc.engine.job import DEFAULT_NAMESPACE
from jobsvc.engine.leases import Lease
from jobsvc.errors import LeaseLost, NotFound
from jobsvc.http import pull

from .. import schemas as s
from ..api import config, conn, jsonable, operation
from ..auth import Principal, forbidden
from ..errors import error_object

bp = Blueprint("pull", __name__, url_prefix="/api/v1")

LEASE_ERRORS = (404, 409)
# Built once: these answer every job of a pull worker, and building a schema costs more than dumping with it.
CLAIM_OUT, LEASE_OUT, ACK_OUT = s.ClaimResultSchema(), s.LeaseSchema(), s.AckResultSchema()
ACK_BATCH_OUT = s.AckBatchResultSchema()
ACK_DOC = ("`completed` with an optional `result` (any JSON value), or `failed` with an `error` (a message or "
           "{type?, message, traceback?}) and `retryable`. 409 when the token no longer holds the lease (the "
           "lease expired and the job went back to its queue, or another worker finished it): nothing is "
           "written. `details.state` is the job's state now.")


def _reply(schema: Schema, data: dict[str, Any]) -> Response:
    return jsonify(schema.dump(data))


def _claimed(lease: Lease) -> dict[str, Any]:
    call = pull.job_call(lease)
    out = {"id": lease.job_id, "queue": lease.queue, "namespace": lease.fields.get("js_ns", DEFAULT_NAMESPACE),
           "token": lease.token, "attempt": lease.attempt, "lease_expires_at": lease.expires_ms,
           "lease_expires_ms": lease.expires_ms, "function": call.function, "args": jsonable(list(call.args)),
           "kwargs": jsonable(dict(call.kwargs)), "payload": jsonable(call.payload), "timeout": lease.timeout}
    if call.meta is not None:
        out["meta"] = jsonable(call.meta)
    return out


def _check_job(who: Principal, job_id: str) -> None:
    """A limited key may only touch jobs within its limits (404 otherwise, not revealing the job); unlimited
    keys skip the read: the token alone decides."""
    if not who.limited:
        return
    place = lookup.places(conn(), config().key_prefix, [job_id])[0]
    if place is None or not who.sees(*place):
        raise NotFound(f"no job {job_id}")


@bp.post("/jobs/claim")
@operation("Lease up to `count` jobs of a queue (pull workers)", scope=WRITE, body=s.ClaimSchema,
           responses={200: ("the jobs leased, each with its lease token", s.ClaimResultSchema)},
           description="Each job comes with a `token` and a lease of `visibility_timeout` seconds: extend it with "
                       "/heartbeat, finish the job with /ack. A lease that runs out returns the job to its queue "
                       "(the attempt counts; repeated lease losses quarantine it). An empty list when nothing is "
                       "ready. A key limited to namespaces cannot claim (a queue may hold other namespaces' jobs): "
                       "limit pull keys by queue.")
def claim(who: Principal, body: dict[str, Any]) -> Response:
    queue = who.narrow("queue", body["queue"]) or body["queue"]
    if who.namespaces is not None:
        raise forbidden("a key limited to namespaces cannot claim: a queue may hold jobs of any namespace; "
                        "use a key limited to queues")
    leases = pull.claim(conn(), config(), queue, body["count"], body["visibility_timeout"],
                        body.get("worker") or f"pull:{who.key_id}")
    return _reply(CLAIM_OUT, {"jobs": [_claimed(lease) for lease in leases]})


@bp.post("/jobs/<job_id>/heartbeat")
@operation("Extend a pull worker's lease", scope=WRITE, body=s.HeartbeatSchema,
           responses={200: ("the new expiry", s.LeaseSchema)}, errors=LEASE_ERRORS,
           description="The lease now ends `visibility_timeout` seconds from now. 409 when the token no longer "
                       "holds it (`details.state` is the job's state now): stop working on the job.")
def heartbeat(job_id: str, who: Principal, body: dict[str, Any]) -> Response:
    _check_job(who, job_id)
    expires = pull.heartbeat(conn(), config(), job_id, body["token"], body.get("visibility_timeout"))
    return _reply(LEASE_OUT, {"id": job_id, "lease_expires_at": expires, "lease_expires_ms": expires})


def _ack(job_id: str, who: Principal | None, body: dict[str, Any]) -> Response:
    if who is not None:
        _check_job(who, job_id)
    res = pull.ack(conn(), config(), job_id, body["token"], body["status"], result=body.get("result"),
                   error=body.get("error"), retryable=body["retryable"])
    return _reply(ACK_OUT, {"id": res.job_id, "state": res.state, "run_at": res.due_ms})


@bp.post("/jobs/<job_id>/ack")
@operation("Finish a pulled job", scope=WRITE, body=s.AckSchema, responses={200: ("where the job went",
                                                                                  s.AckResultSchema)},
           errors=LEASE_ERRORS, description=ACK_DOC)
def ack(job_id: str, who: Principal, body: dict[str, Any]) -> Response:
    return _ack(job_id, who, body)


@bp.post("/jobs/ack")
@operation("Finish many pulled jobs at once", scope=WRITE, body=s.AckBatchSchema,
           responses={200: ("one result per ack, in order", s.AckBatchResultSchema)},
           description="Up to 100 acks (each as the body of /jobs/{id}/ack, plus its job `id`) in one request "
                       "and two Redis round trips. Each stands alone: one whose token no longer holds its job "
                       "comes back with the `error` /ack would have answered (409 lease_lost or 404 not_found) "
                       "and changes nothing, while the others apply.")
def ack_batch(who: Principal, body: dict[str, Any]) -> Response:
    acks: list[pull.Ack] = []
    results: list[NotFound | None] = []  # the refusal of each ack that is not sent, else None
    for item in body["acks"]:
        try:
            _check_job(who, item["id"])
        except NotFound as exc:
            results.append(exc)
            continue
        acks.append(pull.Ack(item["id"], item["token"], item["status"], item.get("result"), item.get("error"),
                             item["retryable"]))
        results.append(None)
    done = iter(pull.ack_many(conn(), config(), acks))
    rows: list[dict[str, Any]] = []
    for item, refused in zip(body["acks"], results, strict=True):
        res = refused if refused is not None else next(done)
        if isinstance(res, pull.AckResult):
            rows.append({"id": res.job_id, "state": res.state, "run_at": res.due_ms, "error": None})
        else:
            rows.append({"id": item["id"], "state": None, "run_at": None, "error": error_object(res)})
    return _reply(ACK_BATCH_OUT, {"results": rows})


@bp.post("/jobs/<job_id>/callback")
@operation("Post the outcome of an HTTP handler job that answered 202", scope=None, body=s.AckSchema,
           responses={200: ("where the job went", s.AckResultSchema)}, errors=LEASE_ERRORS,
           description="The handler service posts here later, with the lease token the worker sent it in "
                       "`X-Jobsvc-Token`; the body and effect are those of /ack. No key is needed: the token, a "
                       "128-bit secret only the job's current lease holder has, is the authority. " + ACK_DOC)
def callback(job_id: str, who: Principal | None, body: dict[str, Any]) -> Response:
    try:
        return _ack(job_id, who, body)
    except (NotFound, LeaseLost):
        # Callers without a key learn nothing about jobs whose lease they do not hold: not whether the job
        # exists, nor its state (schedule job ids are predictable).
        raise LeaseLost(f"this token does not hold a lease on job {job_id}", None) from None


__all__ = ["bp"]
