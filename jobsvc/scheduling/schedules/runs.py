"""A schedule's run history: reading it (`runs`) and copying finished runs' outcomes into it
(`record_runs`, the scheduler's recording pass)."""
from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Mapping
from typing import Any, cast

from ... import defaults
from ...engine import scripts
from ...engine.connection import text
from ...errors import NotFound, ValidationError
from ...validation import PAGE_LIMIT
from .spec import ACTIVE_STATES
from .store import ScheduleStore

log = logging.getLogger("jobsvc.schedules")


class ScheduleRuns(ScheduleStore):
    """Run history of the stored schedules."""

    def runs(self, schedule_id: str, cursor: str | None = None,
             limit: int = 50) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """The schedule's runs, newest first: job_id (None for a skipped fire), scheduled_ms, trigger
        (schedule | catchup | manual), status, started_ms, finished_ms, duration_ms, error. `cursor` comes
        from the previous page. Runs still in flight are read off their jobs."""
        self._check_id(schedule_id)
        if isinstance(limit, bool) or not isinstance(limit, int) or not PAGE_LIMIT.holds(limit):
            raise ValidationError(f"limit must be {PAGE_LIMIT}")
        if not self.redis.exists(self.key(schedule_id)):
            raise NotFound(f"no schedule {schedule_id}")
        page = self._runs_page(schedule_id, _runs_cursor(cursor), limit)
        more = len(page) > limit
        page = page[:limit]
        runs = self._run_records(schedule_id, page)
        self._read_live_runs(schedule_id, runs)
        next_cursor = f"{int(page[-1][1])}|{page[-1][0]}" if more and page else None
        return runs, next_cursor

    def _runs_page(self, schedule_id: str, after: tuple[float, str] | None,
                   limit: int) -> builtins.list[tuple[str, float]]:
        """(run id, scheduled ms) pairs after the cursor, newest first: more than `limit` when there is more."""
        top: str | float = "+inf" if after is None else after[0]
        # withscores: (member, score) pairs; redis-py's one return type covers the command without it too.
        entries = cast("builtins.list[tuple[bytes, float]]", self.redis.zrevrangebyscore(
            self.name("schedule_runs", schedule_id), top, "-inf", start=0, num=limit + 8, withscores=True))
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
        records = self.redis.hmget(self.name("schedule_run", schedule_id), [m for m, _ in page]) if page else []
        runs: builtins.list[dict[str, Any]] = []
        for (m, score), rec in zip(page, records, strict=True):  # HMGET answers one value per field asked
            r = json.loads(rec) if rec else {"job_id": m, "status": "unknown"}
            r.setdefault("scheduled_ms", int(score))
            runs.append({"job_id": r.get("job_id"), "scheduled_ms": r.get("scheduled_ms"),
                         "trigger": r.get("trigger", "schedule"), "status": r.get("status"),
                         "started_ms": r.get("started_ms"), "finished_ms": r.get("finished_ms"),
                         "duration_ms": r.get("duration_ms"), "error": r.get("error")})
        return runs

    def _read_live_runs(self, schedule_id: str, runs: builtins.list[dict[str, Any]]) -> None:
        """Runs still in flight when recorded: their status, times and error as their jobs have them now."""
        live = [run for run in runs if run["status"] in ACTIVE_STATES and run["job_id"]]
        if not live:
            return
        # On a cluster a job's hash is in its queue's slot, the one its fire went to (found by its id): a run without
        # a directory entry has no job left to read.
        queues = self.job_queues([run["job_id"] for run in live])
        pipe = self.redis.pipeline(transaction=False)
        for run in live:
            if self.slot and run["job_id"] not in queues:
                run["status"] = "unknown"
                continue
            pipe.hmget(self.job_key(queues.get(run["job_id"], ""), run["job_id"]), "js_state", "js_started_ms",
                       "js_ended_ms", "js_error")
        live = [run for run in live if run["status"] != "unknown"]
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

    def record_runs(self, after: str = "-inf", batch: int = defaults.SCHEDULE_RECORD_BATCH) -> tuple[int, str]:
        """Copy the outcomes of finished runs into their schedules' run history (round-robin over pending runs,
        `batch` per call). Returns (finalized, cursor for the next call)."""
        if self.slot:
            finalized, nxt, dropped = self._record_given(after, batch)
        else:
            _, finalized, raw_next, dropped = scripts.call(self.redis, "schedule_record", (),
                                                           (self.prefix, batch, after))
            nxt = text(raw_next)
        if dropped:
            log.warning("schedule runs %s cannot be recorded (a key of the wrong type, or a damaged record): "
                        "dropped from the pending runs", ", ".join(text(d) for d in dropped))
        return int(finalized), nxt

    def _record_given(self, after: str, batch: int) -> tuple[int, str, builtins.list[Any]]:
        """record_runs on a Redis Cluster, in two steps: the pending runs and their jobs are read first (each job in
        the slot of the queue it was enqueued into, found by its id in the id directory: the schedule may have
        moved to another queue since, and a registry function's job goes to the function's queue), then
        schedule_record.lua, in the schedules' slot, is given them. Nothing is lost between the steps: a run leaves
        the pending set only in the script."""
        low = "-inf" if after == "-inf" else f"({after}"
        items = cast("builtins.list[tuple[bytes, float]]", self.redis.zrangebyscore(
            self.name("schedules_pending"), low, "+inf", start=0, num=batch, withscores=True))
        if not items:
            return 0, "-inf", []
        runs = [text(m) for m, _ in items]
        queue_of = self.job_queues(runs)  # a run without an entry: its job is gone, read as gone (as its record)
        pipe = self.redis.pipeline(transaction=False)
        for m in runs:
            if m in queue_of:
                pipe.hmget(self.job_key(queue_of[m], m), "js_state", "status", "js_started_ms", "js_ended_ms",
                           "js_error")
        jobs = iter(pipe.execute())
        args: builtins.list[Any] = [self.prefix, batch, after, "given"]
        for m in runs:
            fields = next(jobs) if m in queue_of else [None] * 5
            args += [m, *("" if v is None else text(v) for v in fields)]
        _, finalized, _, dropped = scripts.call(self.redis, "schedule_record", self.scope, args)
        nxt = "-inf" if len(items) < batch else f"{items[-1][1]:.17g}"
        return int(finalized), nxt, dropped


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


def _record_json(record: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in record.items() if v is not None}, separators=(",", ":"))
