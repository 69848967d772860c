"""Marshmallow schemas of every request and response. The OpenAPI document is generated from them
(admin_api.openapi), so what is validated and what is documented cannot drift apart.

Requests reject unknown fields (422). Times go out as ISO 8601 UTC strings with milliseconds
(`2026-01-02T03:04:05.678Z`) and come in as ISO 8601 (a time without a zone is UTC)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from jobsvc import apikeys, defaults
from jobsvc.backoff import KINDS as BACKOFF_KINDS
from jobsvc.job import IDEMPOTENCY_KEY_MAX, NAMESPACE_NAME, QUEUE_NAME
from jobsvc.serialization import IMPORT_PATH
from jobsvc.states import ALIASES, State

STATES = [s.value for s in State]
STATE_NAMES = STATES + sorted(ALIASES)
TRIGGERS = ["immediate", "delayed", "scheduled", "queue", "pull"]
CREATE_TRIGGERS = ["immediate", "delayed", "scheduled"]
RETRYABLE = [State.FAILED.value, State.QUARANTINED.value, State.CANCELLED.value]
PRUNABLE = [State.COMPLETED.value, State.FAILED.value, State.QUARANTINED.value, State.CANCELLED.value]
MAX_DELAY_S = 10 * 365 * 86400  # ten years: a longer delay is a mistake, and far-future times overflow
MAX_TTL_S = 10 * 365 * 86400
MAX_TIMEOUT_S = 7 * 86400
MAX_BATCH = 100
MAX_DEPTH = 32  # nesting of args / kwargs / meta: deeper JSON is refused (422), never a stack overflow
MAX_CURSOR = 2048


class FullMatch(validate.Regexp):
    """Regexp that must match the whole value (Python's `$` also matches before a final newline)."""

    def __call__(self, value: str) -> str:
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def _depth_ok(value: Any) -> None:
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > MAX_DEPTH:
            raise ValidationError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)


QueueName = lambda **kw: fields.String(validate=FullMatch(QUEUE_NAME.pattern), **kw)  # noqa: E731
NamespaceName = lambda **kw: fields.String(validate=FullMatch(NAMESPACE_NAME.pattern), **kw)  # noqa: E731
Payload = lambda **kw: fields.List(fields.Raw(), validate=_depth_ok, **kw)  # noqa: E731
Mapping = lambda **kw: fields.Dict(keys=fields.String(), values=fields.Raw(), validate=_depth_ok, **kw)  # noqa: E731
Strict = lambda **kw: fields.Integer(strict=True, **kw)  # noqa: E731


class Timestamp(fields.DateTime):
    """Epoch milliseconds (int) dumped as an ISO 8601 UTC string; None stays None."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return iso_ms(value)


def iso_ms(ms: int | float | None) -> str | None:
    if ms is None:
        return None
    try:
        dt = datetime.fromtimestamp(float(ms) / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def epoch_ms(dt: datetime) -> int:
    return int(round(dt.timestamp() * 1000))


Time = lambda **kw: fields.AwareDateTime(default_timezone=timezone.utc, **kw)  # noqa: E731


class Base(Schema):
    class Meta:
        unknown = RAISE


# -- errors and health --------------------------------------------------------------------------------


class ErrorBodySchema(Base):
    code = fields.String(required=True, metadata={"description": "machine-readable error code"})
    message = fields.String(required=True)
    details = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True,
                          metadata={"description": "e.g. `state` for 409, `fields` for 422"})


class ErrorSchema(Base):
    error = fields.Nested(ErrorBodySchema, required=True)


class HealthSchema(Base):
    status = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable"]))
    redis = fields.String(required=True, validate=validate.OneOf(["up", "down"]))
    error = fields.Nested(ErrorBodySchema)


# -- jobs ---------------------------------------------------------------------------------------------


class BackoffSchema(Base):
    type = fields.String(required=True, validate=validate.OneOf(BACKOFF_KINDS))
    base = fields.Float(validate=validate.Range(0, 86400), metadata={"description": "seconds"})
    cap = fields.Float(validate=validate.Range(0, 30 * 86400), metadata={"description": "seconds"})
    jitter = fields.Boolean(metadata={"description": "full jitter (default true)"})


class JobCreateSchema(Base):
    function = fields.String(required=True, validate=[validate.Length(max=255), FullMatch(IMPORT_PATH.pattern)],
                             metadata={"description": "import path, e.g. `app.tasks.send_email`"})
    args = Payload(load_default=list)
    kwargs = Mapping(load_default=dict)
    queue = QueueName(metadata={"description": "default `default`"})
    namespace = NamespaceName(metadata={"description": "default `default`"})
    priority = Strict(validate=validate.Range(defaults.PRIORITY_MIN, defaults.PRIORITY_MAX),
                      metadata={"description": "1 runs first; default 5"})
    max_attempts = Strict(validate=validate.Range(1, defaults.MAX_ATTEMPTS_LIMIT))
    backoff = fields.Nested(BackoffSchema)
    timeout = Strict(validate=validate.Range(-1, MAX_TIMEOUT_S),
                     metadata={"description": "seconds; -1 for none (0 is refused)"})
    delay = fields.Float(validate=validate.Range(0, MAX_DELAY_S), metadata={"description": "seconds from now"})
    run_at = Time(metadata={"description": "ISO 8601; a time in the past runs now"})
    idempotency_key = fields.String(validate=validate.Length(1, IDEMPOTENCY_KEY_MAX))
    result_ttl = Strict(validate=validate.Range(-1, MAX_TTL_S), metadata={"description": "seconds; -1 forever"})
    failure_ttl = Strict(validate=validate.Range(-1, MAX_TTL_S), metadata={"description": "seconds; -1 forever"})
    description = fields.String(validate=validate.Length(1, 1000))
    meta = Mapping()
    trigger = fields.String(validate=validate.OneOf(CREATE_TRIGGERS),
                            metadata={"description": "optional check: immediate (no delay or run_at), "
                                                     "delayed (delay), scheduled (run_at)"})

    @validates_schema
    def _one_time(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("delay") is not None and data.get("run_at") is not None:
            raise ValidationError("give delay or run_at, not both", "run_at")
        if data.get("timeout") == 0:
            raise ValidationError("timeout must be > 0 seconds, or -1 for none", "timeout")


class JobBatchSchema(Base):
    jobs = fields.List(fields.Nested(JobCreateSchema), required=True, validate=validate.Length(1, MAX_BATCH))


class JobPatchSchema(Base):
    args = Payload()
    kwargs = Mapping()
    priority = Strict(validate=validate.Range(defaults.PRIORITY_MIN, defaults.PRIORITY_MAX))
    run_at = Time(metadata={"description": "new run time; now or past queues the job"})
    delay = fields.Float(validate=validate.Range(0, MAX_DELAY_S), metadata={"description": "new run time, "
                                                                                         "seconds from now"})

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("nothing to change: give args, kwargs, priority, run_at or delay")
        if data.get("delay") is not None and data.get("run_at") is not None:
            raise ValidationError("give delay or run_at, not both", "run_at")


class JobListQuery(Base):
    queue = QueueName()
    state = fields.String(validate=validate.OneOf(STATE_NAMES))
    status = fields.String(validate=validate.OneOf(STATE_NAMES), metadata={"description": "alias of state"})
    function = fields.String(validate=validate.Length(1, 255))
    namespace = NamespaceName()
    trigger = fields.String(validate=validate.OneOf(TRIGGERS))
    trigger_type = fields.String(validate=validate.OneOf(TRIGGERS), metadata={"description": "alias of trigger"})
    created_after = Time()
    created_before = Time()
    cursor = fields.String(validate=validate.Length(1, MAX_CURSOR))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    include_result = fields.Boolean(load_default=False)

    @validates_schema
    def _aliases(self, data: dict[str, Any], **kwargs: Any) -> None:
        for name, alias in (("state", "status"), ("trigger", "trigger_type")):
            if data.get(name) is not None and data.get(alias) is not None and data[name] != data[alias]:
                raise ValidationError(f"{name} and {alias} differ", alias)


class JobGetQuery(Base):
    include_result = fields.Boolean(load_default=False)


class JobSchema(Base):
    id = fields.String(required=True)
    function = fields.String(required=True)
    queue = fields.String(required=True)
    namespace = fields.String(required=True)
    trigger = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(STATES))
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
    result = fields.Raw(allow_none=True, metadata={"description": "only with include_result=true"})


class JobPageSchema(Base):
    jobs = fields.List(fields.Nested(JobSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class JobBatchResultSchema(Base):
    jobs = fields.List(fields.Nested(JobSchema), required=True, metadata={"description": "in request order"})
    created = fields.List(fields.Boolean(), required=True,
                          metadata={"description": "per job: false when its idempotency key matched an existing job"})


class RunSchema(Base):
    attempt = fields.Integer(allow_none=True, required=True)
    outcome = fields.String(allow_none=True, required=True)
    worker = fields.String(allow_none=True, required=True)
    started_at = Timestamp(allow_none=True, required=True)
    ended_at = Timestamp(allow_none=True, required=True)
    exc_type = fields.String(allow_none=True, required=True)
    message = fields.String(allow_none=True, required=True)
    traceback = fields.String(allow_none=True, required=True)


class RunsSchema(Base):
    runs = fields.List(fields.Nested(RunSchema), required=True)


class StatsQuery(Base):
    by = fields.String(validate=validate.OneOf(["queue", "namespace", "function"]),
                       metadata={"description": "one grouping only (default: all three)"})


Counts = lambda **kw: fields.Dict(keys=fields.String(), values=fields.Integer(), **kw)  # noqa: E731
GroupCounts = lambda **kw: fields.Dict(keys=fields.String(), values=Counts(), **kw)  # noqa: E731


class StatsSchema(Base):
    total = Counts(required=True, metadata={"description": "jobs per state"})
    queue = GroupCounts(metadata={"description": "queue -> state -> jobs"})
    namespace = GroupCounts()
    function = GroupCounts()


# -- bulk ---------------------------------------------------------------------------------------------


class _BulkBase(Base):
    queue = QueueName()
    namespace = NamespaceName()
    function = fields.String(validate=validate.Length(1, 255))
    older_than = fields.Float(validate=validate.Range(0, MAX_DELAY_S),
                              metadata={"description": "seconds: jobs that ended (or, never ended, were created) "
                                                       "longer ago than this"})
    newer_than = fields.Float(validate=validate.Range(0, MAX_DELAY_S),
                              metadata={"description": "seconds: jobs that ended more recently than this"})
    error_contains = fields.String(validate=validate.Length(1, 1000),
                                   metadata={"description": "substring of the error (case-insensitive)"})
    dry_run = fields.Boolean(load_default=False,
                             metadata={"description": "count and sample, change nothing (no X-Confirm needed)"})


class BulkRetrySchema(_BulkBase):
    state = fields.String(validate=validate.OneOf(RETRYABLE), metadata={"description": "default: failed"})


class BulkQuarantineSchema(_BulkBase):
    pass


class BulkPruneSchema(_BulkBase):
    state = fields.String(validate=validate.OneOf(PRUNABLE), metadata={"description": "default: every ended state"})


class SweepSchema(Base):
    dry_run = fields.Boolean(load_default=False)


class TtlSweepSchema(SweepSchema):
    limit = fields.Integer(strict=True, validate=validate.Range(1, 10_000_000),
                           metadata={"description": "expired entries handled in this call; `more` says if any remain"})


class BulkResultSchema(Base):
    operation = fields.String(required=True)
    dry_run = fields.Boolean(required=True)
    matched = fields.Integer(required=True)
    changed = fields.Integer(required=True)
    sample = fields.List(fields.String(), required=True, metadata={"description": "some matched job ids"})
    skipped = fields.Integer(required=True, metadata={"description": "gone or moved on meanwhile: safe to repeat"})
    details = Counts(required=True, metadata={"description": "per-operation counts"})
    more = fields.Boolean(required=True, metadata={"description": "stopped at a limit: call again"})


class IntegrityReportSchema(Base):
    fixed = fields.Boolean(required=True)
    clean = fields.Boolean(required=True)
    total = fields.Integer(required=True, metadata={"description": "problems found"})
    counts = Counts(required=True, metadata={"description": "problems per category"})
    samples = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True,
                          metadata={"description": "some job ids per category"})
    scanned = fields.Integer(required=True, metadata={"description": "job hashes looked at"})
    busy_groups = fields.List(fields.String(), required=True,
                              metadata={"description": "gauges that moved while counted: run again"})


class IntegrityResultSchema(Base):
    operation = fields.String(required=True)
    dry_run = fields.Boolean(required=True)
    report = fields.Nested(IntegrityReportSchema, required=True)


# -- queues and workers ---------------------------------------------------------------------------------


class QueueSchema(Base):
    name = fields.String(required=True)
    paused = fields.Boolean(required=True)
    counts = Counts(required=True, metadata={"description": "jobs per state"})


class QueueListSchema(Base):
    queues = fields.List(fields.Nested(QueueSchema), required=True)


class CurrentJobSchema(Base):
    id = fields.String(required=True)
    queue = fields.String(allow_none=True, required=True)
    lease_expires_at = Timestamp(allow_none=True, required=True)


class WorkerSchema(Base):
    name = fields.String(required=True)
    hostname = fields.String(allow_none=True, required=True)
    pid = fields.Integer(allow_none=True, required=True)
    queues = fields.List(fields.String(), required=True)
    state = fields.String(allow_none=True, required=True)
    birth_at = Timestamp(allow_none=True, required=True)
    last_heartbeat_at = Timestamp(allow_none=True, required=True)
    current_jobs = fields.List(fields.Nested(CurrentJobSchema), required=True)
    processed = fields.Integer(required=True, metadata={"description": "jobs completed"})
    failed = fields.Integer(required=True, metadata={"description": "jobs failed"})


class WorkerListSchema(Base):
    workers = fields.List(fields.Nested(WorkerSchema), required=True)


# -- keys and audit -------------------------------------------------------------------------------------


class KeyCreateSchema(Base):
    name = fields.String(required=True, validate=validate.Length(1, apikeys.NAME_MAX))
    scopes = fields.List(fields.String(validate=validate.OneOf(apikeys.SCOPES)), required=True,
                         validate=validate.Length(1, len(apikeys.SCOPES)))
    namespaces = fields.List(NamespaceName(), validate=validate.Length(1, apikeys.LIMIT_MAX),
                             metadata={"description": "limit the key to these namespaces"})
    queues = fields.List(QueueName(), validate=validate.Length(1, apikeys.LIMIT_MAX),
                         metadata={"description": "limit the key to these queues"})


class KeySchema(Base):
    id = fields.String(required=True)
    name = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)
    namespaces = fields.List(fields.String(), allow_none=True, required=True)
    queues = fields.List(fields.String(), allow_none=True, required=True)
    created_at = Timestamp(allow_none=True, required=True)


class KeyCreatedSchema(KeySchema):
    secret = fields.String(required=True, metadata={"description": "shown once; only its hash is stored"})


class KeyListSchema(Base):
    keys = fields.List(fields.Nested(KeySchema), required=True)


class AuditQuery(Base):
    cursor = fields.String(validate=validate.Length(1, 64))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))


class AuditEntrySchema(Base):
    id = fields.String(required=True)
    time = Timestamp(required=True)
    key_id = fields.String(required=True)
    action = fields.String(required=True)
    status = fields.Integer(allow_none=True, required=True)
    params = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)


class AuditPageSchema(Base):
    entries = fields.List(fields.Nested(AuditEntrySchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
