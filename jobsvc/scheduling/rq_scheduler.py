"""rq-scheduler's Redis format (checked against rq-scheduler 0.14 with rq 2.12), read by the promoter and the
import. rq-scheduler keeps every job it holds, one-off and recurring, in one zset
(`Keys.rq_scheduler_jobs`), scored by due time in epoch seconds; each job is an ordinary RQ job hash
(status `scheduled`, its queue in `origin`). A recurring job says so in its `meta` (a pickle, RQ's default
serializer): `interval` (seconds, with `Scheduler.schedule`) or `cron_string` (with `Scheduler.cron`), and
`repeat`, the fires it has left. rq-scheduler re-enqueues the same job id at each fire.

The promoter walks that zset a page at a time (`page_after`): it adopts every one-off job it reads, due or not,
and leaves the recurring ones to the import."""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

import redis

from ..engine.connection import text
from ..engine.keys import Keys

# The meta keys rq-scheduler itself writes; the rest of a job's meta is the team's own.
OWN_META = ("interval", "repeat", "cron_string", "use_local_timezone", "queue_class_name")


def load_meta(raw: bytes | None) -> dict[str, Any]:
    """A job's `meta` field as RQ wrote it (pickle); {} when absent or unreadable."""
    if not raw:
        return {}
    try:
        meta = pickle.loads(raw)
    except Exception:  # noqa: BLE001 - unpickling raises whatever a damaged payload makes it raise
        return {}
    return meta if isinstance(meta, dict) else {}


def is_recurring(meta: dict[str, Any]) -> bool:
    """Whether rq-scheduler fires the job again after this fire (the promoter leaves those to rq-scheduler
    until they are imported as schedules)."""
    return bool(meta.get("interval")) or bool(meta.get("cron_string"))


@dataclass(frozen=True)
class Entry:
    """An entry of rq-scheduler's zset: where a page of the promoter's walk ended."""

    job_id: str
    score: float


@dataclass(frozen=True)
class Page:
    one_offs: list[str]  # the one-off ids read (and ids whose hash is gone: promote_rq.lua drops those)
    last_recurring: Entry | None  # the page's last recurring entry: it stays, so the next page starts after it
    full: bool  # `limit` entries were read: the zset may hold more after them


def page_after(conn: redis.Redis, after: Entry | None, limit: int) -> Page:
    """Up to `limit` entries of rq-scheduler's zset, due or not, in (score, id) order from just after `after`
    (from the first when None): O(limit + log n), however many recurring entries the zset holds. An `after` that
    left the zset or changed score (rq-scheduler re-scored a recurring job) resumes at the first entry of its
    old score; ties of one score (cron jobs all at 09:00) are walked by rank, never skipped nor looped on."""
    key = Keys().rq_scheduler_jobs
    start = 0
    if after is not None:
        with conn.pipeline(transaction=False) as pipe:
            pipe.zscore(key, after.job_id)
            pipe.zrank(key, after.job_id)
            pipe.zcount(key, "-inf", f"({after.score!r}")
            score, rank, before = pipe.execute()
        start = rank + 1 if score == after.score and rank is not None else before
    read: list[tuple[bytes, float]] = conn.zrange(key, start, start + limit - 1, withscores=True)  # type: ignore[assignment]
    entries = [(text(i), float(s)) for i, s in read]
    if not entries:
        return Page([], None, False)
    with conn.pipeline(transaction=False) as pipe:
        for job_id, _ in entries:
            pipe.hget(Keys.job(job_id), "meta")
        metas = pipe.execute()
    one_offs, last = [], None
    for (job_id, score), raw in zip(entries, metas, strict=True):
        if is_recurring(load_meta(raw)):
            last = Entry(job_id, score)
        else:
            one_offs.append(job_id)
    return Page(one_offs, last, len(entries) == limit)
