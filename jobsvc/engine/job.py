"""What one job looks like to Python callers: its options on the way in, its record on the way out."""
from __future__ import annotations

import json
import pickle
from base64 import b64decode
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .. import defaults
from ..errors import ValidationError
from ..validation import (
    CALLBACK_TIMEOUT,
    MAX_ATTEMPTS,
    NAMESPACE_NAME,
    PRIORITY,
    QUEUE_NAME,
    check_idempotency_key,
    is_name,
)
from .backoff import Backoff
from .states import State, state_of

DEFAULT_NAMESPACE = "default"
# Dependencies one job may name: releasing a dependent reads the status of each of its dependencies, inside
# the script that ends the last one (release_dependents in _lib.lua), so this bounds that part of the work.
DEPENDS_ON_MAX = 100


@dataclass
class JobSpec:
    """One job to enqueue: the call and its options, validated on creation."""

    func: Callable[..., Any] | str | None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = "default"
    namespace: str = DEFAULT_NAMESPACE
    delay: float | timedelta | None = None
    at: datetime | float | None = None
    priority: int = defaults.PRIORITY
    max_attempts: int | None = None
    backoff: Backoff | str | None = None
    timeout: int | None = None
    idempotency_key: str | None = None
    result_ttl: int | None = None
    failure_ttl: int | None = None
    job_id: str | None = None
    description: str | None = None
    meta: dict[str, Any] | None = None
    # An HTTP handler job names a URL instead of a Python callable (func None) and carries a JSON payload.
    handler: str | None = None
    payload: Any = None
    callback_url: str | None = None
    callback_timeout: int | None = None
    # Jobs this one waits for (RQ's depends_on): ids, or anything with an `id` (Enqueued, JobInfo, an RQ Job);
    # normalised to a tuple of ids. It stays deferred until all of them complete (or end, failed included,
    # with allow_failure).
    depends_on: Any = None
    allow_failure: bool = False

    def __post_init__(self) -> None:
        self._check_http()
        self._check_dependencies()
        if not is_name(self.queue, QUEUE_NAME):
            raise ValidationError(f"queue name {self.queue!r} must be 1-128 of A-Z a-z 0-9 _ . : -")
        if not is_name(self.namespace, NAMESPACE_NAME):
            raise ValidationError(f"namespace {self.namespace!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        if isinstance(self.priority, bool) or not isinstance(self.priority, int) or not PRIORITY.holds(self.priority):
            raise ValidationError(f"priority must be an integer {PRIORITY}")
        if self.max_attempts is not None and not MAX_ATTEMPTS.holds(int(self.max_attempts)):
            raise ValidationError(f"max_attempts must be {MAX_ATTEMPTS}")
        if isinstance(self.backoff, str):
            self.backoff = Backoff(kind=self.backoff)
        if self.timeout is not None and self.timeout != -1 and self.timeout <= 0:
            raise ValidationError("timeout must be > 0 seconds, or -1 for none")
        if self.delay is not None and self.at is not None:
            raise ValidationError("give delay or at, not both")
        if self.delay is not None and self.delay_ms() < 0:
            raise ValidationError("delay must be >= 0")
        if self.job_id is not None and not is_name(self.job_id, QUEUE_NAME):
            raise ValidationError("job_id must be 1-128 of A-Z a-z 0-9 _ . : -")
        if self.idempotency_key is not None:  # one rule for Python callers and the HTTP API
            check_idempotency_key(self.idempotency_key)
        for name in ("result_ttl", "failure_ttl"):
            v = getattr(self, name)
            if v is not None and v < -1:
                raise ValidationError(f"{name} must be >= -1 (-1 keeps forever)")

    def _check_dependencies(self) -> None:
        if not isinstance(self.allow_failure, bool):
            raise ValidationError("allow_failure must be true or false")
        if self.depends_on is None:
            if self.allow_failure:
                raise ValidationError("allow_failure applies to depends_on only")
            return
        items = self.depends_on if isinstance(self.depends_on, (list, tuple)) else [self.depends_on]
        ids: list[str] = []
        for item in items:
            job_id = item if isinstance(item, str) else getattr(item, "id", None)
            if not is_name(job_id, QUEUE_NAME):
                raise ValidationError(f"depends_on takes job ids (1-128 of A-Z a-z 0-9 _ . : -) or jobs, "
                                      f"not {item!r}")
            if job_id not in ids:
                ids.append(job_id)
        if len(ids) > DEPENDS_ON_MAX:
            raise ValidationError(f"depends_on names at most {DEPENDS_ON_MAX} jobs")
        if self.job_id is not None and self.job_id in ids:
            raise ValidationError("a job cannot depend on itself")
        if ids and (self.delay is not None or self.at is not None):
            raise ValidationError("a job with depends_on starts when its dependencies end: give no delay or at")
        if not ids and self.allow_failure:
            raise ValidationError("allow_failure applies to depends_on only")
        self.depends_on = tuple(ids) or None

    def _check_http(self) -> None:
        if self.handler is not None:
            if self.func not in (None, ""):
                raise ValidationError("give a function or a handler URL, not both")
            if not isinstance(self.handler, str) or not self.handler:
                raise ValidationError("handler must be an https URL")
            if self.args or self.kwargs:
                raise ValidationError("a handler job takes a JSON payload, not args or kwargs")
            if self.timeout is not None and not (
                defaults.HANDLER_TIMEOUT_MIN <= self.timeout <= defaults.HANDLER_TIMEOUT_MAX
            ):
                raise ValidationError(f"a handler's timeout must be {defaults.HANDLER_TIMEOUT_MIN}-"
                                      f"{defaults.HANDLER_TIMEOUT_MAX} seconds")
        elif self.func in (None, ""):
            raise ValidationError("a job needs a function (import path or callable) or a handler URL")
        if self.callback_timeout is not None:
            if self.handler is None:
                raise ValidationError("callback_timeout applies to handler jobs only")
            if not CALLBACK_TIMEOUT.holds(self.callback_timeout):
                raise ValidationError(f"callback_timeout must be {CALLBACK_TIMEOUT} seconds")
        if self.callback_url is not None and (not isinstance(self.callback_url, str) or not self.callback_url):
            raise ValidationError("callback_url must be an https URL")
        if self.payload is not None:
            try:
                text = payload_json(self.payload)
            except (TypeError, ValueError):
                raise ValidationError("payload must be JSON (objects, arrays, strings, numbers, booleans, "
                                      "null)") from None
            if len(text) > defaults.PAYLOAD_MAX:
                raise ValidationError(f"payload is over {defaults.PAYLOAD_MAX} bytes as JSON")

    @property
    def trigger(self) -> str:
        """How the job starts: now, after a delay, or at a time."""
        if self.at is not None:
            return "scheduled"
        return "delayed" if self.delay_ms() > 0 else "immediate"

    def delay_ms(self) -> int:
        if self.delay is None:
            return 0
        seconds = self.delay.total_seconds() if isinstance(self.delay, timedelta) else float(self.delay)
        return round(seconds * 1000)

    def at_ms(self) -> int:
        if self.at is None:
            return 0
        if isinstance(self.at, datetime):
            at = self.at if self.at.tzinfo else self.at.replace(tzinfo=timezone.utc)
            return round(at.timestamp() * 1000)
        return round(float(self.at) * 1000)


def payload_json(value: Any) -> str:
    """A payload as the compact JSON text stored in the job hash (and POSTed to handlers)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def handler_name(url: str) -> str:
    """The name a handler job is listed and counted under: its URL without query or fragment, which
    may carry secrets."""
    return url.split("#", 1)[0].split("?", 1)[0]


def decode_hash(raw: dict[bytes, bytes]) -> dict[str, Any]:
    """A job hash with text fields decoded; `data` and `meta` stay bytes."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key = k.decode()
        out[key] = v if key in ("data", "meta") else v.decode(errors="replace")
    return out


def _ms(fields: dict[str, Any], name: str) -> int | None:
    v = fields.get(name)
    return int(float(v)) if v not in (None, "") else None


@dataclass
class JobInfo:
    """A job as stored: what `Client.get` returns."""

    id: str
    state: State
    queue: str
    namespace: str
    trigger: str
    func_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    priority: int
    attempts: int
    max_attempts: int
    lease_losses: int
    worker: str | None
    lease_expires_ms: int | None
    due_ms: int | None
    created_ms: int | None
    started_ms: int | None
    ended_ms: int | None
    error: str | None
    timeout: int | None
    progress: int | None = None
    progress_message: str | None = None
    enqueued_ms: int | None = None
    disabled: bool = False  # held by Client.disable: not claimed until enabled
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_hash(cls, job_id: str, raw: dict[bytes, bytes], default_max_attempts: int) -> JobInfo:
        """`default_max_attempts` is no longer read: a job without js_max_attempts was enqueued with RQ's own API
        and follows RQ's Retry (_max_attempts); the parameter stays for callers."""
        from .serialization import load_data

        f = decode_hash(raw)
        try:
            name, _, args, kwargs = load_data(f["data"])
        except Exception:  # noqa: BLE001 - a job whose data cannot be read is still shown
            name, args, kwargs = "<unreadable>", (), {}
        return cls(
            id=job_id, state=state_of(f), queue=f.get("origin", ""), namespace=f.get("js_ns", DEFAULT_NAMESPACE),
            trigger=f.get("js_trigger", "queue"), func_name=name, args=args, kwargs=kwargs,
            priority=_priority(f), attempts=int(f.get("js_attempts", 0)),
            max_attempts=_max_attempts(f),
            lease_losses=int(f.get("js_lease_losses", 0)), worker=f.get("worker_name") or None,
            lease_expires_ms=_ms(f, "js_lease_exp"), due_ms=_ms(f, "js_due"), created_ms=_ms(f, "js_created_ms"),
            started_ms=_ms(f, "js_started_ms"), ended_ms=_ms(f, "js_ended_ms"), error=f.get("js_error") or None,
            timeout=int(f["timeout"]) if f.get("timeout") else None, raw=f,
            progress=int(f["js_progress"]) if f.get("js_progress") else None,
            progress_message=f.get("js_progress_msg") or None, enqueued_ms=_rq_time_ms(f.get("enqueued_at")),
            disabled=bool(f.get("js_disabled")),
        )


def _max_attempts(fields: dict[str, Any]) -> int:
    """jobsvc's js_max_attempts (written on every job of jobsvc's API). A job enqueued with RQ's own API has none:
    it follows RQ's Retry (retry_plan in _lib.lua), so its attempts so far plus the ones retries_left still
    allows, counting the one a waiting job is about to get."""
    if fields.get("js_max_attempts"):
        return int(fields["js_max_attempts"])
    waiting = state_of(fields) in (State.QUEUED, State.SCHEDULED, State.DEFERRED)
    return int(fields.get("js_attempts") or 0) + int(fields.get("retries_left") or 0) + (1 if waiting else 0)


def _priority(fields: dict[str, Any]) -> int:
    """The job's priority; a pull job's js_priority is lifted into its queue's pull lanes (PULL_LANE_OFFSET)."""
    p = int(fields.get("js_priority", defaults.PRIORITY))
    return p - defaults.PULL_LANE_OFFSET if p > defaults.PRIORITY_MAX else p


def _rq_time_ms(value: str | None) -> int | None:
    """RQ's timestamp text as epoch milliseconds."""
    if not value:
        return None
    try:
        dt = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return int(dt.timestamp() * 1000)


def decode_result(entry: dict[bytes, bytes]) -> Any:
    value = entry.get(b"return_value")
    return pickle.loads(b64decode(value)) if value else None

