"""Every error the API returns, in one shape and mapped to its status in this one place:

    {"error": {"code": "...", "message": "...", "details": {...}}}

jobsvc errors: ValidationError 422, NotFound 404, WrongState and its kinds 409 (wrong_state and lease_lost:
details.state is the job's current state; already_exists, conflict, disabled, function_missing), ScriptError
(a script's reply its caller does not expect: a bug) 500, NotOnCluster (what does not run on a Redis Cluster yet,
docs/cluster.md) 501, any other JobsvcError 400; `code` is the exception's
`code`, `details` its `details()`. HTTP: malformed JSON 400, no or wrong key 401,
missing scope 403, 405, body over MAX_CONTENT_LENGTH 413, schema errors (unknown fields too) 422,
X-Confirm missing 428, Redis unreachable or refusing for a while (REDIS_UNAVAILABLE) 503 with Retry-After.
Anything else, other Redis errors included (a WRONGTYPE from a script is a bug or damaged data, not an
outage), is a 500 `internal_error` with the same JSON shape and a logged traceback, never an HTML page."""
from __future__ import annotations

import logging
from typing import Any

import marshmallow
import redis
from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from jobsvc.errors import JobsvcError, NotFound, NotOnCluster, ScriptError, ValidationError, WrongState

log = logging.getLogger("jobsvc.api")

MAX_BODY = 256 * 1024
RETRY_AFTER = "5"

# Redis errors that mean "Redis cannot serve right now; retrying later can work": 503 with Retry-After.
# ConnectionError covers BusyLoadingError (loading its data after a restart) and a refused AUTH; a replica
# promoted mid-failover answers READONLY / MASTERDOWN / TRYAGAIN; a full Redis with noeviction answers OOM.
# Every other RedisError (WRONGTYPE and other script errors) is a 500: retrying will not help.
REDIS_UNAVAILABLE: tuple[type[redis.RedisError], ...] = (
    redis.ConnectionError, redis.TimeoutError, redis.exceptions.ReadOnlyError, redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError, redis.exceptions.OutOfMemoryError,
)

# (jobsvc error class, status): most specific first; a subclass takes its base's status (LeaseLost, Conflict,
# AlreadyExists, Disabled, FunctionMissing are WrongStates: 409).
JOBSVC_STATUS: tuple[tuple[type[JobsvcError], int], ...] = (
    (WrongState, 409),
    (NotFound, 404),
    (ValidationError, 422),
    (ScriptError, 500),
    (NotOnCluster, 501),  # not built for a Redis Cluster yet (docs/cluster.md): the message says what
    (JobsvcError, 400),
)

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "wrong_state", 413: "payload_too_large", 415: "unsupported_media_type",
              422: "validation_error", 428: "confirmation_required", 500: "internal_error",
              501: "not_on_cluster", 503: "redis_unavailable"}


class ApiError(Exception):
    """An error raised by the API layer itself (auth, confirm, malformed body)."""

    def __init__(self, status: int, message: str, code: str | None = None, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code or HTTP_CODES.get(status, "error")
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    resp = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def redis_down_response(exc: Exception) -> Response:
    return error_response(503, "redis_unavailable", "Redis is unavailable; try again shortly",
                          {"reason": type(exc).__name__}, {"Retry-After": RETRY_AFTER})


def error_object(exc: JobsvcError) -> dict[str, Any]:
    """The `error` object a jobsvc error becomes, for answers that carry one per item (batch ack)."""
    return {"code": exc.code, "message": str(exc), "details": exc.details()}


def status_of(exc: BaseException) -> int:
    """The status an exception becomes (used by the audit log to record the outcome)."""
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, HTTPException):
        return exc.code or 500
    if isinstance(exc, marshmallow.ValidationError):
        return 422
    if isinstance(exc, REDIS_UNAVAILABLE):
        return 503
    for cls, status in JOBSVC_STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def own_methods(fallback: Any = ()) -> list[str]:
    """The methods of the route this request's path belongs to, for OPTIONS and a 405's Allow header.

    Werkzeug's own answer (MapAdapter.allowed_methods, a 405's valid_methods) unions every rule whose pattern
    the path fits, so /api/v1/jobs/claim also offered the GET / PATCH / DELETE of /api/v1/jobs/<job_id>
    ("claim" fits <job_id>). The path's own route is the one routing picks when any method is allowed (every
    route answers OPTIONS, and static segments win over converters); its methods are those of every rule on
    that same pattern (/jobs/<job_id> has three views: GET, PATCH, DELETE)."""
    adapter = current_app.create_url_adapter(request)
    # Flask makes an adapter for every request; None is only for no request without SERVER_NAME.
    assert adapter is not None
    try:
        rule, _ = adapter.match(method="OPTIONS", return_rule=True)
    except HTTPException:
        return sorted(fallback or ())
    methods: set[str] = set()
    for other in current_app.url_map.iter_rules():
        if other.rule == rule.rule and other.host == rule.host:
            methods |= other.methods or set()
    return sorted(methods)


def to_response(exc: BaseException) -> Response:
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        headers = {}
        if status == 405:
            headers["Allow"] = ", ".join(own_methods(getattr(exc, "valid_methods", None)))
        message = {413: f"request body is over {MAX_BODY // 1024} KB"}.get(status, exc.description or exc.name)
        return error_response(status, HTTP_CODES.get(status, "http_error"), message, {}, headers)
    if isinstance(exc, marshmallow.ValidationError):
        return error_response(422, "validation_error", "request failed validation", {"fields": exc.messages})
    if isinstance(exc, REDIS_UNAVAILABLE):
        if not isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
            log.warning("Redis refused the request for now: %s", exc)  # reachable but not serving: say why
        return redis_down_response(exc)
    if isinstance(exc, JobsvcError) and status_of(exc) != 500:
        body = error_object(exc)
        return error_response(status_of(exc), body["code"], body["message"], body["details"])
    log.exception("unhandled error in the admin API", exc_info=exc)  # noqa: LOG004 - an error handler: exc is the error
    return error_response(500, "internal_error", "internal error", {})


def register(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.register_error_handler(Exception, to_response)
    app.register_error_handler(HTTPException, to_response)
