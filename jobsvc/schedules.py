"""Cron schedules: jobs fired at the times of a cron expression (in an IANA timezone) or a fixed interval,
by the leading scheduler process (`CronFirer` in jobsvc/scheduling.py).

    >>> schedules = Schedules(client)
    >>> schedules.create(id="nightly-report", cron="0 3 * * *", timezone="Europe/Paris",
    ...                  function="app.reports.nightly", kwargs={"full": True}, misfire="run_once")
    >>> schedules.execute("nightly-report")          # run now; returns the job id
    >>> schedules.runs("nightly-report")              # ([{job_id, scheduled_ms, status, ...}, ...], cursor)

A schedule names its function by import path (`app.tasks.f`) or as a registry function (`ns/name`,
jobsvc/functions.py: its defaults apply, and a disabled function's fires are skipped and recorded).

Each fire's job id is `<schedule id>:<fire time, epoch ms>`. The next fire time lives in Redis (the
schedule's hash and the `schedules:due` index), and a pass enqueues a schedule's fires and moves its next
fire time on in one MULTI/EXEC under WATCH of the schedule: a restart neither skips nor repeats a fire, a
crash cannot separate the two, and of two schedulers that both think they lead only one pass's fires land.

Misfires (fires more than `misfire_grace` seconds late: the scheduler was down): `skip` drops them,
`run_once` runs one job for all of them (the id of the first), `run_all` runs them all, at most
`max_catchup`. Overlap `skip` skips a fire (recorded as skipped) while the schedule's previous job is still
queued, scheduled (retrying) or running.

Redis (under the key prefix): `schedule:<id>` hash (def JSON, version, created_ms, updated_ms, next_ms,
last_job, last_fire_ms), `schedule:<id>:stats` (runs, completed, failed, skipped, missed, runtime_ms,
runtime_n; completed/failed are counted by complete.lua, fail.lua and reap_expired.lua from the job's
`js_schedule` field), `schedule:<id>:runs` (run ids by scheduled time) and `schedule:<id>:run` (run
records), `schedules` (listing index), `schedules:due` (next fire ms), `schedules:pending` (runs whose
outcome is not yet copied into the run history). Schedule ids cannot contain ':', so no id can spell another
schedule's `:stats` / `:runs` / `:run` key, and no id can reach the fixed `schedules:*` keys (jobsvc/keys.py).
"""
from __future__ import annotations

# Schedules.list shadows the builtin in the class body: annotations there name builtins.list.
import builtins
import contextlib
import functools
import json
import logging
import math
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, cast

import redis

from . import cron, defaults, scripts
from .allowlist import ORIGIN_API, ORIGIN_FIELD
from .client import Client
from .connection import text
from .cron import Window  # ScheduleSpec's field `cron` shadows the module in its body (window()'s type)
from .errors import Conflict, Disabled, FunctionMissing, NotFound, ValidationError
from .functions import Registry, check_job_defaults, parse_ref
from .job import DEFAULT_NAMESPACE, JobSpec
from .keys import Keys
from .serialization import IMPORT_PATH
from .urlguard import check_url
from .validation import NAMESPACE_NAME, QUEUE_NAME, check_text, is_name

log = logging.getLogger("jobsvc.schedules")

SCHEDULE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
OVERLAP_POLICIES = ("allow", "skip")
ACTIVE_STATES = frozenset({"queued", "scheduled", "running", "deferred"})
DESCRIPTION_MAX = 1000
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
        for k in ("handler", "payload", "origin"):
            if out[k] is None:
                del out[k]
        return json.dumps(out, sort_keys=True, separators=(",", ":"))

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


@dataclass
class SyncReport:
    """What a sync did (or, for a dry run, would do): schedule ids per outcome."""

    dry_run: bool
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FireResult:
    """One CronFirer pass: jobs fired, fires skipped (overlap, disabled function) and missed (misfire
    policy), the earliest next fire time (None: no schedule due later) and the pass's clock."""

    fired: int = 0
    skipped: int = 0
    missed: int = 0
    next_fire_ms: int | None = None
    now_ms: int = 0


@dataclass
class _FireBatch:
    """One pass's fires of one schedule: the jobs to enqueue and the run records (4 schedule_advance
    arguments each: run id, fire ms, record JSON, 1 if enqueued)."""

    jobs: list[JobSpec] = field(default_factory=list)
    extras: list[dict[str, str]] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)
    skipped: int = 0
    last_job: str = ""

    def enqueue(self, job: JobSpec, extra: dict[str, str], record: dict[str, Any]) -> None:
        record["status"] = "queued"
        self.jobs.append(job)
        self.extras.append(extra)
        self.records += [record["job_id"], record["scheduled_ms"], _record_json(record), 1]
        self.last_job = record["job_id"]

    def skip(self, record: dict[str, Any], why: str) -> None:
        run_id = record["job_id"]
        record.update(job_id=None, status="skipped", error=why)
        self.records += [run_id, record["scheduled_ms"], _record_json(record), 0]
        self.skipped += 1


def redis_ms(conn: redis.Redis) -> int:
    sec, usec = conn.time()
    return int(sec) * 1000 + int(usec) // 1000


class Schedules:
    """Create, read, change, delete, run and list cron schedules (the core of /schedules)."""

    def __init__(self, client: Client):
        self.client = client
        self.redis: redis.Redis = client.redis
        self.prefix = client.config.key_prefix
        self.registry = Registry(client)

    # keys: named in keys.py (the Lua scripts build the same names)
    def key(self, schedule_id: str) -> str:
        return Keys(self.prefix).schedule(schedule_id)

    @property
    def index_key(self) -> str:
        return Keys(self.prefix).schedules

    @property
    def due_key(self) -> str:
        return Keys(self.prefix).schedules_due

    # -- write -----------------------------------------------------------------------------------------

    def create(self, spec: ScheduleSpec | None = None, **values: Any) -> Schedule:
        """Create a schedule from a ScheduleSpec or its fields (`id` generated when not given).
        ValidationError for a bad definition or an unknown registry function; AlreadyExists if the id is taken."""
        if spec is None:
            values.setdefault("id", secrets.token_hex(8))
            spec = ScheduleSpec.from_dict(values)
        elif values:
            raise ValidationError("give a ScheduleSpec or fields, not both")
        self._check_function(spec)
        self._save(spec, "create")
        return self.get(spec.id)

    def patch(self, schedule_id: str, **changes: Any) -> Schedule:
        """Change some fields of a schedule; a change of its timing (cron, interval, timezone, start_at,
        end_at) or enabling it moves its next fire time to the first one from now."""
        unknown = set(changes) - {f.name for f in fields(ScheduleSpec)}
        if unknown:
            raise ValidationError(f"unknown schedule field(s): {', '.join(sorted(unknown))}")
        if "id" in changes and changes["id"] != schedule_id:
            raise ValidationError("a schedule's id cannot change")
        for _ in range(10):
            current = self._load_spec(schedule_id)
            if current is None:
                raise NotFound(f"no schedule {schedule_id}")
            spec, version = current
            values = {f.name: getattr(spec, f.name) for f in fields(ScheduleSpec)}
            values.update(changes)
            if "cron" in changes and changes["cron"] is not None and "interval" not in changes:
                values["interval"] = None
            if "interval" in changes and changes["interval"] is not None and "cron" not in changes:
                values["cron"] = None
            new = ScheduleSpec.from_dict(values)
            if new.function != spec.function or new.handler != spec.handler:
                self._check_function(new)
            try:
                self._save(new, "update", expected_version=version, previous=spec)
                return self.get(schedule_id)
            except Conflict:
                continue  # changed by someone else meanwhile: apply the patch to the new version
        raise Conflict(f"schedule {schedule_id} keeps changing; try again")

    def enable(self, schedule_id: str) -> Schedule:
        return self.patch(schedule_id, enabled=True)

    def disable(self, schedule_id: str) -> Schedule:
        return self.patch(schedule_id, enabled=False)

    def delete(self, schedule_id: str) -> None:
        """Remove a schedule, its counts and run history; jobs it fired stay."""
        self._check_id(schedule_id)
        scripts.check(scripts.call(self.redis, "schedule_delete", (), (self.prefix, schedule_id)),
                      what=f"schedule {schedule_id}")

    def _save(self, spec: ScheduleSpec, mode: str, expected_version: int | None = None,
              previous: ScheduleSpec | None = None) -> None:
        now = redis_ms(self.redis)
        set_next = (previous is None or (not previous.enabled and spec.enabled)
                    or any(getattr(previous, k) != getattr(spec, k) for k in TIMING_FIELDS))
        nxt: int | None = None
        if set_next:
            anchor = now
            if previous is not None:
                raw = self.redis.hget(self.key(spec.id), "created_ms")
                anchor = int(raw) if raw else now
            nxt = spec.window(anchor).next_after(now)
        reply = scripts.call(self.redis, "schedule_save", (), (
            self.prefix, spec.id, spec.def_json(), "1" if spec.enabled else "0", mode,
            "" if expected_version is None else expected_version, "1" if set_next else "0",
            "" if nxt is None else nxt, now))
        scripts.check(reply, what=f"schedule {spec.id}")

    def _check_function(self, spec: ScheduleSpec) -> None:
        if spec.handler is not None:
            check_url(spec.handler, allow_private=self.client.config.allow_private_urls)
        if spec.from_registry:
            assert spec.function is not None  # from_registry: its function is a `ns/name` reference
            try:
                fn = self.registry.resolve(spec.function)
            except NotFound:
                raise ValidationError(f"function {spec.function} is not registered") from None
            if spec.namespace not in (None, fn.namespace):
                raise ValidationError(f"function {fn.ref} makes jobs in namespace {fn.namespace!r}")

    # -- read ------------------------------------------------------------------------------------------

    @staticmethod
    def _check_id(schedule_id: str) -> None:
        if not isinstance(schedule_id, str) or not SCHEDULE_ID.fullmatch(schedule_id):
            raise NotFound(f"no schedule {schedule_id}")

    def _load_spec(self, schedule_id: str) -> tuple[ScheduleSpec, int] | None:
        self._check_id(schedule_id)
        definition, version = self.redis.hmget(self.key(schedule_id), "def", "version")
        if not definition:
            return None
        # schedule_save.lua writes def and version together: with a def there is a version.
        return ScheduleSpec.from_def(definition), int(cast("bytes", version))

    def get(self, schedule_id: str) -> Schedule:
        self._check_id(schedule_id)
        found = self._read([schedule_id])
        if not found:
            raise NotFound(f"no schedule {schedule_id}")
        return found[0]

    def _read(self, ids: Sequence[str]) -> list[Schedule]:
        pipe = self.redis.pipeline(transaction=False)
        for sid in ids:
            pipe.hgetall(self.key(sid))
            pipe.hgetall(Keys(self.prefix).schedule_stats(sid))
        replies = pipe.execute()
        rows = []
        for i, sid in enumerate(ids):
            raw, stats = replies[2 * i], replies[2 * i + 1]
            if raw and b"def" in raw:
                rows.append((sid, {k.decode(): v.decode() for k, v in raw.items()},
                             {k.decode(): int(v) for k, v in stats.items()}))
        # The last job's state (running or not) and its run record.
        pipe = self.redis.pipeline(transaction=False)
        for sid, h, _ in rows:
            last = h.get("last_job", "")
            pipe.hget(f"rq:job:{last}", "js_state")
            pipe.hget(Keys(self.prefix).schedule_run(sid), last)
        states = pipe.execute()
        out = []
        for i, (_, h, stats) in enumerate(rows):
            spec = ScheduleSpec.from_def(h["def"])
            last_job = h.get("last_job") or None
            last_run = None
            running = False
            if last_job:
                state = states[2 * i].decode() if states[2 * i] else None
                record = json.loads(states[2 * i + 1]) if states[2 * i + 1] else {}
                running = state in ACTIVE_STATES
                last_run = {"job_id": last_job, "scheduled_ms": int(h.get("last_fire_ms") or 0) or None,
                            "status": state or record.get("status", "unknown")}
            status = "disabled" if not spec.enabled else "running" if running else "idle"
            n = stats.get("runtime_n", 0)
            out.append(Schedule(**{f.name: getattr(spec, f.name) for f in fields(ScheduleSpec)},
                                version=int(h["version"]), created_ms=int(h["created_ms"]),
                                updated_ms=int(h["updated_ms"]),
                                next_run_ms=int(h["next_ms"]) if h.get("next_ms") and spec.enabled else None,
                                last_run=last_run, status=status, runs=stats.get("runs", 0),
                                completed=stats.get("completed", 0), failed=stats.get("failed", 0),
                                skipped=stats.get("skipped", 0), missed=stats.get("missed", 0),
                                avg_runtime_ms=round(stats.get("runtime_ms", 0) / n, 1) if n else None))
        return out

    def list(self, cursor: str | None = None, limit: int = 100, namespace: str | None = None,
             enabled: bool | None = None) -> tuple[builtins.list[Schedule], str | None]:
        """Schedules by id; `cursor` is the last id seen (returned while more remain). With filters a page
        may be short: keep following the cursor."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 500:
            raise ValidationError("limit must be 1-500")
        if cursor is not None and not SCHEDULE_ID.fullmatch(cursor):
            raise ValidationError("cursor is not a schedule id")
        low = f"({cursor}" if cursor else "-"
        ids = [text(i) for i in self.redis.zrangebylex(self.index_key, low, "+", start=0, num=limit + 1)]
        more = len(ids) > limit
        ids = ids[:limit]
        items = [s for s in self._read(ids)
                 if (namespace is None or self._namespace(s) == namespace)
                 and (enabled is None or s.enabled == enabled)]
        return items, (ids[-1] if more else None)

    def all(self) -> builtins.list[Schedule]:
        out: builtins.list[Schedule] = []
        cursor: str | None = None
        while True:
            items, cursor = self.list(cursor, 500)
            out += items
            if not cursor:
                return out

    @staticmethod
    def _namespace(spec: ScheduleSpec) -> str:
        if spec.namespace:
            return spec.namespace
        if spec.from_registry:
            assert spec.function is not None  # from_registry: its function is a `ns/name` reference
            return parse_ref(spec.function)[0]
        return DEFAULT_NAMESPACE

    def runs(self, schedule_id: str, cursor: str | None = None,
             limit: int = 50) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """The schedule's runs, newest first: job_id (None for a skipped fire), scheduled_ms, trigger
        (schedule | catchup | manual), status, started_ms, finished_ms, duration_ms, error. `cursor` comes
        from the previous page. Runs still in flight are read off their jobs."""
        self._check_id(schedule_id)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 500:
            raise ValidationError("limit must be 1-500")
        if not self.redis.exists(self.key(schedule_id)):
            raise NotFound(f"no schedule {schedule_id}")
        page = self._runs_page(schedule_id, _runs_cursor(cursor), limit)
        more = len(page) > limit
        page = page[:limit]
        runs = self._run_records(schedule_id, page)
        self._read_live_runs(runs)
        next_cursor = f"{int(page[-1][1])}|{page[-1][0]}" if more and page else None
        return runs, next_cursor

    def _runs_page(self, schedule_id: str, after: tuple[float, str] | None,
                   limit: int) -> builtins.list[tuple[str, float]]:
        """(run id, scheduled ms) pairs after the cursor, newest first: more than `limit` when there is more."""
        top: str | float = "+inf" if after is None else after[0]
        # withscores: (member, score) pairs; redis-py's one return type covers the command without it too.
        entries = cast("builtins.list[tuple[bytes, float]]", self.redis.zrevrangebyscore(
            Keys(self.prefix).schedule_runs(schedule_id), top, "-inf", start=0, num=limit + 8, withscores=True))
        page = []
        for member, score in entries:
            m = member.decode()
            if after and score == after[0] and m >= after[1]:
                continue  # at or before the cursor (ties in reverse order of member)
            page.append((m, score))
        return page

    def _run_records(self, schedule_id: str,
                     page: builtins.list[tuple[str, float]]) -> builtins.list[dict[str, Any]]:
        """The stored run records of a page, in the shape `runs` answers."""
        records = self.redis.hmget(Keys(self.prefix).schedule_run(schedule_id), [m for m, _ in page]) if page else []
        runs: builtins.list[dict[str, Any]] = []
        for (m, score), rec in zip(page, records, strict=True):  # HMGET answers one value per field asked
            r = json.loads(rec) if rec else {"job_id": m, "status": "unknown"}
            r.setdefault("scheduled_ms", int(score))
            runs.append({"job_id": r.get("job_id"), "scheduled_ms": r.get("scheduled_ms"),
                         "trigger": r.get("trigger", "schedule"), "status": r.get("status"),
                         "started_ms": r.get("started_ms"), "finished_ms": r.get("finished_ms"),
                         "duration_ms": r.get("duration_ms"), "error": r.get("error")})
        return runs

    def _read_live_runs(self, runs: builtins.list[dict[str, Any]]) -> None:
        """Runs still in flight when recorded: their status, times and error as their jobs have them now."""
        live = [run for run in runs if run["status"] in ACTIVE_STATES and run["job_id"]]
        if not live:
            return
        pipe = self.redis.pipeline(transaction=False)
        for run in live:
            pipe.hmget(f"rq:job:{run['job_id']}", "js_state", "js_started_ms", "js_ended_ms", "js_error")
        for run, (state, started, ended, error) in zip(live, pipe.execute(), strict=True):  # one HMGET each
            if state is None:
                run["status"] = "unknown"
                continue
            run["status"] = state.decode()
            run["started_ms"] = int(started) if started else None
            if run["status"] not in ACTIVE_STATES:
                run["finished_ms"] = int(ended) if ended else None
                if run["started_ms"] and run["finished_ms"] and run["status"] != "cancelled":
                    run["duration_ms"] = run["finished_ms"] - run["started_ms"]
                if run["status"] != "completed" and error:
                    run["error"] = error.decode()

    # -- run -------------------------------------------------------------------------------------------

    def job_for(self, spec: ScheduleSpec, job_id: str) -> tuple[JobSpec, dict[str, str]]:
        """The job one fire of `spec` enqueues, and its extra hash fields. NotFound / Disabled when its
        registry function is missing or disabled."""
        options: dict[str, Any] = {k: getattr(spec, k) for k in ("queue", "priority", "max_attempts", "timeout",
                                                                 "result_ttl", "failure_ttl")}
        options["backoff"] = check_backoff(spec.backoff)
        options = {k: v for k, v in options.items() if v is not None}
        extra = {"js_schedule": spec.id}
        if spec.origin == ORIGIN_API:
            extra[ORIGIN_FIELD] = ORIGIN_API
        if spec.from_registry:
            assert spec.function is not None  # from_registry: its function is a `ns/name` reference
            fjob = self.registry.job(spec.function, *spec.args, kwargs=spec.kwargs, job_id=job_id,
                                     namespace=spec.namespace, **options)
            extra.update(fjob.fields)
            return fjob.spec, extra
        options["namespace"] = spec.namespace or DEFAULT_NAMESPACE
        if spec.handler is not None:
            return Client.handler_job(spec.handler, spec.payload, job_id=job_id, **options), extra
        assert spec.function is not None  # a schedule has a function or a handler (ScheduleSpec.__post_init__)
        return Client.job(spec.function, *spec.args, kwargs=spec.kwargs, job_id=job_id, **options), extra

    def execute(self, schedule_id: str) -> str:
        """Run the schedule's job now, whatever its timing, enabled flag or overlap policy; its next fire time
        does not move. Returns the job id `<schedule id>:manual-<ms>`. Disabled if its registry function is
        disabled, FunctionMissing if it is gone."""
        loaded = self._load_spec(schedule_id)
        if loaded is None:
            raise NotFound(f"no schedule {schedule_id}")
        spec, _ = loaded
        now = redis_ms(self.redis)
        job_id = f"{spec.id}:manual-{now}"
        try:
            job, extra = self.job_for(spec, job_id)
        except NotFound as exc:
            raise FunctionMissing(f"schedule {spec.id}: {exc}") from None
        record = {"job_id": job_id, "scheduled_ms": now, "trigger": "manual", "status": "queued"}
        pipe = self.redis.pipeline(transaction=True)
        for name, keys, args in self.client.enqueue_calls([job], [extra]):
            pipe.eval(scripts.SOURCES[name], len(keys), *keys, *args)
        pipe.eval(scripts.SOURCES["schedule_advance"], 0, self.prefix, spec.id, "*", "", job_id, now,
                  defaults.SCHEDULE_RUNS_KEPT, 1, 0, 0, 1, job_id, now, _record_json(record), 1)
        replies = pipe.execute()
        with contextlib.suppress(NotFound):  # deleted meanwhile: the job is enqueued, with no history to record it
            scripts.check(replies[-1], what=f"schedule {spec.id}")
        return job_id

    # -- sync ------------------------------------------------------------------------------------------

    def sync(self, schedules: Iterable[Mapping[str, Any] | ScheduleSpec], delete_missing: bool = False,
             dry_run: bool = False, namespace: str | None = None) -> SyncReport:
        """Make the stored schedules match these (each with an id): create the new, update the changed, and
        with delete_missing delete the others -- all of them, or only those of `namespace` when given. A dry
        run reports the same and changes nothing."""
        wanted = self._sync_wanted(schedules, namespace)
        current = {s.id: s for s in self.all() if namespace is None or self._namespace(s) == namespace}
        report = self._sync_plan(wanted, current, dry_run)
        if delete_missing:
            report.deleted = sorted(set(current) - set(wanted))
        if not dry_run:
            self._sync_apply(wanted, report)
        return report

    def _sync_wanted(self, schedules: Iterable[Mapping[str, Any] | ScheduleSpec],
                     namespace: str | None) -> dict[str, ScheduleSpec]:
        """The wanted schedules by id, each checked (unique, in `namespace`, its function) before any change."""
        wanted: dict[str, ScheduleSpec] = {}
        for item in schedules:
            spec = item if isinstance(item, ScheduleSpec) else ScheduleSpec.from_dict(item)
            if spec.id in wanted:
                raise ValidationError(f"schedule {spec.id!r} is listed twice")
            if namespace is not None and self._namespace(spec) != namespace:
                raise ValidationError(f"schedule {spec.id} is not in namespace {namespace!r}")
            self._check_function(spec)
            wanted[spec.id] = spec
        return wanted

    def _sync_plan(self, wanted: dict[str, ScheduleSpec], current: dict[str, Schedule],
                   dry_run: bool) -> SyncReport:
        """Which wanted schedules are new, changed or unchanged."""
        report = SyncReport(dry_run)
        for sid, spec in sorted(wanted.items()):
            old = current.get(sid)
            if old is None:
                loaded = self._load_spec(sid)  # exists in another namespace?
                if loaded is not None:
                    raise ValidationError(f"schedule {sid} exists in another namespace")
                report.created.append(sid)
            elif old.spec.def_json() != spec.def_json():
                report.updated.append(sid)
            else:
                report.unchanged.append(sid)
        return report

    def _sync_apply(self, wanted: dict[str, ScheduleSpec], report: SyncReport) -> None:
        for sid in report.created:
            self._save(wanted[sid], "create")
        for sid in report.updated:
            for _ in range(10):  # changed meanwhile (Conflict): read the version again and retry
                loaded = self._load_spec(sid)
                if loaded is None:
                    self._save(wanted[sid], "create")
                    break
                try:
                    self._save(wanted[sid], "update", expected_version=loaded[1], previous=loaded[0])
                    break
                except Conflict:
                    continue
        for sid in report.deleted:
            with contextlib.suppress(NotFound):  # deleted meanwhile: already as wanted
                self.delete(sid)

    # -- the scheduler's pass --------------------------------------------------------------------------

    def fire_due(self, now_ms: int | None = None, batch: int = defaults.SCHEDULE_BATCH,
                 cache: dict[str, Any] | None = None) -> FireResult:
        """Fire every schedule due at `now_ms` (Redis time when None), at most `batch` schedules; the CronFirer
        pass. One round trip when nothing is due."""
        pipe = self.redis.pipeline(transaction=False)
        if now_ms is None:
            pipe.time()
        pipe.zrange(self.due_key, 0, 0, withscores=True)
        replies = pipe.execute()
        if now_ms is None:
            sec, usec = replies.pop(0)
            now_ms = int(sec) * 1000 + int(usec) // 1000
        out = FireResult(now_ms=now_ms)
        first = replies[0]
        if not first or first[0][1] > now_ms:
            out.next_fire_ms = int(first[0][1]) if first else None
            return out
        # Without withscores: members only; redis-py's one return type covers (member, score) pairs too.
        due = cast("builtins.list[bytes]", self.redis.zrangebyscore(self.due_key, "-inf", now_ms, start=0, num=batch))
        for sid in due:
            try:
                fired, skipped, missed = self._fire(sid.decode(), now_ms, cache if cache is not None else {})
            except (redis.ConnectionError, redis.TimeoutError):
                raise
            except Exception:  # one broken schedule must not stop the others or the scheduler (logged below)
                log.exception("schedule %s: cannot fire; trying again in %gs", sid.decode(),
                              defaults.SCHEDULE_ERROR_RETRY)
                self.redis.zadd(self.due_key, {sid: now_ms + int(defaults.SCHEDULE_ERROR_RETRY * 1000)}, xx=True)
                continue
            out.fired += fired
            out.skipped += skipped
            out.missed += missed
        if len(due) >= batch:
            out.next_fire_ms = now_ms  # more are due: another pass at once
        else:
            first = self.redis.zrange(self.due_key, 0, 0, withscores=True)
            out.next_fire_ms = int(first[0][1]) if first else None
        return out

    def _fire(self, sid: str, now: int, cache: dict[str, Any]) -> tuple[int, int, int]:
        key = self.key(sid)
        with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(5):
                try:
                    return self._fire_watched(pipe, sid, key, now, cache)
                except redis.WatchError:
                    pipe.reset()
                    continue  # changed meanwhile (an API edit, or another scheduler fired it): read again
        return 0, 0, 0

    def _fire_watched(self, pipe: Any, sid: str, key: str, now: int, cache: dict[str, Any]) -> tuple[int, int, int]:
        pipe.watch(key)
        raw = pipe.hmget(key, "def", "version", "next_ms", "last_job", "created_ms")
        if not raw[0]:
            self._repair_due(pipe, sid, None)  # deleted: drop it from the due index
            return 0, 0, 0
        spec, window = self._cached_spec(sid, raw, now, cache)
        next_ms = int(raw[2]) if raw[2] else None
        if not spec.enabled or next_ms is None or next_ms > now:
            # The due index is behind the schedule (disabled, ended, or moved): put it right.
            self._repair_due(pipe, sid, next_ms if spec.enabled else None)
            return 0, 0, 0
        grace_ms = int(spec.misfire_grace * 1000)
        plan = cron.plan(window, next_ms, now, spec.misfire, grace_ms, spec.max_catchup)
        busy = self._previous_run_active(pipe, spec, raw[3].decode() if raw[3] else "")
        batch = self._fire_batch(spec, plan.fires, now - grace_ms, busy)
        self._advance(pipe, sid, next_ms, plan, batch)
        if plan.missed:
            log.info("schedule %s: %d missed fire(s) dropped (misfire: %s)", sid, plan.missed, spec.misfire)
        return len(batch.jobs), batch.skipped, plan.missed

    @staticmethod
    def _cached_spec(sid: str, raw: builtins.list[Any], now: int,
                     cache: dict[str, Any]) -> tuple[ScheduleSpec, Window]:
        """The schedule's parsed definition and fire window, parsed once per version."""
        # Kept per (version, creation): a re-created schedule starts at version 1 again.
        stamp = (int(raw[1]), raw[4])
        cached = cache.get(sid)
        if cached is None or cached[0] != stamp:
            spec = ScheduleSpec.from_def(raw[0])
            cached = (stamp, spec, spec.window(int(raw[4] or now)))
            cache[sid] = cached
        return cached[1], cached[2]

    def _repair_due(self, pipe: Any, sid: str, next_ms: int | None) -> None:
        """Set the schedule's place in the due index to `next_ms` (None: out of it), under the WATCH."""
        pipe.multi()
        if next_ms is not None:
            pipe.zadd(self.due_key, {sid: next_ms})
        else:
            pipe.zrem(self.due_key, sid)
        pipe.execute()

    @staticmethod
    def _previous_run_active(pipe: Any, spec: ScheduleSpec, last_job: str) -> bool:
        """Whether overlap `skip` holds this pass's fires back: the last fire's job is still active."""
        if spec.overlap != "skip" or not last_job:
            return False
        state = pipe.hget(f"rq:job:{last_job}", "js_state")
        return state is not None and state.decode() in ACTIVE_STATES

    def _fire_batch(self, spec: ScheduleSpec, fires: Sequence[int], late_ms: int, busy: bool) -> _FireBatch:
        """The jobs and run records of a pass's fires; fires before `late_ms` are catch-ups."""
        batch = _FireBatch()
        for fire in fires:
            job_id = f"{spec.id}:{fire}"
            trigger = "catchup" if fire < late_ms else "schedule"
            record: dict[str, Any] = {"job_id": job_id, "scheduled_ms": fire, "trigger": trigger}
            if busy:
                batch.skip(record, "previous run still active (overlap: skip)")
                continue
            try:
                job, extra = self.job_for(spec, job_id)
            except (NotFound, Disabled, ValidationError) as exc:
                batch.skip(record, str(exc))
                continue
            batch.enqueue(job, extra, record)
            busy = spec.overlap == "skip"
        return batch

    def _advance(self, pipe: Any, sid: str, next_ms: int, plan: cron.Plan, batch: _FireBatch) -> None:
        """Enqueue the batch and move the next fire time on, in one MULTI/EXEC under the WATCH."""
        calls = self.client.enqueue_calls(batch.jobs, batch.extras) if batch.jobs else []
        pipe.multi()
        for name, keys, args in calls:
            pipe.eval(scripts.SOURCES[name], len(keys), *keys, *args)
        last_fire = batch.last_job.rpartition(":")[2] if batch.last_job else ""
        pipe.eval(scripts.SOURCES["schedule_advance"], 0, self.prefix, sid, next_ms,
                  "" if plan.next_ms is None else plan.next_ms, batch.last_job, last_fire,
                  defaults.SCHEDULE_RUNS_KEPT, len(batch.jobs), batch.skipped, plan.missed,
                  len(batch.records) // 4, *batch.records)
        replies = pipe.execute()
        try:
            scripts.check(replies[-1], what=f"schedule {sid}")
        except (Conflict, NotFound):  # moved or deleted meanwhile (WATCH makes that unlikely): nothing recorded
            log.warning("schedule %s: next fire time moved during the pass", sid)

    def record_runs(self, after: str = "-inf", batch: int = defaults.SCHEDULE_RECORD_BATCH) -> tuple[int, str]:
        """Copy the outcomes of finished runs into their schedules' run history (round-robin over pending runs,
        `batch` per call). Returns (finalized, cursor for the next call)."""
        _, finalized, nxt, dropped = scripts.call(self.redis, "schedule_record", (), (self.prefix, batch, after))
        if dropped:
            log.warning("schedule runs %s cannot be recorded (a key of the wrong type, or a damaged record): "
                        "dropped from the pending runs", ", ".join(d.decode() for d in dropped))
        return int(finalized), nxt.decode() if isinstance(nxt, bytes) else str(nxt)


def _runs_cursor(cursor: str | None) -> tuple[float, str] | None:
    """A runs cursor `<scheduled ms>|<run id>` as (score, member); None from the first page."""
    if not cursor:
        return None
    after_score, sep, after_member = cursor.partition("|")
    try:
        after = (float(int(after_score)), after_member)
    except ValueError:
        raise ValidationError("bad runs cursor") from None
    if not sep:
        raise ValidationError("bad runs cursor")
    return after


def check_backoff(value: Any) -> Any:
    """A stored backoff dict as a Backoff (JobSpec accepts both a kind name and a Backoff)."""
    if isinstance(value, Mapping):
        from .backoff import Backoff

        return Backoff(**value)
    return value


def _record_json(record: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in record.items() if v is not None}, separators=(",", ":"))


def schedules_file(data: Any) -> tuple[str | None, list[Mapping[str, Any]]]:
    """The namespace (optional) and schedules of a schedules file: {namespace?, schedules: [{id, ...}]}
    or a bare list."""
    if isinstance(data, list):
        return None, data
    if not isinstance(data, Mapping) or "schedules" not in data:
        raise ValidationError("a schedules file is {schedules: [{id, function, cron | interval, ...}, ...]}")
    unknown = set(data) - {"namespace", "schedules"}
    if unknown:
        raise ValidationError(f"unknown top-level field(s): {', '.join(sorted(unknown))}")
    items = data["schedules"] or []
    if not isinstance(items, list):
        raise ValidationError("schedules must be a list")
    return data.get("namespace"), items


__all__ = ["FireResult", "Schedule", "ScheduleSpec", "Schedules", "SyncReport", "iso", "schedules_file"]
