"""Firing schedules: the job a fire enqueues (`job_for`), a run now (`execute`), and the scheduler's pass
over the due schedules (`fire_due`)."""
from __future__ import annotations

# Annotations name builtins.list, as in ScheduleStore (whose `list` method shadows the builtin).
import builtins
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from ... import defaults
from ...allowlist import ORIGIN_API, ORIGIN_FIELD
from ...engine import scripts
from ...engine.client import Client
from ...engine.connection import TRANSIENT, redis_ms
from ...engine.enqueueing import enqueue
from ...engine.job import DEFAULT_NAMESPACE, JobSpec
from ...errors import Conflict, Disabled, FunctionMissing, NotFound, ValidationError
from .. import cron
from ..cron import Window
from .runs import _record_json
from .spec import ACTIVE_STATES, ScheduleSpec
from .store import ScheduleStore

log = logging.getLogger("jobsvc.schedules")


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


class ScheduleFiring(ScheduleStore):
    """Running the stored schedules: on their timing (`fire_due`) or now (`execute`)."""

    def job_for(self, spec: ScheduleSpec, job_id: str) -> tuple[JobSpec, dict[str, str]]:
        """The job one fire of `spec` enqueues, and its extra hash fields. NotFound / Disabled when its
        registry function is missing or disabled."""
        options: dict[str, Any] = {k: getattr(spec, k) for k in ("queue", "priority", "max_attempts", "timeout",
                                                                 "result_ttl", "failure_ttl", "meta")}
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
        args = (self.prefix, spec.id, "*", "", job_id, now, defaults.SCHEDULE_RUNS_KEPT, 1, 0, 0, 1, job_id, now,
                _record_json(record), 1)
        if self.slot:  # two slots on a cluster: the job first, as a fire (_advance)
            enqueue(self.redis, self.client.config, [job], [extra])
            reply = scripts.call(self.redis, "schedule_advance", self.scope, args)
        else:
            pipe = self.redis.pipeline(transaction=True)
            enqueue(self.redis, self.client.config, [job], [extra], pipe=pipe)
            pipe.execute_command("EVAL", scripts.SOURCES["schedule_advance"],
                                 *scripts.command("schedule_advance", self.scope, args))
            reply = pipe.execute()[-1]
        with contextlib.suppress(NotFound):  # deleted meanwhile: the job is enqueued, with no history to record it
            scripts.check(reply, what=f"schedule {spec.id}")
        return job_id
    # -- the scheduler's pass --------------------------------------------------------------------------

    def fire_due(self, now_ms: int | None = None, batch: int = defaults.SCHEDULE_BATCH,
                 cache: dict[str, Any] | None = None) -> FireResult:
        """Fire every schedule due at `now_ms` (Redis time when None), at most `batch` schedules; the CronFirer
        pass. One round trip when nothing is due (two on a cluster)."""
        if now_ms is None and self.slot:
            now_ms = redis_ms(self.redis)  # a cluster's pipeline refuses TIME (a command of no key, so of no node)
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
            except TRANSIENT:  # Redis away, or a cluster in a failover: the pass fails, the schedule is not to blame
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
        busy = self._previous_run_active(self.redis if self.slot else pipe, spec,
                                         raw[3].decode() if raw[3] else "")
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

    def _previous_run_active(self, conn: Any, spec: ScheduleSpec, last_job: str) -> bool:
        """Whether overlap `skip` holds this pass's fires back: the last fire's job is still active. `conn`: the
        watched pipeline, or on a cluster the client (the job's slot is not the watched schedule's), where the job
        is read in the queue it went to, found by its id (the schedule or its function may have moved since)."""
        if spec.overlap != "skip" or not last_job:
            return False
        queue = self.job_queues([last_job]).get(last_job) if self.slot else ""
        if queue is None:
            return False  # no entry: its job is gone
        state = conn.hget(self.job_key(queue, last_job), "js_state")
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
        """Enqueue the batch and move the next fire time on, in one MULTI/EXEC under the WATCH.

        On a Redis Cluster the jobs' queue and the schedules are two slots, so two steps, the jobs first (outside
        the MULTI), then the advance (under the WATCH). Why this order never loses nor repeats a fire: until the
        advance, the schedule is as it was, so after a crash (or a lost WATCH) between the steps the next pass
        plans the same fires with the same job ids (`<schedule>:<fire ms>`), and enqueue.lua answers an id that
        exists with that job, creating nothing. The other order would lose a fire: the schedule moved on and its
        job never enqueued. (A job of result_ttl 0 that already ran and was deleted before that next pass would
        be enqueued again; a misfire policy may then count a fire as missed that did run.)"""
        if self.slot:
            enqueue(self.redis, self.client.config, batch.jobs, batch.extras)
            pipe.multi()
        else:
            pipe.multi()
            enqueue(self.redis, self.client.config, batch.jobs, batch.extras, pipe=pipe)
        last_fire = batch.last_job.rpartition(":")[2] if batch.last_job else ""
        # EVAL by hand: the same command as Pipeline.eval sends, which a cluster's pipeline does not offer.
        args = (self.prefix, sid, next_ms, "" if plan.next_ms is None else plan.next_ms, batch.last_job, last_fire,
                defaults.SCHEDULE_RUNS_KEPT, len(batch.jobs), batch.skipped, plan.missed, len(batch.records) // 4,
                *batch.records)
        pipe.execute_command("EVAL", scripts.SOURCES["schedule_advance"],
                             *scripts.command("schedule_advance", self.scope, args))
        replies = pipe.execute()
        try:
            scripts.check(replies[-1], what=f"schedule {sid}")
        except (Conflict, NotFound):  # moved or deleted meanwhile (WATCH makes that unlikely): nothing recorded
            log.warning("schedule %s: next fire time moved during the pass", sid)


def check_backoff(value: Any) -> Any:
    """A stored backoff dict as a Backoff (JobSpec accepts both a kind name and a Backoff)."""
    if isinstance(value, Mapping):
        from ...engine.backoff import Backoff

        return Backoff(**value)
    return value
