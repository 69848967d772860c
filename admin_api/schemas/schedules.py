"""Schemas of cron and interval schedules and their run history."""
from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from jobsvc import validation as v
from jobsvc.scheduling import cron as _cron
from jobsvc.scheduling.schedules import OVERLAP_POLICIES, SCHEDULE_ID

from .common import (
    BackoffOutSchema,
    Base,
    Bool,
    FullMatch,
    JobFunction,
    Mapping,
    NamespaceName,
    Payload,
    QueryBool,
    QueueName,
    RegistryBackoffSchema,
    Strict,
    Time,
    Timestamp,
    core_check,
    exactly_one,
    in_range,
    length,
    max_length,
    some_change,
)

MISFIRE_POLICIES = list(_cron.MISFIRE_POLICIES)
SCHEDULE_STATUSES = ["idle", "running", "disabled"]
RUN_TRIGGERS = ["schedule", "catchup", "manual"]
CronExpr = lambda **kw: fields.String(validate=[length(v.CRON_EXPR), core_check(_cron.croniter_expr)],  # noqa: E731
                                      **kw)
TimezoneName = lambda **kw: fields.String(validate=[length(v.ZONE_NAME), core_check(_cron.zone)], **kw)  # noqa: E731


class _ScheduleFields(Base):
    """What a schedule runs and when (shared by create and patch; patch takes every field as optional)."""

    function = JobFunction(metadata={"description": "import path (`app.tasks.f`) or registry function (`ns/name`, "
                                                    "whose defaults apply)"})
    cron = CronExpr(metadata={"description": "5 fields (minute hour day month weekday), 6 with seconds first, "
                                             "or @hourly / @daily ...; give cron or interval"})
    interval = fields.Float(validate=in_range(v.INTERVAL),
                            metadata={"description": "seconds between fires; give cron or interval"})
    timezone = TimezoneName(metadata={"description": "IANA name the cron expression is read in (default UTC)"})
    handler = fields.String(validate=length(v.URL),
                            metadata={"description": "an https URL: each fire is an HTTP handler job (instead of "
                                                     "`function`)"})
    payload = fields.Raw(allow_none=True, metadata={"description": "JSON each fire's handler job carries"})
    args = Payload()
    kwargs = Mapping()
    queue = QueueName(allow_none=True, metadata={"description": "default: the function's, else `default`"})
    namespace = NamespaceName(allow_none=True, metadata={"description": "default: the registry function's, "
                                                                        "else `default`"})
    priority = Strict(allow_none=True, validate=in_range(v.PRIORITY))
    max_attempts = Strict(allow_none=True, validate=in_range(v.MAX_ATTEMPTS))
    backoff = fields.Nested(RegistryBackoffSchema, allow_none=True)
    timeout = Strict(allow_none=True, validate=in_range(v.TIMEOUT), metadata={"description": "seconds"})
    result_ttl = Strict(allow_none=True, validate=in_range(v.TTL),
                        metadata={"description": "seconds; -1 forever"})
    failure_ttl = Strict(allow_none=True, validate=in_range(v.TTL),
                         metadata={"description": "seconds; -1 forever"})
    enabled = Bool(metadata={"description": "default true"})
    start_at = Time(allow_none=True, metadata={"description": "no fire before this time"})
    end_at = Time(allow_none=True, metadata={"description": "no fire after this time"})
    misfire = fields.String(validate=validate.OneOf(MISFIRE_POLICIES),
                            metadata={"description": "fires missed while the scheduler was down: skip, run_once "
                                                     "(one job for all, the default) or run_all"})
    misfire_grace = fields.Float(validate=in_range(v.MISFIRE_GRACE),
                                 metadata={"description": "seconds late before a fire counts as missed (default 30)"})
    max_catchup = Strict(validate=in_range(v.MAX_CATCHUP), metadata={"description": "run_all: at most this "
                                                                                           "many missed fires"})
    overlap = fields.String(validate=validate.OneOf(list(OVERLAP_POLICIES)),
                            metadata={"description": "skip: no fire while the previous job is still queued or "
                                                     "running (default allow)"})
    description = fields.String(allow_none=True, validate=max_length(v.DESCRIPTION))

    @validates_schema
    def _timing(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("cron") is not None and data.get("interval") is not None:
            raise ValidationError("give cron or interval, not both", "interval")
        if data.get("start_at") and data.get("end_at") and data["end_at"] < data["start_at"]:
            raise ValidationError("end_at must not be before start_at", "end_at")


class ScheduleCreateSchema(_ScheduleFields):
    id = fields.String(validate=FullMatch(SCHEDULE_ID.pattern),
                       metadata={"description": "1-64 of A-Z a-z 0-9 _ . - (generated when not given)"})
    function = JobFunction(metadata={"description": "import path (`app.tasks.f`) or registry function (`ns/name`, "
                                                    "whose defaults apply); give this or `handler`"})

    @validates_schema
    def _one_target(self, data: dict[str, Any], **kwargs: Any) -> None:
        exactly_one(data, "function", "handler", "give a function or a handler URL (one of them)")

    @validates_schema
    def _one_timing(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("cron") is None and data.get("interval") is None:
            raise ValidationError("give cron or interval", "cron")


class SchedulePatchSchema(_ScheduleFields):
    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        some_change(data)


class ScheduleListQuery(Base):
    cursor = fields.String(validate=length(v.SCHEDULE_CURSOR), metadata={"description": "`next_cursor` of the "
                                                                                     "previous page"})
    limit = fields.Integer(load_default=50, validate=in_range(v.PAGE_LIMIT))
    namespace = NamespaceName()
    enabled = QueryBool()


class LastRunSchema(Base):
    job_id = fields.String(required=True)
    scheduled_at = Timestamp(allow_none=True, required=True)
    status = fields.String(allow_none=True, required=True, metadata={"description": "the job's state"})


class ScheduleSchema(Base):
    id = fields.String(required=True)
    function = fields.String(allow_none=True, required=True)
    handler = fields.String(allow_none=True, required=True)
    payload = fields.Raw(allow_none=True, required=True)
    cron = fields.String(allow_none=True, required=True)
    interval = fields.Float(allow_none=True, required=True, metadata={"description": "seconds"})
    timezone = fields.String(required=True)
    args = fields.List(fields.Raw(), required=True)
    kwargs = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
    queue = fields.String(allow_none=True, required=True)
    namespace = fields.String(allow_none=True, required=True)
    priority = fields.Integer(allow_none=True, required=True)
    max_attempts = fields.Integer(allow_none=True, required=True)
    backoff = fields.Nested(BackoffOutSchema, allow_none=True, required=True)
    timeout = fields.Integer(allow_none=True, required=True)
    result_ttl = fields.Integer(allow_none=True, required=True)
    failure_ttl = fields.Integer(allow_none=True, required=True)
    enabled = Bool(required=True)
    start_at = Timestamp(allow_none=True, required=True)
    end_at = Timestamp(allow_none=True, required=True)
    misfire = fields.String(required=True)
    misfire_grace = fields.Float(required=True)
    max_catchup = fields.Integer(required=True)
    overlap = fields.String(required=True)
    description = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(SCHEDULE_STATUSES),
                           metadata={"description": "idle, running (its last job is queued or running) or disabled"})
    version = fields.Integer(required=True, metadata={"description": "goes up on every change"})
    created_at = Timestamp(allow_none=True, required=True)
    updated_at = Timestamp(allow_none=True, required=True)
    next_run_at = Timestamp(allow_none=True, required=True, metadata={"description": "null when disabled or ended"})
    last_run = fields.Nested(LastRunSchema, allow_none=True, required=True)
    runs = fields.Integer(required=True, metadata={"description": "jobs fired"})
    completed = fields.Integer(required=True, metadata={"description": "runs that succeeded"})
    failed = fields.Integer(required=True, metadata={"description": "runs that failed"})
    skipped = fields.Integer(required=True, metadata={"description": "fires skipped (overlap, disabled function)"})
    missed = fields.Integer(required=True, metadata={"description": "fires dropped by the misfire policy"})
    avg_runtime_ms = fields.Float(allow_none=True, required=True, metadata={"description": "of finished runs"})


class SchedulePageSchema(Base):
    schedules = fields.List(fields.Nested(ScheduleSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class ScheduleExecutedSchema(Base):
    schedule_id = fields.String(required=True)
    job_id = fields.String(required=True, metadata={"description": "the job enqueued now"})


class ScheduleRunsQuery(Base):
    cursor = fields.String(validate=length(v.RUN_CURSOR))
    limit = fields.Integer(load_default=50, validate=in_range(v.PAGE_LIMIT))


class ScheduleRunSchema(Base):
    job_id = fields.String(allow_none=True, required=True, metadata={"description": "null for a skipped fire"})
    scheduled_at = Timestamp(allow_none=True, required=True)
    trigger = fields.String(allow_none=True, required=True, metadata={"description": "schedule, catchup or manual"})
    status = fields.String(allow_none=True, required=True, metadata={"description": "the job's state, or skipped"})
    started_at = Timestamp(allow_none=True, required=True)
    finished_at = Timestamp(allow_none=True, required=True)
    duration_ms = fields.Integer(allow_none=True, required=True)
    error = fields.String(allow_none=True, required=True)


class ScheduleRunPageSchema(Base):
    runs = fields.List(fields.Nested(ScheduleRunSchema), required=True, metadata={"description": "newest first"})
    next_cursor = fields.String(allow_none=True, required=True)
