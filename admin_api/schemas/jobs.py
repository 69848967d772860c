"""Schemas of jobs: create (one or a batch), patch, list, read, run history, stats."""
from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from jobsvc import validation as v
from jobsvc.engine.states import ALIASES, State
from jobsvc.validation import IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_MAX, check_idempotency_key

from .common import (
    BackoffSchema,
    Base,
    Bool,
    Counts,
    GroupCounts,
    JobFunction,
    Mapping,
    NamespaceName,
    Payload,
    QueryBool,
    QueueName,
    Strict,
    Time,
    Timestamp,
    core_check,
    exactly_one,
    in_range,
    length,
    some_change,
)

STATES = [s.value for s in State]
STATE_NAMES = STATES + sorted(ALIASES)
ALL = "all"  # a listing's state filter that filters nothing (BullMQ's clients send it)
GROUP_FIELDS = ("queue", "namespace", "function")
TRIGGERS = ["immediate", "delayed", "scheduled", "queue", "pull"]
CREATE_TRIGGERS = ["immediate", "delayed", "scheduled", "pull"]


class JobCreateSchema(Base):
    function = JobFunction(metadata={"description": "import path, e.g. `app.tasks.send_email`, or a registry "
                                                    "function `namespace/name` (its defaults apply); give this "
                                                    "or `handler`"})
    handler = fields.String(validate=length(v.URL),
                            metadata={"description": "an https URL a worker POSTs {job_id, attempt, payload} to, "
                                                     "signed (docs/http.md); instead of `function`"})
    payload = fields.Raw(allow_none=True, metadata={"description": "JSON given to a handler or a pull worker"})
    callback_url = fields.String(validate=length(v.URL),
                                 metadata={"description": "https URL the job's outcome is POSTed to when it ends"})
    callback_timeout = Strict(validate=in_range(v.CALLBACK_TIMEOUT),
                              metadata={"description": "seconds a handler that answered 202 has to post its "
                                                       "result to /jobs/{id}/callback; default 3600"})
    args = Payload(load_default=list)
    kwargs = Mapping(load_default=dict)
    queue = QueueName(metadata={"description": "default `default`"})
    namespace = NamespaceName(metadata={"description": "default `default`"})
    priority = Strict(validate=in_range(v.PRIORITY),
                      metadata={"description": "1 runs first; default 5"})
    max_attempts = Strict(validate=in_range(v.MAX_ATTEMPTS))
    backoff = fields.Nested(BackoffSchema)
    timeout = Strict(validate=in_range(v.JOB_TIMEOUT),
                     metadata={"description": "seconds; -1 for none (0 is refused)"})
    delay = fields.Float(validate=in_range(v.DELAY), metadata={"description": "seconds from now"})
    delay_seconds = fields.Float(validate=in_range(v.DELAY), metadata={"description": "alias of delay"})
    run_at = Time(metadata={"description": "ISO 8601; a time in the past runs now"})
    idempotency_key = fields.String(validate=core_check(check_idempotency_key),
                                    metadata={"description": f"1-{IDEMPOTENCY_KEY_MAX} printable ASCII characters, no "
                                                             "leading or trailing space (sent as an HTTP header)",
                                              "pattern": f"^{IDEMPOTENCY_KEY.pattern}$", "minLength": 1,
                                              "maxLength": IDEMPOTENCY_KEY_MAX})
    result_ttl = Strict(validate=in_range(v.TTL), metadata={"description": "seconds; -1 forever"})
    failure_ttl = Strict(validate=in_range(v.TTL), metadata={"description": "seconds; -1 forever"})
    description = fields.String(validate=length(v.DESCRIPTION))
    meta = Mapping()
    trigger = fields.String(validate=validate.OneOf(CREATE_TRIGGERS),
                            metadata={"description": "optional check: immediate (no delay or run_at), "
                                                     "delayed (delay), scheduled (run_at); pull marks a job "
                                                     "for pull workers (runs now; GET /jobs?trigger=pull)"})

    @validates_schema
    def _one_time(self, data: dict[str, Any], **kwargs: Any) -> None:
        exactly_one(data, "function", "handler", "give a function or a handler URL (one of them)")
        if data.get("delay") is not None and data.get("delay_seconds") not in (None, data["delay"]):
            raise ValidationError("delay and delay_seconds differ", "delay_seconds")
        if data.get("handler") is not None and (data.get("args") or data.get("kwargs")):
            raise ValidationError("a handler job takes a JSON payload, not args or kwargs", "args")
        if (data.get("delay") is not None or data.get("delay_seconds") is not None) and data.get("run_at") is not None:
            raise ValidationError("give delay or run_at, not both", "run_at")
        if data.get("timeout") == 0:
            raise ValidationError("timeout must be > 0 seconds, or -1 for none", "timeout")

    @post_load
    def _one_name(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("delay_seconds") is not None:
            data["delay"] = data["delay_seconds"]
        data.pop("delay_seconds", None)
        return data


class JobBatchSchema(Base):
    jobs = fields.List(fields.Nested(JobCreateSchema), required=True, validate=length(v.JOB_BATCH))


class JobPatchSchema(Base):
    args = Payload()
    kwargs = Mapping()
    priority = Strict(validate=in_range(v.PRIORITY))
    run_at = Time(metadata={"description": "new run time; now or past queues the job"})
    delay = fields.Float(validate=in_range(v.DELAY), metadata={"description": "new run time, "
                                                                                         "seconds from now"})

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        some_change(data, "nothing to change: give args, kwargs, priority, run_at or delay")
        if data.get("delay") is not None and data.get("run_at") is not None:
            raise ValidationError("give delay or run_at, not both", "run_at")


class JobListQuery(Base):
    queue = QueueName(metadata={"description": "a queue that does not exist is a 404"})
    state = fields.String(validate=validate.OneOf([*STATE_NAMES, ALL]), metadata={"description": "`all`: any"})
    status = fields.String(validate=validate.OneOf([*STATE_NAMES, ALL]), metadata={"description": "alias of state"})
    function = fields.String(validate=length(v.FUNCTION_REF),
                             metadata={"description": "import path, or a registry function `ns/name`"})
    namespace = NamespaceName()
    trigger = fields.String(validate=validate.OneOf(TRIGGERS))
    trigger_type = fields.String(validate=validate.OneOf(TRIGGERS), metadata={"description": "alias of trigger"})
    created_after = Time()
    created_before = Time()
    cursor = fields.String(validate=length(v.JOB_CURSOR))
    limit = fields.Integer(load_default=50, validate=in_range(v.PAGE_LIMIT))
    include_result = QueryBool(load_default=False)
    include_counts = QueryBool(load_default=False,
                               metadata={"description": "add `counts`: jobs per state matching the queue, namespace "
                                                        "and function filters (all pages, from the gauges)"})

    @validates_schema
    def _aliases(self, data: dict[str, Any], **kwargs: Any) -> None:
        for name, alias in (("state", "status"), ("trigger", "trigger_type")):
            if data.get(name) is not None and data.get(alias) is not None and data[name] != data[alias]:
                raise ValidationError(f"{name} and {alias} differ", alias)


class JobWhereQuery(Base):
    queue = QueueName(metadata={"description": "optional check: the job's queue (else 404)"})


class JobGetQuery(JobWhereQuery):
    include_result = QueryBool(load_default=False)


class JobCancelSchema(Base):
    terminate = Bool(load_default=False, metadata={"description": "also stop a running job (as /terminate does); "
                                                                  "without it a running job is a 409"})


class JobSchema(Base):
    id = fields.String(required=True)
    function = fields.String(required=True)
    queue = fields.String(required=True)
    namespace = fields.String(required=True)
    trigger = fields.String(required=True)
    # `deleted`: only in the answer to a create whose idempotency key outlived its job (POST /jobs).
    state = fields.String(required=True, validate=validate.OneOf([*STATES, "deleted"]))
    args = fields.List(fields.Raw(), required=True)
    kwargs = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
    priority = fields.Integer(required=True)
    progress = fields.Integer(allow_none=True, required=True, metadata={"description": "0-100, reported by the job"})
    progress_message = fields.String(allow_none=True, required=True)
    attempts = fields.Integer(required=True)
    max_attempts = fields.Integer(required=True)
    timeout = fields.Integer(allow_none=True, required=True)
    created_at = Timestamp(allow_none=True, required=True)
    enqueued_at = Timestamp(allow_none=True, required=True)
    run_at = Timestamp(allow_none=True, required=True, metadata={"description": "due time of a scheduled job"})
    started_at = Timestamp(allow_none=True, required=True)
    ended_at = Timestamp(allow_none=True, required=True)
    error = fields.String(allow_none=True, required=True, metadata={"description": "why the last attempt failed"})
    worker = fields.String(allow_none=True, required=True)
    lease_expires_at = Timestamp(allow_none=True, required=True)
    handler = fields.String(allow_none=True, required=True, metadata={"description": "URL of an HTTP handler job"})
    payload = fields.Raw(allow_none=True, required=True, metadata={"description": "the job's JSON payload, if any"})
    callback_url = fields.String(allow_none=True, required=True)
    notification = fields.String(allow_none=True, required=True,
                                 metadata={"description": "outcome notification to callback_url: "
                                                          "delivered or given up, and why"})
    result = fields.Raw(allow_none=True, metadata={"description": "only with include_result=true"})
    disabled = Bool(metadata={"description": "held by POST /jobs/{id}/disable: no worker claims it until enabled"})


class JobPageSchema(Base):
    jobs = fields.List(fields.Nested(JobSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
    counts = Counts(metadata={"description": "only with include_counts=true: jobs per state"})


class JobBatchResultSchema(Base):
    jobs = fields.List(fields.Nested(JobSchema), required=True, metadata={"description": "in request order"})
    created = fields.List(Bool(), required=True,
                          metadata={"description": "per job: false when its idempotency key matched an existing job"})


class StatsQuery(Base):
    by = fields.String(validate=validate.OneOf(GROUP_FIELDS),
                       metadata={"description": "one grouping only (default: all three)"})
    group_by = fields.String(validate=length(v.Bounds(1, 40)),
                             metadata={"description": "comma-separated fields to group by at once, e.g. "
                                                      "`queue,function`: answers `groups`"})
    queue = QueueName()
    namespace = NamespaceName()
    function = fields.String(validate=length(v.FUNCTION_REF),
                             metadata={"description": "import path, or a registry function `ns/name`"})

    @validates_schema
    def _group_by(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("group_by") is None:
            return
        parts = data["group_by"].split(",")
        if any(p not in GROUP_FIELDS for p in parts) or len(set(parts)) != len(parts):
            raise ValidationError(f"comma-separated, each once: {', '.join(GROUP_FIELDS)}", "group_by")
        if data.get("by") is not None:
            raise ValidationError("give by or group_by, not both", "group_by")

    @post_load
    def _fields(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("group_by") is not None:
            data["group_by"] = data["group_by"].split(",")
        return data


class StatsGroupSchema(Base):
    queue = fields.String()
    namespace = fields.String()
    function = fields.String()
    counts = Counts(required=True, metadata={"description": "jobs per state"})


class StatsSchema(Base):
    total = Counts(required=True, metadata={"description": "jobs per state"})
    queue = GroupCounts(metadata={"description": "queue -> state -> jobs"})
    namespace = GroupCounts()
    function = GroupCounts()
    groups = fields.List(fields.Nested(StatsGroupSchema),
                         metadata={"description": "with group_by: one row per combination of its fields' values"})


class ScheduleCancelledSchema(Base):
    """POST /schedules/{id}/cancel: the running jobs of the schedule that were stopped (beside the job schemas:
    what it answers is jobs)."""

    schedule_id = fields.String(required=True)
    terminated = fields.List(fields.String(), required=True,
                             metadata={"description": "ids of the running jobs stopped (ended cancelled); empty "
                                                      "when none was running"})
