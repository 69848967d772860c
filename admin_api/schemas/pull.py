"""Schemas of pull workers over HTTP (admin_api/blueprints/pull.py): claim, heartbeat, ack."""
from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from jobsvc import defaults
from jobsvc import validation as v

from .common import Base, Bool, FullMatch, QueueName, Strict, Timestamp, depth_ok, in_range, length, max_length

PULL_STATUSES = ["completed", "failed"]
ACK_STATES = ["completed", "scheduled", "failed"]
WORKER_NAME = r"^[A-Za-z0-9_.:@\-]{1,128}$"
ERROR_TEXT_MAX = int(v.ACK_ERROR_TEXT.high)
Token = lambda **kw: fields.String(validate=length(v.PULL_TOKEN), **kw)  # noqa: E731
VisibilityTimeout = lambda: fields.Float(  # noqa: E731
    load_default=defaults.PULL_VISIBILITY_TIMEOUT, validate=in_range(v.VISIBILITY_TIMEOUT),
    metadata={"description": f"seconds the lease lasts without a heartbeat (default "
                             f"{defaults.PULL_VISIBILITY_TIMEOUT})"})


class ClaimSchema(Base):
    queue = QueueName(required=True)
    count = Strict(load_default=1, validate=in_range(v.PULL_COUNT),
                   metadata={"description": "most jobs to lease (default 1)"})
    visibility_timeout = VisibilityTimeout()
    worker = fields.String(validate=FullMatch(WORKER_NAME),
                           metadata={"description": "name shown as the jobs' worker (default `pull:<key id>`)"})


class ClaimedJobSchema(Base):
    id = fields.String(required=True)
    queue = fields.String(required=True)
    namespace = fields.String(required=True)
    token = fields.String(required=True, metadata={"description": "the lease token: send it with heartbeat and ack"})
    attempt = fields.Integer(required=True, metadata={"description": "1 on the first run"})
    lease_expires_at = Timestamp(required=True)
    lease_expires_ms = fields.Integer(required=True, metadata={"description": "epoch ms, Redis time"})
    function = fields.String(required=True)
    args = fields.List(fields.Raw(), required=True)
    kwargs = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
    payload = fields.Raw(allow_none=True, required=True, metadata={"description": "JSON payload of an HTTP job"})
    meta = fields.Dict(keys=fields.String(), values=fields.Raw(), metadata={"description": "only when the job has "
                                                                                           "meta"})
    timeout = fields.Integer(allow_none=True, required=True, metadata={"description": "seconds; null for none"})


class ClaimResultSchema(Base):
    jobs = fields.List(fields.Nested(ClaimedJobSchema), required=True,
                       metadata={"description": "up to `count`; empty when the queue has nothing ready"})


class HeartbeatSchema(Base):
    token = Token(required=True)
    visibility_timeout = fields.Float(validate=in_range(v.VISIBILITY_TIMEOUT),
                                     metadata={"description": "seconds from now the lease ends (default "
                                                              f"{defaults.PULL_VISIBILITY_TIMEOUT}; for an HTTP "
                                                              "handler job that answered 202: its callback_timeout)"})


class LeaseSchema(Base):
    id = fields.String(required=True)
    lease_expires_at = Timestamp(required=True)
    lease_expires_ms = fields.Integer(required=True)


class AckErrorSchema(Base):
    type = fields.String(validate=length(v.TYPE_NAME), metadata={"description": "default `Error`"})
    message = fields.String(required=True, validate=max_length(v.ACK_ERROR_TEXT))
    traceback = fields.String(validate=max_length(v.ACK_ERROR_TEXT))


class AckError(fields.Field[str | dict[str, Any]]):
    """An ack's error: a message, or {type?, message, traceback?}."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | dict[str, Any]:
        if isinstance(value, str):
            if len(value) > ERROR_TEXT_MAX:
                raise ValidationError(f"longer than {ERROR_TEXT_MAX} characters")
            return value
        if isinstance(value, dict):
            return AckErrorSchema().load(value)
        raise ValidationError("a message string, or an object {type?, message, traceback?}")


_ERROR_TEXT = {"type": "string", "maxLength": ERROR_TEXT_MAX}
ACK_ERROR_JSON = {"oneOf": [_ERROR_TEXT, {
    "type": "object", "additionalProperties": False, "required": ["message"],
    "properties": {"type": {"type": "string", "minLength": 1, "maxLength": 255}, "message": _ERROR_TEXT,
                   "traceback": _ERROR_TEXT}}]}


class AckSchema(Base):
    token = Token(required=True)
    status = fields.String(required=True, validate=validate.OneOf(PULL_STATUSES))
    result = fields.Raw(allow_none=True, validate=depth_ok,
                        metadata={"description": "any JSON value; only with status completed"})
    error = AckError(metadata={"description": "required with status failed: a message, or "
                                              "{type?, message, traceback?}", **ACK_ERROR_JSON})
    retryable = Bool(load_default=True,
                               metadata={"description": "failed: false fails the job at once, true retries it "
                                                        "after its backoff while attempts are left (default)"})

    @validates_schema
    def _outcome(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("status") == "failed" and data.get("error") is None:
            raise ValidationError("a failed ack needs an error", "error")
        if data.get("status") == "failed" and data.get("result") is not None:
            raise ValidationError("a failed ack takes an error, not a result", "result")
        if data.get("status") == "completed" and data.get("error") is not None:
            raise ValidationError("a completed ack takes a result, not an error", "error")


class AckResultSchema(Base):
    id = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(ACK_STATES),
                          metadata={"description": "scheduled: a retry, due at run_at"})
    run_at = Timestamp(allow_none=True, required=True)


class AckItemSchema(AckSchema):
    id = fields.String(required=True, validate=length(v.JOB_ID), metadata={"description": "the job"})


class AckBatchSchema(Base):
    acks = fields.List(fields.Nested(AckItemSchema), required=True,
                       validate=length(v.ACK_BATCH))


class AckItemErrorSchema(Base):
    code = fields.String(required=True, metadata={"description": "lease_lost or not_found"})
    message = fields.String(required=True)
    details = fields.Dict(required=True, metadata={"description": "`state`: where the job is now"})


class AckBatchItemSchema(Base):
    id = fields.String(required=True)
    state = fields.String(allow_none=True, required=True, validate=validate.OneOf(ACK_STATES),
                          metadata={"description": "null when this ack was refused (see error)"})
    run_at = Timestamp(allow_none=True, required=True)
    error = fields.Nested(AckItemErrorSchema, allow_none=True, required=True,
                          metadata={"description": "the 409 / 404 this ack alone would have had; it changed "
                                                   "nothing, the others still applied"})


class AckBatchResultSchema(Base):
    results = fields.List(fields.Nested(AckBatchItemSchema), required=True, metadata={"description": "in order"})
