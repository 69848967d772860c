"""Batched reads of stored jobs for the API and dashboard, one round trip each: jobs by id, where jobs live
(queue and namespace, for a limited key's visibility checks), the jobs behind idempotency keys, and the latest
return values. Read-only; no job's state is decided here."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from ..engine.connection import text
from ..engine.job import DEFAULT_NAMESPACE, JobInfo, decode_result
from ..engine.keys import Keys

RESULT_OK = b"1"  # RQ's Result.Type.SUCCESSFUL in a results stream entry's `type`


def jobs(conn: redis.Redis, job_ids: Sequence[str], default_max_attempts: int) -> list[JobInfo | None]:
    """Each job as stored, None for one that is gone."""
    pipe = conn.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hgetall(Keys.job(job_id))
    return [JobInfo.from_hash(job_id, raw, default_max_attempts) if raw else None
            for job_id, raw in zip(job_ids, pipe.execute() if job_ids else [], strict=True)]


def places(conn: redis.Redis, job_ids: Sequence[str]) -> list[tuple[str, str] | None]:
    """Each job's (queue, namespace), None for one that is gone: what a key's limits are checked on."""
    pipe = conn.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hmget(Keys.job(job_id), "origin", "js_ns")
    out: list[tuple[str, str] | None] = []
    for queue, ns in pipe.execute() if job_ids else []:
        out.append(None if queue is None else (queue.decode(), ns.decode() if ns else DEFAULT_NAMESPACE))
    return out


def idempotent_ids(conn: redis.Redis, prefix: str, keyed: Sequence[tuple[str, str]]) -> list[str]:
    """The ids of the jobs that (namespace, idempotency key) pairs name now; pairs naming none are left out."""
    if not keyed:
        return []
    keys = Keys(prefix)
    return [text(i) for i in conn.mget([keys.idempotency(ns, key) for ns, key in keyed]) if i]


def latest_results(conn: redis.Redis, job_ids: Sequence[str], unreadable: Any) -> dict[str, Any]:
    """Each job's latest successful return value (None when it has none); `unreadable` for one this process
    cannot decode (a class it cannot import): that must not fail the read of the others."""
    pipe = conn.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.xrevrange(Keys.results(job_id), "+", "-", count=1)
    out: dict[str, Any] = {}
    for job_id, entries in zip(job_ids, pipe.execute() if job_ids else [], strict=True):
        if not entries or entries[0][1].get(b"type") != RESULT_OK:
            out[job_id] = None
            continue
        try:
            out[job_id] = decode_result(entries[0][1])
        except Exception:  # noqa: BLE001 - see the docstring: say so, do not fail
            out[job_id] = unreadable
    return out
