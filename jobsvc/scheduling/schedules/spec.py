"""What a schedule is (`ScheduleSpec`: its definition, validated and normalized) and what a stored one
holds (`Schedule`: the definition and its state); the ids and policies they allow."""
from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from ... import defaults
from ...defaults import DESCRIPTION_MAX as DESCRIPTION_MAX  # re-exported by jobsvc.scheduling.schedules
from ...engine.functions import check_job_defaults, parse_ref
from ...engine.serialization import IMPORT_PATH
from ...engine.versioned import canonical_json
from ...errors import ValidationError
from ...validation import NAMESPACE_NAME, QUEUE_NAME, check_text, is_name
from ...validation import OVERLAP_POLICIES as OVERLAP_POLICIES  # re-exported by jobsvc.scheduling.schedules
from .. import cron
from ..cron import Window  # ScheduleSpec's field `cron` shadows the module in its body (window()'s type)

SCHEDULE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
ACTIVE_STATES = frozenset({"queued", "scheduled", "running", "deferred"})
# Fields whose change moves the next fire time (recomputed from now).
TIMING_FIELDS = ("cron", "interval", "timezone", "start_at", "end_at")


def _utc_time(value: Any, name: str) -> datetime | None:
    """A date as an aware UTC datetime, to the millisecond: from a datetime (naive = UTC), an ISO 8601 text
    (no offset = UTC) or epoch seconds. Idempotent, so a normalized spec can be rebuilt from its fields."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be a date")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not 0 <= value < 253402300800:
            raise ValidationError(f"{name} must be a time between 1970 and 9999")
        value = datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"{name} {value!r} is not an ISO 8601 date") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    raise ValidationError(f"{name} must be an ISO 8601 date, a datetime or epoch seconds")


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _jsonable(value: Any, name: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be JSON (schedules are stored as JSON)") from None


@functools.lru_cache(maxsize=4096)
def _spec_from_def(text: str) -> ScheduleSpec:
    return ScheduleSpec(**json.loads(text))


@dataclass(frozen=True)
class ScheduleSpec:
    """What a schedule is: when it fires, what it runs, and its policies. Validated on creation.

    Exactly one of `cron` (5 fields, or 6 with seconds first) and `interval` (seconds, >= 1). `start_at` /
    `end_at` are UTC datetimes once normalized (input: datetime, ISO text, or epoch seconds; `start_ms` /
    `end_ms` give them as epoch ms); fires happen in [start_at, end_at]. Job options left
    None take the registry function's defaults, then jobsvc's."""

    id: str
    function: str | None = None
    cron: str | None = None
    interval: float | None = None
    timezone: str = "UTC"
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None
    namespace: str | None = None
    priority: int | None = None
    max_attempts: int | None = None
    backoff: Any = None
    timeout: int | None = None
    result_ttl: int | None = None
    failure_ttl: int | None = None
    enabled: bool = True
    start_at: Any = None
    end_at: Any = None
    misfire: str = defaults.SCHEDULE_MISFIRE
    misfire_grace: float = defaults.SCHEDULE_MISFIRE_GRACE
    max_catchup: int = defaults.SCHEDULE_MAX_CATCHUP
    overlap: str = "allow"
    description: str = ""
    # An HTTP handler URL and its JSON payload instead of a function (docs/http.md).
    handler: str | None = None
    payload: Any = None
    # Each fire's job meta (JSON object): what `jobsvc schedules import --from-rq-scheduler` carries over.
    meta: dict[str, Any] | None = None
    # "api" when created or changed through the HTTP API: its fires are marked as the API's jobs, so workers
    # run their Python function only from the allowed modules (jobsvc.allowlist). None: from Python, trusted.
    origin: str | None = None

    def __post_init__(self) -> None:
        # Text UTF-8 cannot encode (a lone surrogate) would be stored, then fail every fire: refuse it here.
        check_text({f.name: getattr(self, f.name) for f in fields(self)})
        if not isinstance(self.id, str) or not SCHEDULE_ID.fullmatch(self.id):
            raise ValidationError(f"schedule id {self.id!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        self._check_target()
        self._normalize_timing()
        self._normalize_arguments()
        self._normalize_job_options()
        self._normalize_window()
        self._normalize_policies()

    def _check_target(self) -> None:
        """What a fire runs: exactly one of a function (import path or `ns/name`) and a handler URL."""
        if (self.function is None) == (self.handler is None):
            raise ValidationError("give a function (import path or registry 'ns/name') or a handler URL, one of them")
        if self.handler is not None:
            if not isinstance(self.handler, str) or not 0 < len(self.handler) <= defaults.URL_MAX:
                raise ValidationError(f"handler must be an https URL of at most {defaults.URL_MAX} characters")
            if self.args or self.kwargs:
                raise ValidationError("a handler schedule takes a JSON payload, not args or kwargs")
            _jsonable(self.payload, "payload")
        elif not isinstance(self.function, str) or not self.function:
            raise ValidationError("function must be an import path ('app.tasks.f') or a registry function ('ns/name')")
        elif "/" in self.function:
            parse_ref(self.function)
        elif not IMPORT_PATH.fullmatch(self.function):
            raise ValidationError(f"function {self.function!r} must be an import path like 'package.module.function' "
                                  "or a registry function 'namespace/name'")

    def _normalize_timing(self) -> None:
        """Exactly one of cron (whitespace collapsed, so equal expressions store equal) and interval; the zone."""
        s = object.__setattr__
        if (self.cron is None) == (self.interval is None):
            raise ValidationError("give exactly one of cron and interval")
        if self.cron is not None:
            s(self, "cron", " ".join(str(self.cron).split()))
            cron.croniter_expr(self.cron)
        if self.interval is not None:
            if isinstance(self.interval, bool) or not isinstance(self.interval, (int, float)) \
                    or not math.isfinite(self.interval) or self.interval < defaults.SCHEDULE_MIN_INTERVAL:
                raise ValidationError(f"interval must be a number of seconds >= {defaults.SCHEDULE_MIN_INTERVAL:g}")
            s(self, "interval", float(self.interval))
        cron.zone(self.timezone)

    def _normalize_arguments(self) -> None:
        """args and kwargs as the JSON they are stored as (a tuple becomes a list)."""
        s = object.__setattr__
        if isinstance(self.args, tuple):
            s(self, "args", list(self.args))
        if not isinstance(self.args, list):
            raise ValidationError("args must be a list")
        if not isinstance(self.kwargs, dict) or not all(isinstance(k, str) for k in self.kwargs):
            raise ValidationError("kwargs must be an object with text keys")
        s(self, "args", _jsonable(self.args, "args"))
        s(self, "kwargs", _jsonable(self.kwargs, "kwargs"))
        if self.meta is not None:
            if not isinstance(self.meta, dict) or not all(isinstance(k, str) for k in self.meta):
                raise ValidationError("meta must be an object with text keys")
            s(self, "meta", _jsonable(self.meta, "meta"))

    def _normalize_job_options(self) -> None:
        """The options each fire's job gets: queue, namespace, the registry-shared defaults, TTLs, enabled."""
        if self.queue is not None and not is_name(self.queue, QUEUE_NAME):
            raise ValidationError(f"queue name {self.queue!r} must be 1-128 of A-Z a-z 0-9 _ . : -")
        if self.namespace is not None and not is_name(self.namespace, NAMESPACE_NAME):
            raise ValidationError(f"namespace {self.namespace!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        object.__setattr__(self, "backoff", check_job_defaults(self.queue, self.timeout, self.max_attempts,
                                                               self.priority, self.backoff))
        for name in ("result_ttl", "failure_ttl"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < -1):
                raise ValidationError(f"{name} must be an integer >= -1 (-1 keeps forever)")
        if not isinstance(self.enabled, bool):
            raise ValidationError("enabled must be true or false")

    def _normalize_window(self) -> None:
        """start_at / end_at as aware UTC datetimes, in order."""
        object.__setattr__(self, "start_at", _utc_time(self.start_at, "start_at"))
        object.__setattr__(self, "end_at", _utc_time(self.end_at, "end_at"))
        if self.start_at is not None and self.end_at is not None and self.end_at < self.start_at:
            raise ValidationError("end_at must not be before start_at")

    def _normalize_policies(self) -> None:
        """Misfire and overlap policies, and the description (None stored as "")."""
        s = object.__setattr__
        if self.misfire not in cron.MISFIRE_POLICIES:
            raise ValidationError(f"misfire must be one of {', '.join(cron.MISFIRE_POLICIES)}")
        if isinstance(self.misfire_grace, bool) or not isinstance(self.misfire_grace, (int, float)) \
                or not math.isfinite(self.misfire_grace) or self.misfire_grace < 1:
            raise ValidationError("misfire_grace must be a number of seconds >= 1")
        s(self, "misfire_grace", float(self.misfire_grace))
        if isinstance(self.max_catchup, bool) or not isinstance(self.max_catchup, int) \
                or not 1 <= self.max_catchup <= defaults.SCHEDULE_FIRES_PER_PASS * 10:
            raise ValidationError(f"max_catchup must be 1-{defaults.SCHEDULE_FIRES_PER_PASS * 10}")
        if self.overlap not in OVERLAP_POLICIES:
            raise ValidationError(f"overlap must be one of {', '.join(OVERLAP_POLICIES)}")
        if self.description is None:
            s(self, "description", "")
        if not isinstance(self.description, str) or len(self.description) > DESCRIPTION_MAX:
            raise ValidationError(f"description must be text of at most {DESCRIPTION_MAX} characters")

    @property
    def start_ms(self) -> int | None:
        return None if self.start_at is None else cron.to_ms(self.start_at)

    @property
    def end_ms(self) -> int | None:
        return None if self.end_at is None else cron.to_ms(self.end_at)

    @property
    def from_registry(self) -> bool:
        """Whether its jobs come from a registry function (`ns/name`)."""
        return bool(self.function and "/" in self.function)

    def def_json(self) -> str:
        """The definition as canonical JSON: equal JSON means unchanged (no new version). Fields added later
        are left out while unset, so definitions stored before them keep their JSON and version."""
        out = self.spec_dict()
        for k in ("handler", "payload", "origin", "meta"):
            if out[k] is None:
                del out[k]
        return canonical_json(out)

    @classmethod
    def from_def(cls, text: str | bytes) -> ScheduleSpec:
        # The firing pass reads every due schedule's definition each second: decode and validate each
        # stored version once (specs are frozen, so sharing them is safe).
        return _spec_from_def(text.decode() if isinstance(text, bytes) else text)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScheduleSpec:
        """From API / file input; unknown fields are refused."""
        if not isinstance(data, Mapping):
            raise ValidationError("a schedule is an object with id, function and cron or interval")
        names = {f.name for f in fields(ScheduleSpec)}
        unknown = set(data) - names
        if unknown:
            raise ValidationError(f"unknown schedule field(s): {', '.join(sorted(unknown))}")
        if "id" not in data:
            raise ValidationError("schedule field 'id' is required")
        if "function" not in data and "handler" not in data:
            raise ValidationError("schedule field 'function' (or 'handler') is required")
        values = {k: v for k, v in data.items() if not (v is None and k in ("args", "kwargs", "timezone"))}
        return cls(**values)

    def spec_dict(self) -> dict[str, Any]:
        """The definition for output: dates as ISO 8601 UTC text (accepted back as input)."""
        out = {f.name: getattr(self, f.name) for f in fields(ScheduleSpec)}
        out["start_at"], out["end_at"] = iso(self.start_ms), iso(self.end_ms)
        return out

    def window(self, anchor_ms: int) -> Window:
        """When it fires. An interval counts from start_at, or from `anchor_ms` (its creation) without one."""
        timing: cron.Timing
        if self.cron is not None:
            timing = cron.CronTiming(self.cron, self.timezone)
        else:
            timing = cron.IntervalTiming(round(self.interval * 1000),  # type: ignore[operator]
                                         self.start_ms if self.start_ms is not None else anchor_ms)
        return Window(timing, self.start_ms, self.end_ms)


@dataclass(frozen=True)
class Schedule(ScheduleSpec):
    """A stored schedule: its definition and its state. `status` is idle | running | disabled."""

    version: int = 0
    created_ms: int | None = None
    updated_ms: int | None = None
    next_run_ms: int | None = None
    last_run: dict[str, Any] | None = None
    status: str = "idle"
    runs: int = 0
    completed: int = 0
    failed: int = 0
    skipped: int = 0
    missed: int = 0
    avg_runtime_ms: float | None = None

    @property
    def spec(self) -> ScheduleSpec:
        return ScheduleSpec(**{f.name: getattr(self, f.name) for f in fields(ScheduleSpec)})

    def to_dict(self) -> dict[str, Any]:
        out = self.spec_dict()
        for f in fields(Schedule):
            if f.name not in out:
                out[f.name] = getattr(self, f.name)
        out["next_run_at"] = iso(self.next_run_ms)
        return out
