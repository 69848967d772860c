"""rq-scheduler's Redis format (checked against rq-scheduler 0.14 with rq 2.12), read by the promoter and the
import. rq-scheduler keeps every job it holds, one-off and recurring, in one zset
(`Keys.rq_scheduler_jobs`), scored by due time in epoch seconds; each job is an ordinary RQ job hash
(status `scheduled`, its queue in `origin`). A recurring job says so in its `meta` (a pickle, RQ's default
serializer): `interval` (seconds, with `Scheduler.schedule`) or `cron_string` (with `Scheduler.cron`), and
`repeat`, the fires it has left. rq-scheduler re-enqueues the same job id at each fire."""
from __future__ import annotations

import pickle
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


def due_one_offs(conn: redis.Redis, until_s: float, limit: int) -> list[str]:
    """The ids of rq-scheduler's one-off jobs due by `until_s` (epoch seconds), at most `limit` read.
    A job whose hash is gone counts as one-off: promote_rq.lua drops its entry, as rq-scheduler does."""
    key = Keys().rq_scheduler_jobs
    ids = [text(i) for i in conn.zrangebyscore(key, "-inf", until_s, start=0, num=limit)]
    if not ids:
        return []
    with conn.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(Keys.job(job_id), "meta")
        metas = pipe.execute()
    return [job_id for job_id, raw in zip(ids, metas, strict=True) if not is_recurring(load_meta(raw))]
