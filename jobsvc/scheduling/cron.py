"""When a schedule fires: cron expressions (5 fields, or 6 with seconds first) in an IANA timezone, or a
fixed interval. Pure logic, no Redis: every function takes and returns epoch milliseconds.

Cron local times come from croniter on naive (wall-clock) datetimes and are mapped to instants here,
so daylight saving time is handled in one place:

- a local time skipped by a spring-forward gap fires once, at the first valid instant after the gap
  (2026-03-08 02:30 in America/New_York fires at 03:00 EDT);
- a local time repeated by a fall-back fires once, at its first occurrence (fold=0);
- local times that map to the same instant (every second of a gap) fire once.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .. import defaults
from ..errors import ValidationError
from ..validation import MISFIRE_POLICIES as MISFIRE_POLICIES  # re-exported: callers read cron.MISFIRE_POLICIES

UTC = timezone.utc


def zone(name: str) -> ZoneInfo:
    """An IANA timezone, or ValidationError."""
    if not isinstance(name, str) or not name:
        raise ValidationError("timezone must be an IANA name such as 'UTC' or 'Europe/Paris'")
    try:
        return _zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(f"unknown timezone {name!r} (use an IANA name such as 'Europe/Paris')") from None


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@functools.lru_cache(maxsize=4096)  # pure, and parsing dominated the firing pass: one parse per expression
def croniter_expr(expr: str) -> str:
    """The expression as croniter reads it, or ValidationError. Ours: 5 fields (minute hour day month
    weekday), or 6 with seconds FIRST (`*/10 * * * * *` = every 10 s), or an @alias (@hourly, @daily...).
    croniter wants seconds LAST, so a 6-field expression is rotated."""
    if not isinstance(expr, str) or not expr.strip():
        raise ValidationError("cron must be a cron expression such as '0 3 * * *'")
    text = " ".join(expr.split())
    if text.startswith("@"):
        out = text
    else:
        parts = text.split(" ")
        if len(parts) == 5:
            out = text
        elif len(parts) == 6:
            out = " ".join(parts[1:] + parts[:1])
        else:
            raise ValidationError(f"cron {expr!r} must have 5 fields (minute hour day month weekday) "
                                  "or 6 with seconds first")
    try:
        ok = croniter.is_valid(out)
        if ok:
            croniter(out, datetime(2026, 1, 1, tzinfo=timezone.utc))
    except Exception:  # noqa: BLE001 - croniter raises several types for bad input
        ok = False
    if not ok:
        raise ValidationError(f"cron {expr!r} is not a valid cron expression")
    return out


def to_ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


def from_ms(ms: int, tz: ZoneInfo | timezone = UTC) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz)


def local_to_ms(wall: datetime, tz: ZoneInfo) -> int:
    """The instant of a naive local time: its first occurrence when repeated (fold=0), the first valid
    instant after the gap when it does not exist."""
    aware = wall.replace(tzinfo=tz, fold=0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == wall:
        return to_ms(utc)
    # In a gap: the two readings (offset before / after the transition) bracket the transition instant;
    # find the first whole second that has the offset after it.
    a = int(wall.replace(tzinfo=tz, fold=0).timestamp())
    b = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    lo, hi = min(a, b), max(a, b)
    after = datetime.fromtimestamp(hi, tz).utcoffset()
    while lo < hi:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid + 1
    return lo * 1000


@dataclass(frozen=True)
class CronTiming:
    """Fires at the local times of a cron expression in a timezone."""

    expr: str
    tz: str = "UTC"
    # Derived from expr and tz once (and checked: ValidationError), in __post_init__.
    _croniter_expr: str = field(init=False, repr=False, compare=False)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_croniter_expr", croniter_expr(self.expr))
        object.__setattr__(self, "_zone", zone(self.tz))

    def next_after(self, ms: int) -> int | None:
        """The first fire instant strictly after `ms`."""
        tz = self._zone
        wall = from_ms(ms, tz).replace(tzinfo=None)
        it = croniter(self._croniter_expr, wall)
        # Local times whose instant is not after `ms`: those of a gap already passed, or (when `ms` is in the
        # second pass of a repeated hour) the repeated ones, whose first occurrence is over. Bounded by the
        # length of a DST shift in fire times (3,600 for a per-second schedule and a 1 h shift).
        for _ in range(defaults.CRON_SEARCH_LIMIT):
            try:
                nxt = it.get_next(datetime)
            except Exception:  # noqa: BLE001 - croniter gives up on expressions that never match again
                return None
            inst = local_to_ms(nxt, tz)
            if inst > ms:
                return inst
        return None


@dataclass(frozen=True)
class IntervalTiming:
    """Fires every `interval_ms`, counted from `anchor_ms` (the start date, or when the schedule was made)."""

    interval_ms: int
    anchor_ms: int

    def __post_init__(self) -> None:
        if self.interval_ms < defaults.SCHEDULE_MIN_INTERVAL * 1000:
            raise ValidationError(f"interval must be at least {defaults.SCHEDULE_MIN_INTERVAL:g} s")

    def next_after(self, ms: int) -> int | None:
        if ms < self.anchor_ms:
            return self.anchor_ms
        return self.anchor_ms + ((ms - self.anchor_ms) // self.interval_ms + 1) * self.interval_ms


Timing = CronTiming | IntervalTiming


@dataclass(frozen=True)
class Window:
    """A timing limited to [start_ms, end_ms] (either may be None)."""

    timing: Timing
    start_ms: int | None = None
    end_ms: int | None = None

    def next_after(self, ms: int) -> int | None:
        if self.start_ms is not None and ms < self.start_ms:
            ms = self.start_ms - 1
        nxt = self.timing.next_after(ms)
        if nxt is None or (self.end_ms is not None and nxt > self.end_ms):
            return None
        return nxt

    def fires(self, after_ms: int, until_ms: int, limit: int) -> list[int]:
        """Up to `limit` fire instants in (after_ms, until_ms]."""
        out: list[int] = []
        ms = after_ms
        while len(out) < limit:
            nxt = self.next_after(ms)
            if nxt is None or nxt > until_ms:
                break
            out.append(nxt)
            ms = nxt
        return out


@dataclass(frozen=True)
class Plan:
    """What one pass does for one due schedule: the fire instants to enqueue (`catchup` marks a run_once
    catch-up fire), how many missed fires it drops, and the schedule's next fire time (None: no more)."""

    fires: list[int]
    catchup: int | None
    missed: int
    next_ms: int | None




def plan(window: Window, next_ms: int, now_ms: int, policy: str, grace_ms: int, max_catchup: int,
         limit: int = defaults.SCHEDULE_FIRES_PER_PASS) -> Plan:
    """The fires due at `now_ms` for a schedule whose stored next fire is `next_ms` (<= now_ms).

    Fires within `grace_ms` of now are on time and always run. Older ones were missed (the scheduler was
    down): `skip` drops them, `run_once` runs the first of them once for all of them (id of that fire
    time), `run_all` runs them oldest first, at most `max_catchup`, and drops the rest. Work is bounded:
    at most `limit` on-time fires (the rest wait for the next pass) and CRON_SEARCH_LIMIT missed fires are
    looked at before jumping to the on-time window. Deterministic in (next_ms, now_ms), so two schedulers
    that both think they lead compute the same fire ids."""
    if policy not in MISFIRE_POLICIES:
        raise ValidationError(f"misfire must be one of {', '.join(MISFIRE_POLICIES)}")
    cutoff = now_ms - grace_ms
    fires: list[int] = []
    catchup = None
    missed = 0
    f: int | None = next_ms
    seen = 0
    while f is not None and f < cutoff:
        if policy == "run_all" and len(fires) < max_catchup:
            fires.append(f)
        elif policy == "run_once" and catchup is None:
            catchup = f
            fires.append(f)
        else:
            missed += 1
        seen += 1
        if seen >= max(defaults.CRON_SEARCH_LIMIT, max_catchup):
            # A long outage: stop counting, continue from the on-time window.
            f = window.next_after(cutoff - 1)
            break
        f = window.next_after(f)
    ontime = 0
    while f is not None and f <= now_ms and ontime < limit:
        fires.append(f)
        ontime += 1
        f = window.next_after(f)
    return Plan(fires, catchup, missed, f)
