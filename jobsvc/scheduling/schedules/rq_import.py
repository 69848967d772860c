"""`jobsvc schedules import --from-rq-scheduler`: rq-scheduler's recurring jobs (`Scheduler.schedule(...,
interval=, repeat=)`, `Scheduler.cron(...)`) as jobsvc schedules. Its one-off jobs need no import: the
scheduler's RqPromoter moves them (jobsvc/scheduling/promotion.py).

How an entry maps (its job hash and meta: jobsvc/scheduling/rq_scheduler.py):
  * id `rq-<job id>` (characters a schedule id cannot hold become '-'); function, args and kwargs from the
    job's data; queue from `origin`; `timeout`, `failure_ttl`, `description` and the team's own `meta` as
    they are. `result_ttl` -1, rq-scheduler's default for periodic jobs (it kept the one job it reused
    forever), becomes jobsvc's default: each fire is now a job of its own, kept forever it would pile up.
  * interval: every `interval` seconds from the entry's due time (`start_at`), as rq-scheduler fired it.
  * cron: the same 5-field expression in `timezone`, the zone the old host ran in (rq-scheduler read cron in
    the host's local time whatever `use_local_timezone` said); the entry's due time is `start_at`.
  * repeat: the fires left (rq-scheduler's `repeat` counts down; 0 still fires once) become `end_at`, the
    last of them.

With `remove`, the import holds rq-scheduler's own lock (`Keys.rq_scheduler_lock`) from its first read to
its last removal: a running `rqscheduler` skips its passes meanwhile (as it does when another instance holds
it), so no entry fires in rq-scheduler between being read and being removed. Without `remove` nothing of
rq-scheduler's changes: while an `rqscheduler` still runs, an imported job fires from both."""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, cast

import redis

from ...engine.keys import Keys
from ...engine.serialization import load_data
from ...errors import AlreadyExists, Conflict, JobsvcError, ValidationError
from .. import cron
from ..rq_scheduler import OWN_META, is_recurring, load_meta
from .spec import DESCRIPTION_MAX, ScheduleSpec
from .store import ScheduleStore

# How long the import may hold rq-scheduler's lock (it releases it at once when done), and how long it
# waits for an rqscheduler pass that holds it.
LOCK_TTL_S = 60
LOCK_WAIT_S = 30.0


@dataclass(frozen=True)
class Entry:
    """One recurring rq-scheduler job: its schedule, or why it cannot become one."""

    job_id: str
    due_ms: int
    spec: ScheduleSpec | None = None
    problem: str | None = None
    notes: tuple[str, ...] = ()


@dataclass
class ImportReport:
    timezone: str
    dry_run: bool
    remove: bool
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)  # imported before: left as they are
    removed: list[str] = field(default_factory=list)  # rq-scheduler job ids taken out of its zset
    refused: dict[str, str] = field(default_factory=dict)  # rq-scheduler job id -> why
    entries: list[Entry] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"created": len(self.created), "existing": len(self.existing), "removed": len(self.removed),
                "refused": len(self.refused)}


def schedule_id(job_id: str) -> str:
    return ("rq-" + re.sub(r"[^A-Za-z0-9_.\-]", "-", job_id))[:64]


def _last_fire(spec: ScheduleSpec, due_ms: int, fires: int) -> int | None:
    """The instant of the `fires`-th fire from `due_ms` on (counting `due_ms` itself when it is one)."""
    ms: int | None = due_ms - 1
    timing = spec.window(due_ms).timing
    for _ in range(fires):
        ms = timing.next_after(ms) if ms is not None else None
    return ms


def _options(fields: dict[bytes, bytes], meta: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The job options of the schedule, from the job hash; and notes on what changed on the way."""
    f = {k.decode(): v.decode(errors="replace") for k, v in fields.items() if k not in (b"data", b"meta")}
    notes: list[str] = []
    out: dict[str, Any] = {"queue": f.get("origin") or None, "description": f.get("description", "")[:DESCRIPTION_MAX]}
    for name in ("timeout", "failure_ttl", "result_ttl"):
        if f.get(name) not in (None, "", "None"):
            out[name] = int(float(f[name]))
    if out.get("result_ttl") == -1:
        del out["result_ttl"]
        notes.append("result_ttl -1 -> jobsvc's default (each fire is a job of its own)")
    if f.get("ttl") not in (None, "", "None"):
        notes.append("job ttl (time to wait in the queue) is not carried over")
    own = {k: v for k, v in meta.items() if k not in OWN_META}
    if own:
        out["meta"] = own
    return out, notes


def entry_for(job_id: str, due_ms: int, fields: dict[bytes, bytes], tz: str) -> Entry:
    """The schedule one recurring entry becomes (not saved)."""
    meta = load_meta(fields.get(b"meta"))
    try:
        name, instance, args, kwargs = load_data(fields[b"data"])
    except Exception:  # noqa: BLE001 - unpickling raises whatever a damaged or foreign payload makes it raise
        return Entry(job_id, due_ms, problem="its data cannot be read (not RQ's pickle format?)")
    if instance is not None:
        return Entry(job_id, due_ms, problem=f"{name} is a method of an instance; a schedule names a function")
    timing: dict[str, Any] = {"interval": float(meta["interval"])} if meta.get("interval") else {}
    if meta.get("cron_string"):
        expr = " ".join(str(meta["cron_string"]).split())
        if len(expr.split(" ")) != 5:  # rq-scheduler's crontab reads 6 and 7 fields otherwise than jobsvc
            return Entry(job_id, due_ms, problem=f"cron {expr!r}: only 5-field expressions are imported")
        timing = {"cron": expr, "timezone": tz}
    options, notes = _options(fields, meta)
    try:
        spec = ScheduleSpec(id=schedule_id(job_id), function=name, args=list(args), kwargs=kwargs,
                            start_at=due_ms / 1000, **timing, **options)
        if meta.get("repeat") is not None:
            # rq-scheduler counts `repeat` down at each fire and stops after the one that reaches 0.
            last = _last_fire(spec, due_ms, max(int(meta["repeat"]), 1))
            spec = ScheduleSpec(**{**spec.spec_dict(), "end_at": None if last is None else last / 1000})
    except ValidationError as exc:
        return Entry(job_id, due_ms, problem=str(exc))
    return Entry(job_id, due_ms, spec=spec, notes=tuple(notes))


def read_entries(conn: redis.Redis, tz: str) -> list[Entry]:
    """Every recurring entry of rq-scheduler's zset, as the schedule it would become."""
    pairs = cast("list[tuple[bytes, float]]", conn.zrange(Keys().rq_scheduler_jobs, 0, -1, withscores=True))
    with conn.pipeline(transaction=False) as pipe:
        for job_id, _ in pairs:
            pipe.hgetall(Keys.job(job_id.decode()))
        hashes = pipe.execute()
    out = []
    for (raw_id, score), fields in zip(pairs, hashes, strict=True):
        if fields and is_recurring(load_meta(fields.get(b"meta"))):
            out.append(entry_for(raw_id.decode(), round(score * 1000), fields, tz))
    return out


def local_zone() -> str:
    """This machine's IANA zone name (TZ, else /etc/localtime's target), 'UTC' when it cannot be told."""
    import os

    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            name = os.path.realpath("/etc/localtime").split("zoneinfo/", 1)[1]
        except (IndexError, OSError):
            name = datetime.now(timezone.utc).astimezone().tzname() or "UTC"
    try:
        cron.zone(name)
    except ValidationError:
        return "UTC"
    return name


class _RqSchedulerLock:
    """rq-scheduler's own lock, taken as one of its instances takes it (SET NX EX), released only while it is
    still ours (rq-scheduler itself DELs unconditionally; we do not)."""

    def __init__(self, conn: redis.Redis):
        self.redis, self.key, self.token = conn, Keys().rq_scheduler_lock, f"jobsvc-import-{secrets.token_hex(8)}"

    def __enter__(self) -> None:
        deadline = time.monotonic() + LOCK_WAIT_S
        while not self.redis.set(self.key, self.token, nx=True, ex=LOCK_TTL_S):
            if time.monotonic() > deadline:
                raise Conflict(f"rq-scheduler's lock {self.key} stayed taken for {LOCK_WAIT_S:g} s: is an "
                               "rqscheduler process stuck? (nothing was imported)")
            time.sleep(0.1)  # an rqscheduler pass holds it for the time it takes to move its due jobs

    def __exit__(self, *exc: object) -> None:
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(self.key)
                if pipe.get(self.key) == self.token.encode():
                    pipe.multi()
                    pipe.delete(self.key)
                    pipe.execute()
            except redis.WatchError:
                pass  # changed under us: no longer ours to delete


def import_rq_scheduler(store: ScheduleStore, tz: str, dry_run: bool = False, remove: bool = False) -> ImportReport:
    """Create a schedule for each recurring rq-scheduler entry (one imported before is left as it is); with
    `remove`, take each created or already imported entry out of rq-scheduler's zset."""
    cron.zone(tz)
    report = ImportReport(tz, dry_run, remove)
    if remove and not dry_run:
        with _RqSchedulerLock(store.redis):
            _import(store, report)
    else:
        _import(store, report)
    return report


def _import(store: ScheduleStore, report: ImportReport) -> None:
    report.entries = read_entries(store.redis, report.timezone)
    for entry in report.entries:
        if entry.spec is None:
            report.refused[entry.job_id] = entry.problem or "?"
            continue
        if report.dry_run:
            taken = store.redis.exists(store.key(entry.spec.id))
            (report.existing if taken else report.created).append(entry.spec.id)
            continue
        try:
            store.create(entry.spec)
            report.created.append(entry.spec.id)
        except AlreadyExists:
            report.existing.append(entry.spec.id)
        except JobsvcError as exc:
            report.refused[entry.job_id] = str(exc)
            continue
        if report.remove:
            store.redis.zrem(Keys().rq_scheduler_jobs, entry.job_id)
            report.removed.append(entry.job_id)
