"""Every error the API returns, in one shape and mapped to its status in this one place:

    {"error": {"code": "...", "message": "...", "details": {...}}}

jobsvc errors: ValidationError 422, NotFound 404, WrongState / LeaseLost 409 (details.state is the
job's current state), any other JobsvcError 400. HTTP: malformed JSON 400, no or wrong key 401,
missing scope 403, 405, body over MAX_CONTENT_LENGTH 413, schema errors (unknown fields too) 422,
X-Confirm missing 428, Redis unreachable 503 with Retry-After. Anything else is a 500 with the same
JSON shape (and a log line), never an HTML page."""
from __future__ import annotations

import logging
from typing import Any

import marshmallow
import redis
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from jobsvc.errors import JobsvcError, LeaseLost, NotFound, ValidationError, WrongState

log = logging.getLogger("jobsvc.api")

MAX_BODY = 256 * 1024
RETRY_AFTER = "5"

# (jobsvc error class, status): most specific first.
JOBSVC_STATUS: tuple[tuple[type[JobsvcError], int], ...] = (
    (LeaseLost, 409),
    (WrongState, 409),
    (NotFound, 404),
    (ValidationError, 422),
    (JobsvcError, 400),
)

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "wrong_state", 413: "payload_too_large", 415: "unsupported_media_type",
              422: "validation_error", 428: "confirmation_required", 500: "internal_error",
              503: "redis_unavailable"}


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
    return {"code": exc.code, "message": str(exc),
            "details": {"state": exc.state} if isinstance(exc, WrongState) else {}}


def status_of(exc: BaseException) -> int:
    """The status an exception becomes (used by the audit log to record the outcome)."""
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, HTTPException):
        return exc.code or 500
    if isinstance(exc, marshmallow.ValidationError):
        return 422
    if isinstance(exc, redis.RedisError):
        return 503
    for cls, status in JOBSVC_STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def to_response(exc: BaseException) -> Response:
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        headers = {}
        if status == 405:
            headers["Allow"] = ", ".join(sorted(getattr(exc, "valid_methods", None) or []))
        message = {413: f"request body is over {MAX_BODY // 1024} KB"}.get(status, exc.description or exc.name)
        return error_response(status, HTTP_CODES.get(status, "http_error"), message, {}, headers)
    if isinstance(exc, marshmallow.ValidationError):
        return error_response(422, "validation_error", "request failed validation", {"fields": exc.messages})
    if isinstance(exc, redis.RedisError):
        if not isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
            log.error("Redis error: %s", exc)
        return redis_down_response(exc)
    if isinstance(exc, JobsvcError):
        body = error_object(exc)
        return error_response(status_of(exc), body["code"], body["message"], body["details"])
    log.exception("unhandled error in the admin API", exc_info=exc)
    return error_response(500, "internal_error", "internal error", {})


def register(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.register_error_handler(Exception, to_response)
    app.register_error_handler(HTTPException, to_response)
