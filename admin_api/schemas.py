"""Marshmallow schemas of every request and response. The OpenAPI document is generated from them
(admin_api.openapi), so what is validated and what is documented cannot drift apart.

Requests reject unknown fields (422). Times go out as ISO 8601 UTC strings with milliseconds
(`2026-01-02T03:04:05.678Z`) and come in as ISO 8601 (a time without a zone is UTC)."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, NoReturn, cast, overload

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from jobsvc import apikeys, defaults
from jobsvc import cron as _cron
from jobsvc import states as _states
from jobsvc.backoff import KINDS as BACKOFF_KINDS
from jobsvc.errors import ValidationError as _CoreInvalid
from jobsvc.functions import FUNCTION_NAME
from jobsvc.schedules import OVERLAP_POLICIES, SCHEDULE_ID
from jobsvc.serialization import IMPORT_PATH
from jobsvc.states import ALIASES, State
from jobsvc.validation import IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_MAX, NAMESPACE_NAME, QUEUE_NAME, check_idempotency_key

STATES = [s.value for s in State]
STATE_NAMES = STATES + sorted(ALIASES)
TRIGGERS = ["immediate", "delayed", "scheduled", "queue", "pull"]
CREATE_TRIGGERS = ["immediate", "delayed", "scheduled", "pull"]
# The states bulk retry and prune accept: jobsvc.states derives them from its edge table.
RETRYABLE = [s.value for s in _states.RETRYABLE]
PRUNABLE = [s.value for s in _states.PRUNABLE]
MAX_DELAY_S = 10 * 365 * 86400  # ten years: a longer delay is a mistake, and far-future times overflow
MAX_TTL_S = 10 * 365 * 86400
MAX_TIMEOUT_S = 7 * 86400
MAX_BATCH = 100
MAX_DEPTH = 32  # nesting of args / kwargs / meta: deeper JSON is refused (422), never a stack overflow
MAX_CURSOR = 2048


class FullMatch(validate.Regexp):
    """Regexp that must match the whole value (Python's `$` also matches before a final newline)."""

    @overload
    def __call__(self, value: str) -> str: ...

    @overload
    def __call__(self, value: bytes) -> NoReturn: ...  # only text can match: bytes are refused

    def __call__(self, value: str | bytes) -> str:
        # Built from str patterns only (the FullMatch(...) calls below); Regexp types it str or bytes.
        regex = cast("re.Pattern[str]", self.regex)
        if not isinstance(value, str) or regex.fullmatch(value) is None:
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


class Bool(fields.Boolean):
    """A JSON boolean, true or false, and nothing else. marshmallow's Boolean also reads 0 / 1 / "yes" / "off"
    ...: `"dry_run": 0` was then a real run. Every boolean of the API is one of these (or a QueryBool)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid")


class QueryBool(fields.Boolean):
    """A boolean query parameter: exactly `true` or `false` (not 1, yes or True)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        raise self.make_error("invalid")


QueueName = lambda **kw: fields.String(validate=FullMatch(QUEUE_NAME.pattern), **kw)  # noqa: E731
NamespaceName = lambda **kw: fields.String(validate=FullMatch(NAMESPACE_NAME.pattern), **kw)  # noqa: E731
Payload = lambda **kw: fields.List(fields.Raw(), validate=_depth_ok, **kw)  # noqa: E731
Mapping = lambda **kw: fields.Dict(keys=fields.String(), values=fields.Raw(), validate=_depth_ok, **kw)  # noqa: E731
Strict = lambda **kw: fields.Integer(strict=True, **kw)  # noqa: E731

FUNCTION_REF = re.compile(r"^[A-Za-z0-9_.\-]{1,64}/[A-Za-z0-9_.\-]{1,128}$")


def _core_check(check: Any) -> Any:
    """A marshmallow validator from a jobsvc check that raises jobsvc's ValidationError (field-level 422)."""

    def validator(value: Any) -> None:
        try:
            check(value)
        except _CoreInvalid as exc:
            raise ValidationError(str(exc)) from None

    return validator


def _path_or_ref(value: str) -> None:
    if not isinstance(value, str) or not (IMPORT_PATH.fullmatch(value) or FUNCTION_REF.fullmatch(value)):
        raise ValidationError("an import path (`app.tasks.f`) or a registry function (`namespace/name`)")


JobFunction = lambda **kw: fields.String(validate=[validate.Length(max=255), _path_or_ref], **kw)  # noqa: E731


class Timestamp(fields.DateTime):
    """Epoch milliseconds (int) dumped as an ISO 8601 UTC string; None stays None."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return iso_ms(value)


def iso_ms(ms: float | None) -> str | None:
    if ms is None:
        return None
    try:
        dt = datetime.fromtimestamp(float(ms) / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def epoch_ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


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
    jitter = Bool(metadata={"description": "full jitter (default true)"})


class JobCreateSchema(Base):
    function = JobFunction(metadata={"description": "import path, e.g. `app.tasks.send_email`, or a registry "
                                                    "function `namespace/name` (its defaults apply); give this "
                                                    "or `handler`"})
    handler = fields.String(validate=validate.Length(1, defaults.URL_MAX),
                            metadata={"description": "an https URL a worker POSTs {job_id, attempt, payload} to, "
                                                     "signed (docs/http.md); instead of `function`"})
    payload = fields.Raw(allow_none=True, metadata={"description": "JSON given to a handler or a pull worker"})
    callback_url = fields.String(validate=validate.Length(1, defaults.URL_MAX),
                                 metadata={"description": "https URL the job's outcome is POSTed to when it ends"})
    callback_timeout = Strict(validate=validate.Range(1, defaults.CALLBACK_TIMEOUT_MAX),
                              metadata={"description": "seconds a handler that answered 202 has to post its "
                                                       "result to /jobs/{id}/callback; default 3600"})
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
    idempotency_key = fields.String(validate=_core_check(check_idempotency_key),
                                    metadata={"description": f"1-{IDEMPOTENCY_KEY_MAX} printable ASCII characters, no "
                                                             "leading or trailing space (sent as an HTTP header)",
                                              "pattern": f"^{IDEMPOTENCY_KEY.pattern}$", "minLength": 1,
                                              "maxLength": IDEMPOTENCY_KEY_MAX})
    result_ttl = Strict(validate=validate.Range(-1, MAX_TTL_S), metadata={"description": "seconds; -1 forever"})
    failure_ttl = Strict(validate=validate.Range(-1, MAX_TTL_S), metadata={"description": "seconds; -1 forever"})
    description = fields.String(validate=validate.Length(1, 1000))
    meta = Mapping()
    trigger = fields.String(validate=validate.OneOf(CREATE_TRIGGERS),
                            metadata={"description": "optional check: immediate (no delay or run_at), "
                                                     "delayed (delay), scheduled (run_at); pull marks a job "
                                                     "for pull workers (runs now; GET /jobs?trigger=pull)"})

    @validates_schema
    def _one_time(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("function") is None) == (data.get("handler") is None):
            raise ValidationError("give a function or a handler URL (one of them)", "function")
        if data.get("handler") is not None and (data.get("args") or data.get("kwargs")):
            raise ValidationError("a handler job takes a JSON payload, not args or kwargs", "args")
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
    include_result = QueryBool(load_default=False)

    @validates_schema
    def _aliases(self, data: dict[str, Any], **kwargs: Any) -> None:
        for name, alias in (("state", "status"), ("trigger", "trigger_type")):
            if data.get(name) is not None and data.get(alias) is not None and data[name] != data[alias]:
                raise ValidationError(f"{name} and {alias} differ", alias)


class JobGetQuery(Base):
    include_result = QueryBool(load_default=False)


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


class JobPageSchema(Base):
    jobs = fields.List(fields.Nested(JobSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class JobBatchResultSchema(Base):
    jobs = fields.List(fields.Nested(JobSchema), required=True, metadata={"description": "in request order"})
    created = fields.List(Bool(), required=True,
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
    http_status = fields.Integer(allow_none=True, metadata={"description": "HTTP handler jobs: the handler's "
                                                                           "answer (null: none, e.g. a timeout)"})
    duration_ms = fields.Float(allow_none=True, metadata={"description": "HTTP handler jobs: the call's duration"})


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
    dry_run = Bool(load_default=False,
                             metadata={"description": "count and sample, change nothing (no X-Confirm needed)"})


class BulkRetrySchema(_BulkBase):
    state = fields.String(validate=validate.OneOf(RETRYABLE), metadata={"description": "default: failed"})


class BulkQuarantineSchema(_BulkBase):
    pass


class BulkPruneSchema(_BulkBase):
    state = fields.String(validate=validate.OneOf(PRUNABLE), metadata={"description": "default: every ended state"})


class SweepSchema(Base):
    dry_run = Bool(load_default=False)


class TtlSweepSchema(SweepSchema):
    limit = fields.Integer(strict=True, validate=validate.Range(1, 10_000_000),
                           metadata={"description": "expired entries handled in this call; `more` says if any remain"})


class BulkResultSchema(Base):
    operation = fields.String(required=True)
    dry_run = Bool(required=True)
    matched = fields.Integer(required=True)
    changed = fields.Integer(required=True)
    sample = fields.List(fields.String(), required=True, metadata={"description": "some matched job ids"})
    skipped = fields.Integer(required=True, metadata={"description": "gone or moved on meanwhile: safe to repeat"})
    details = Counts(required=True, metadata={"description": "per-operation counts"})
    more = Bool(required=True, metadata={"description": "stopped at a limit: call again"})


class IntegrityReportSchema(Base):
    fixed = Bool(required=True)
    clean = Bool(required=True)
    total = fields.Integer(required=True, metadata={"description": "problems found"})
    counts = Counts(required=True, metadata={"description": "problems per category"})
    samples = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True,
                          metadata={"description": "some job ids per category"})
    scanned = fields.Integer(required=True, metadata={"description": "job hashes looked at"})
    busy_groups = fields.List(fields.String(), required=True,
                              metadata={"description": "gauges that moved while counted: run again"})


class IntegrityResultSchema(Base):
    operation = fields.String(required=True)
    dry_run = Bool(required=True)
    report = fields.Nested(IntegrityReportSchema, required=True)


# -- queues and workers ---------------------------------------------------------------------------------


class QueueSchema(Base):
    name = fields.String(required=True)
    paused = Bool(required=True)
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
    leases_truncated = Bool(required=True, metadata={
        "description": f"more leases exist than the {defaults.WORKERS_LEASES_MAX} soonest-expiring ones read: "
                       "current_jobs may leave some running jobs out"})


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


# -- schedules ------------------------------------------------------------------------------------------


MISFIRE_POLICIES = list(_cron.MISFIRE_POLICIES)
SCHEDULE_STATUSES = ["idle", "running", "disabled"]
RUN_TRIGGERS = ["schedule", "catchup", "manual"]
MAX_INTERVAL_S = 366 * 86400
MAX_CATCHUP = defaults.SCHEDULE_FIRES_PER_PASS * 10
CronExpr = lambda **kw: fields.String(validate=[validate.Length(1, 255), _core_check(_cron.croniter_expr)],  # noqa: E731
                                      **kw)
TimezoneName = lambda **kw: fields.String(validate=[validate.Length(1, 64), _core_check(_cron.zone)], **kw)  # noqa: E731


class RegistryBackoffSchema(Base):
    """A backoff default of a registry function or schedule (the shape of a job's `backoff`)."""

    type = fields.String(required=True, validate=validate.OneOf(BACKOFF_KINDS))
    base = fields.Float(validate=validate.Range(0, 86400), metadata={"description": "seconds"})
    cap = fields.Float(validate=validate.Range(0, 30 * 86400), metadata={"description": "seconds"})
    jitter = Bool(metadata={"description": "full jitter (default true)"})


class BackoffOutSchema(Base):
    type = fields.String(required=True)
    base = fields.Float(required=True)
    cap = fields.Float(required=True)
    jitter = Bool(required=True)


class _ScheduleFields(Base):
    """What a schedule runs and when (shared by create and patch; patch takes every field as optional)."""

    function = JobFunction(metadata={"description": "import path (`app.tasks.f`) or registry function (`ns/name`, "
                                                    "whose defaults apply)"})
    cron = CronExpr(metadata={"description": "5 fields (minute hour day month weekday), 6 with seconds first, "
                                             "or @hourly / @daily ...; give cron or interval"})
    interval = fields.Float(validate=validate.Range(defaults.SCHEDULE_MIN_INTERVAL, MAX_INTERVAL_S),
                            metadata={"description": "seconds between fires; give cron or interval"})
    timezone = TimezoneName(metadata={"description": "IANA name the cron expression is read in (default UTC)"})
    handler = fields.String(validate=validate.Length(1, defaults.URL_MAX),
                            metadata={"description": "an https URL: each fire is an HTTP handler job (instead of "
                                                     "`function`)"})
    payload = fields.Raw(allow_none=True, metadata={"description": "JSON each fire's handler job carries"})
    args = Payload()
    kwargs = Mapping()
    queue = QueueName(allow_none=True, metadata={"description": "default: the function's, else `default`"})
    namespace = NamespaceName(allow_none=True, metadata={"description": "default: the registry function's, "
                                                                        "else `default`"})
    priority = Strict(allow_none=True, validate=validate.Range(defaults.PRIORITY_MIN, defaults.PRIORITY_MAX))
    max_attempts = Strict(allow_none=True, validate=validate.Range(1, defaults.MAX_ATTEMPTS_LIMIT))
    backoff = fields.Nested(RegistryBackoffSchema, allow_none=True)
    timeout = Strict(allow_none=True, validate=validate.Range(1, MAX_TIMEOUT_S), metadata={"description": "seconds"})
    result_ttl = Strict(allow_none=True, validate=validate.Range(-1, MAX_TTL_S),
                        metadata={"description": "seconds; -1 forever"})
    failure_ttl = Strict(allow_none=True, validate=validate.Range(-1, MAX_TTL_S),
                         metadata={"description": "seconds; -1 forever"})
    enabled = Bool(metadata={"description": "default true"})
    start_at = Time(allow_none=True, metadata={"description": "no fire before this time"})
    end_at = Time(allow_none=True, metadata={"description": "no fire after this time"})
    misfire = fields.String(validate=validate.OneOf(MISFIRE_POLICIES),
                            metadata={"description": "fires missed while the scheduler was down: skip, run_once "
                                                     "(one job for all, the default) or run_all"})
    misfire_grace = fields.Float(validate=validate.Range(1, MAX_DELAY_S),
                                 metadata={"description": "seconds late before a fire counts as missed (default 30)"})
    max_catchup = Strict(validate=validate.Range(1, MAX_CATCHUP), metadata={"description": "run_all: at most this "
                                                                                           "many missed fires"})
    overlap = fields.String(validate=validate.OneOf(list(OVERLAP_POLICIES)),
                            metadata={"description": "skip: no fire while the previous job is still queued or "
                                                     "running (default allow)"})
    description = fields.String(allow_none=True, validate=validate.Length(max=1000))

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
        if (data.get("function") is None) == (data.get("handler") is None):
            raise ValidationError("give a function or a handler URL (one of them)", "function")

    @validates_schema
    def _one_timing(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("cron") is None and data.get("interval") is None:
            raise ValidationError("give cron or interval", "cron")


class SchedulePatchSchema(_ScheduleFields):
    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("nothing to change")


class ScheduleListQuery(Base):
    cursor = fields.String(validate=validate.Length(1, 64), metadata={"description": "`next_cursor` of the "
                                                                                     "previous page"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
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
    cursor = fields.String(validate=validate.Length(1, 256))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))


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


# -- functions registry -----------------------------------------------------------------------------------

FunctionName = lambda **kw: fields.String(validate=FullMatch(FUNCTION_NAME.pattern), **kw)  # noqa: E731


class _FunctionFields(Base):
    path = fields.String(validate=[validate.Length(max=255), FullMatch(IMPORT_PATH.pattern)],
                         metadata={"description": "import path of the callable deployed with the workers"})
    handler = fields.String(validate=validate.Length(1, defaults.URL_MAX),
                            metadata={"description": "an https URL: jobs of this function are HTTP handler jobs "
                                                     "(instead of `path`)"})
    queue = QueueName(allow_none=True)
    timeout = Strict(allow_none=True, validate=validate.Range(1, MAX_TIMEOUT_S), metadata={"description": "seconds"})
    max_attempts = Strict(allow_none=True, validate=validate.Range(1, defaults.MAX_ATTEMPTS_LIMIT))
    backoff = fields.Nested(RegistryBackoffSchema, allow_none=True)
    priority = Strict(allow_none=True, validate=validate.Range(defaults.PRIORITY_MIN, defaults.PRIORITY_MAX))
    enabled = Bool(metadata={"description": "a disabled function refuses new jobs (409); its queued "
                                                      "jobs wait"})
    description = fields.String(allow_none=True, validate=validate.Length(max=1000))


class FunctionSyncItemSchema(_FunctionFields):
    name = FunctionName(required=True)

    @validates_schema
    def _path_or_handler(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("path") is None) == (data.get("handler") is None):
            raise ValidationError("give an import path or a handler URL (one of them)", "path")


class FunctionCreateSchema(FunctionSyncItemSchema):
    namespace = NamespaceName(load_default=None, metadata={"description": "default `default`"})


class FunctionPatchSchema(_FunctionFields):
    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("nothing to change")


class FunctionListQuery(Base):
    namespace = NamespaceName()
    cursor = fields.String(validate=validate.Length(1, 200), metadata={"description": "`next_cursor` of the "
                                                                                      "previous page"})
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


class FunctionSchema(Base):
    namespace = fields.String(required=True)
    name = fields.String(required=True)
    ref = fields.String(required=True, metadata={"description": "`namespace/name`: use it as a job's `function`"})
    path = fields.String(allow_none=True, required=True)
    handler = fields.String(allow_none=True, required=True)
    queue = fields.String(allow_none=True, required=True)
    timeout = fields.Integer(allow_none=True, required=True)
    max_attempts = fields.Integer(allow_none=True, required=True)
    backoff = fields.Nested(BackoffOutSchema, allow_none=True, required=True)
    priority = fields.Integer(allow_none=True, required=True)
    enabled = Bool(required=True)
    description = fields.String(required=True)
    version = fields.Integer(required=True, metadata={"description": "goes up on every change"})
    created_at = Timestamp(allow_none=True, required=True)
    updated_at = Timestamp(allow_none=True, required=True)


class FunctionPageSchema(Base):
    functions = fields.List(fields.Nested(FunctionSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class NamespaceSchema(Base):
    namespace = fields.String(required=True)
    functions = fields.Integer(required=True)
    disabled = fields.Integer(required=True)


class NamespaceListSchema(Base):
    namespaces = fields.List(fields.Nested(NamespaceSchema), required=True)


class FunctionSyncSchema(Base):
    namespace = NamespaceName(metadata={"description": "default `default` (or the key's one namespace)"})
    functions = fields.List(fields.Nested(FunctionSyncItemSchema), required=True, validate=validate.Length(max=1000))
    delete_missing = Bool(load_default=False,
                                    metadata={"description": "delete the namespace's functions not listed "
                                                             "(needs X-Confirm: true unless dry_run)"})
    dry_run = Bool(load_default=False, metadata={"description": "report, change nothing"})


class FunctionSyncResultSchema(Base):
    namespace = fields.String(required=True)
    dry_run = Bool(required=True)
    created = fields.List(fields.String(), required=True)
    updated = fields.List(fields.String(), required=True)
    deleted = fields.List(fields.String(), required=True)
    unchanged = fields.List(fields.String(), required=True)


# -- pull workers (admin_api/blueprints/pull.py) ---------------------------------------------------------

PULL_STATUSES = ["completed", "failed"]
ACK_STATES = ["completed", "scheduled", "failed"]
WORKER_NAME = r"^[A-Za-z0-9_.:@\-]{1,128}$"
# Accepted; the stored error keeps the first 4 KB of the message and the last 16 KB of the traceback.
ERROR_TEXT_MAX = 65536
Token = lambda **kw: fields.String(validate=validate.Length(1, defaults.PULL_TOKEN_MAX), **kw)  # noqa: E731
VisibilityTimeout = lambda: fields.Float(  # noqa: E731
    load_default=defaults.PULL_VISIBILITY_TIMEOUT, validate=validate.Range(1, defaults.PULL_VISIBILITY_MAX),
    metadata={"description": f"seconds the lease lasts without a heartbeat (default "
                             f"{defaults.PULL_VISIBILITY_TIMEOUT})"})


class ClaimSchema(Base):
    queue = QueueName(required=True)
    count = Strict(load_default=1, validate=validate.Range(1, defaults.PULL_COUNT_MAX),
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
    visibility_timeout = fields.Float(validate=validate.Range(1, defaults.PULL_VISIBILITY_MAX),
                                     metadata={"description": "seconds from now the lease ends (default "
                                                              f"{defaults.PULL_VISIBILITY_TIMEOUT}; for an HTTP "
                                                              "handler job that answered 202: its callback_timeout)"})


class LeaseSchema(Base):
    id = fields.String(required=True)
    lease_expires_at = Timestamp(required=True)
    lease_expires_ms = fields.Integer(required=True)


class AckErrorSchema(Base):
    type = fields.String(validate=validate.Length(1, 255), metadata={"description": "default `Error`"})
    message = fields.String(required=True, validate=validate.Length(max=ERROR_TEXT_MAX))
    traceback = fields.String(validate=validate.Length(max=ERROR_TEXT_MAX))


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
    result = fields.Raw(allow_none=True, validate=_depth_ok,
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
    id = fields.String(required=True, validate=validate.Length(1, 128), metadata={"description": "the job"})


class AckBatchSchema(Base):
    acks = fields.List(fields.Nested(AckItemSchema), required=True,
                       validate=validate.Length(1, defaults.PULL_COUNT_MAX))


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
