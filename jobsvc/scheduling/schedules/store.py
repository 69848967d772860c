"""Schedules in Redis: create, change, delete, read and list them (`ScheduleStore`, the base of
`Schedules`: its connection and key names, which the other parts use)."""
from __future__ import annotations

# ScheduleStore.list shadows the builtin in the class body: annotations there name builtins.list.
import builtins
import json
import secrets
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, cast

from ...engine import directory, scripts
from ...engine.client import Client
from ...engine.connection import is_cluster, redis_ms, text
from ...engine.functions import Function, Registry, parse_ref
from ...engine.job import DEFAULT_NAMESPACE, JobSpec
from ...engine.keys import OWN_SLOT, template
from ...engine.versioned import Mode, VersionedStore
from ...errors import NotFound, ValidationError
from ...http.urlguard import check_url
from .spec import ACTIVE_STATES, SCHEDULE_ID, TIMING_FIELDS, Schedule, ScheduleSpec

# On a Redis Cluster every key the schedule scripts touch is in the schedules' own slot, `{#schedules}`
# (keys.OWN_SLOT), given to each call as its scope the way a queue is: the schedules' keys, their wake-up list, and
# their counters of fires (`schedule_stats`: runs, skipped, missed, runtime). The outcome counters (completed,
# failed) that complete.lua, fail.lua and reap_expired.lua bump stay in the slot of the job's queue (same family,
# that queue's tag); a schedule's read sums both. No queue is named so: '#' is in no queue name.
SCHEDULES_SLOT = "#" + OWN_SLOT["schedule"]


class ScheduleStore(VersionedStore):
    """Create, read, change, delete and list cron schedules; `Schedules` adds running, run history and sync."""

    kind = "schedule"
    save_script = "schedule_save"

    def __init__(self, client: Client):
        super().__init__(client)
        self.registry = Registry(client)
        self.slot = SCHEDULES_SLOT if is_cluster(self.redis) else None  # None: a single Redis, its names unchanged
        self.scope = scripts.scope_of(self.slot)  # the `keys` of a schedule script's call

    # keys: named in keys.py (the Lua scripts build the same names)
    def name(self, family: str, *names: object) -> str:
        """A key of the schedules (`schedule`, `schedule_stats` ...) in this Redis's layout."""
        return template(family, self.prefix, self.slot) % names

    def job_key(self, queue: str, job_id: str) -> str:
        """A fired job's hash (its queue's slot on a cluster)."""
        return template("job", self.prefix, queue if self.slot else None) % job_id

    def key(self, schedule_id: str) -> str:
        return self.name("schedule", schedule_id)

    @property
    def index_key(self) -> str:
        return self.name("schedules")

    @property
    def due_key(self) -> str:
        return self.name("schedules_due")

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
        self.check_fields(changes, (f.name for f in fields(ScheduleSpec)))
        if "id" in changes and changes["id"] != schedule_id:
            raise ValidationError("a schedule's id cannot change")

        def attempt() -> Schedule:
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
            self._save(new, "update", expected_version=version, previous=spec)
            return self.get(schedule_id)

        return self.retry_on_conflict(schedule_id, attempt)

    def enable(self, schedule_id: str) -> Schedule:
        return self.patch(schedule_id, enabled=True)

    def disable(self, schedule_id: str) -> Schedule:
        return self.patch(schedule_id, enabled=False)

    def delete(self, schedule_id: str) -> None:
        """Remove a schedule, its counts and run history; jobs it fired stay."""
        self._check_id(schedule_id)
        # On a cluster its outcome counters are in the slot of its jobs' queue: deleted after the schedule (a crash
        # in between leaves a small hash, which a schedule created again under this id would show).
        loaded = self._load_spec(schedule_id) if self.slot else None
        queue = self.fire_queues([loaded[0]])[0] if loaded is not None else ""
        scripts.check(scripts.call(self.redis, "schedule_delete", self.scope, (self.prefix, schedule_id)),
                      what=f"schedule {schedule_id}")
        if loaded is not None:
            self.redis.delete(template("schedule_stats", self.prefix, queue) % schedule_id)

    def _save(self, spec: ScheduleSpec, mode: Mode, expected_version: int | None = None,
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
        # schedule_save.lua's own arguments: whether to store a next fire time, that time, and now.
        self.save_entry(spec.id, (spec.id,), spec.def_json(), spec.enabled, mode, expected_version,
                        ("1" if set_next else "0", "" if nxt is None else nxt, now), self.scope)

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
            pipe.hgetall(self.name("schedule_stats", sid))
        replies = pipe.execute()
        rows = []
        for i, sid in enumerate(ids):
            raw, stats = replies[2 * i], replies[2 * i + 1]
            if raw and b"def" in raw:
                h = {k.decode(): v.decode() for k, v in raw.items()}
                rows.append((sid, h, ScheduleSpec.from_def(h["def"]), {k.decode(): int(v) for k, v in stats.items()}))
        # The last job's state (running or not, read in its job's queue) and its run record; on a cluster also the
        # outcome counters that the jobs' scripts bumped in the slot of the queue the schedule fires into.
        lasts = [h.get("last_job", "") for _, h, _, _ in rows]
        job_queues = self.job_queues([last for last in lasts if last])
        fire_queues = self.fire_queues([spec for _, _, spec, _ in rows])
        pipe = self.redis.pipeline(transaction=False)
        for (sid, _, _, _), last, fire_queue in zip(rows, lasts, fire_queues, strict=True):
            pipe.hget(self.job_key(job_queues.get(last, fire_queue), last), "js_state")
            pipe.hget(self.name("schedule_run", sid), last)
            if self.slot:
                pipe.hgetall(template("schedule_stats", self.prefix, fire_queue) % sid)
        states = pipe.execute()
        step = 3 if self.slot else 2
        out = []
        for i, (_, h, spec, stats) in enumerate(rows):
            if self.slot:
                for k, v in states[step * i + 2].items():
                    stats[k.decode()] = stats.get(k.decode(), 0) + int(v)
            out.append(self._schedule(h, spec, stats, states[step * i], states[step * i + 1]))
        return out

    def fire_queues(self, specs: Sequence[ScheduleSpec]) -> builtins.list[str]:
        """The queue each schedule's jobs go to now, as `job_for` builds them: its own queue, else its registry
        function's, else the default queue. On a cluster its outcome counters are there (the jobs' scripts bump
        them in their queue's slot); a job already fired is looked up by its id instead (`job_queues`): the
        schedule or its function may have changed queue since. One round trip to the registry's slot when a
        registry function's schedule has no queue of its own (none on a single Redis, whose names have none)."""
        if not self.slot:
            return [JobSpec.queue for _ in specs]
        refs = sorted({s.function for s in specs if s.queue is None and s.from_registry and s.function})
        functions: dict[str, str | None] = {}
        if refs:
            pipe = self.redis.pipeline(transaction=False)
            for ref in refs:
                pipe.hgetall(self.registry.key(*parse_ref(ref)))
            for ref, raw in zip(refs, pipe.execute(), strict=True):  # one HGETALL reply per function asked
                # A function deleted since: its schedule fires nothing more; read in the default queue, whose counters
                # are then not those of its earlier jobs (as after a change of queue).
                functions[ref] = Function._from_hash(*parse_ref(ref), raw).queue if raw else None
        return [s.queue or (functions.get(s.function) if s.function else None) or JobSpec.queue for s in specs]

    def job_queues(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The queue of each fired job, by its id (on a cluster the id directory, one round trip per master: the
        schedule, or its registry function, may have moved to another queue since the fire); {} on a single Redis,
        whose job names have no queue, and for an id without an entry (its job gone)."""
        if not self.slot or not job_ids:
            return {}
        return directory.queues_of(self.redis, self.prefix, job_ids)

    @staticmethod
    def _schedule(h: dict[str, str], spec: ScheduleSpec, stats: dict[str, int], state_raw: bytes | None,
                  record_raw: bytes | None) -> Schedule:
        """A schedule as read: its hash, definition and counters, and its last job's state and run record."""
        last_job = h.get("last_job") or None
        last_run = None
        running = False
        if last_job:
            state = state_raw.decode() if state_raw else None
            record = json.loads(record_raw) if record_raw else {}
            running = state in ACTIVE_STATES
            last_run = {"job_id": last_job, "scheduled_ms": int(h.get("last_fire_ms") or 0) or None,
                        "status": state or record.get("status", "unknown")}
        status = "disabled" if not spec.enabled else "running" if running else "idle"
        n = stats.get("runtime_n", 0)
        return Schedule(**{f.name: getattr(spec, f.name) for f in fields(ScheduleSpec)},
                        version=int(h["version"]), created_ms=int(h["created_ms"]),
                        updated_ms=int(h["updated_ms"]),
                        next_run_ms=int(h["next_ms"]) if h.get("next_ms") and spec.enabled else None,
                        last_run=last_run, status=status, runs=stats.get("runs", 0),
                        completed=stats.get("completed", 0), failed=stats.get("failed", 0),
                        skipped=stats.get("skipped", 0), missed=stats.get("missed", 0),
                        avg_runtime_ms=round(stats.get("runtime_ms", 0) / n, 1) if n else None)

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
