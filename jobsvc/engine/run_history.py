"""A job's run history, one page at a time.

Stored: `<prefix>runs:<id>`, a list of JSON entries appended by the scripts that end an attempt other than
by success (fail, reap_expired, terminate, handback, await_callback) and by complete.lua only for a success
with extras (an HTTP handler's status). A plain successful run writes no entry: the worker's hot path
(complete.lua) already writes the job hash's attempt, worker and start/end times, so that run is read back off
the hash here (`synthesised`) instead of costing Redis a command per job.

Each run's id is `<job_id>.<n>`, n its 1-based position in that history (the synthesised run comes last):
the list is only ever appended to, so an id never changes or names another run, with no counter to keep.
(The attempt number is no id: a requeue starts attempts over, and a handed-back attempt is not counted.)
A page is an LRANGE of its positions, so it costs O(page) plus the distance from the list's nearer end.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from ..errors import NotFound, ValidationError
from .keys import Keys, template
from .states import State, state_of

RUN_ID_SEP = "."


@dataclass(frozen=True)
class RunPage:
    runs: list[dict[str, Any]]
    next_cursor: str | None  # the position after this page, or None at the end


def run_id(job_id: str, position: int) -> str:
    return f"{job_id}{RUN_ID_SEP}{position}"


def parse_cursor(cursor: str | None) -> int:
    """The 0-based position a page starts at: a previous page's `next_cursor`, or the start."""
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 12:
        raise ValidationError(f"cursor {cursor[:40]!r} is not one this listing gave")
    return int(cursor)


def _ms(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _with_times(run: dict[str, Any], job_id: str, position: int, scheduled_ms: int | None) -> dict[str, Any]:
    """The entry as the API shows it: its id, job and schedule time, and a duration for every kind of job
    (a handler's own call time where the entry has one, else end minus start)."""
    run = dict(run, id=run_id(job_id, position), job_id=job_id, scheduled_ms=scheduled_ms)
    if run.get("duration_ms") is None and run.get("started_ms") is not None and run.get("ended_ms") is not None:
        run["duration_ms"] = max(0, int(run["ended_ms"]) - int(run["started_ms"]))
    return run


def synthesised(fields: dict[str, str], last: dict[str, Any] | None) -> dict[str, Any] | None:
    """The successful last run a completed job has in its hash only (`fields`: decoded); None when the job is
    not completed or its success wrote its own entry (`last`, the stored history's last entry)."""
    if not fields or state_of(fields) != State.COMPLETED:
        return None
    if last is not None and last.get("outcome") == "completed":
        return None
    return {"attempt": int(fields.get("js_attempts") or 1), "worker": fields.get("worker_name") or None,
            "started_ms": _ms(fields.get("js_started_ms")), "ended_ms": _ms(fields.get("js_ended_ms")),
            "outcome": "completed"}


# What the synthesised run and the schedule time need: HMGET, not the whole hash.
HASH_FIELDS = ("status", "js_state", "js_attempts", "worker_name", "js_started_ms", "js_ended_ms", "js_schedule")


def runs_page(conn: redis.Redis, keys: Keys, job_id: str, cursor: str | None = None,
              limit: int | None = None, queue: str | None = None) -> RunPage:
    """Runs of the job, oldest first, from `cursor` on, at most `limit` (None: all). NotFound if no such job.
    `queue`: on a Redis Cluster the job's (its keys carry the queue's tag, docs/cluster.md); None on one Redis."""
    start = parse_cursor(cursor)
    if limit is not None and limit < 1:
        raise ValidationError("limit must be >= 1")
    key = template("runs", keys.prefix, queue) % job_id
    stop = -1 if limit is None else start + limit - 1
    pipe = conn.pipeline(transaction=False)
    pipe.lrange(key, start, stop)
    pipe.llen(key)
    pipe.lindex(key, -1)
    pipe.hmget(template("job", keys.prefix, queue) % job_id, *HASH_FIELDS)
    raw, stored, last, values = pipe.execute()
    if values[0] is None and not stored:  # every job hash, RQ's included, has a status
        raise NotFound(f"no job {job_id}")
    fields = {k: v.decode(errors="replace") for k, v in zip(HASH_FIELDS, values, strict=True) if v is not None}
    scheduled_ms = _scheduled_ms(conn, keys, job_id, fields.get("js_schedule"), queue)
    runs = [_with_times(json.loads(r), job_id, start + i + 1, scheduled_ms) for i, r in enumerate(raw)]
    extra = synthesised(fields, json.loads(last) if last else None)
    total = stored + (extra is not None)
    if extra is not None and start <= stored and (limit is None or len(runs) < limit):
        runs.append(_with_times(extra, job_id, stored + 1, scheduled_ms))
    end = start + len(runs)
    return RunPage(runs, str(end) if limit is not None and end < total else None)


def _scheduled_ms(conn: redis.Redis, keys: Keys, job_id: str, schedule: str | None,
                  queue: str | None) -> int | None:
    """When the schedule that fired this job meant it to run (its run record's score); None for other jobs.
    Every run of the job shares it: retries are attempts of that one fire."""
    if not schedule:
        return None
    score = conn.zscore(template("schedule_runs", keys.prefix, queue) % schedule, job_id)  # a cluster: its own slot
    return int(score) if score is not None else None


__all__ = ["RUN_ID_SEP", "RunPage", "parse_cursor", "run_id", "runs_page", "synthesised"]
