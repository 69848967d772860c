"""Batched reads of stored jobs for the API and dashboard, one round trip each: jobs by id, where jobs live
(queue and namespace, for a limited key's visibility checks), the jobs behind idempotency keys, and the latest
return values. Read-only; no job's state is decided here.

On a Redis Cluster a job's keys carry its queue's hash tag: the queue of each id comes from the id directory first
(jobsvc/engine/directory.py, one round trip per master), and an id without an entry reads as a job that is gone."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from ..engine import directory
from ..engine.connection import is_cluster, text
from ..engine.job import DEFAULT_NAMESPACE, JobInfo, decode_result
from ..engine.keys import idempotency_scope, template

RESULT_OK = b"1"  # RQ's Result.Type.SUCCESSFUL in a results stream entry's `type`


def job_keys(conn: redis.Redis, prefix: str, job_ids: Sequence[str], family: str = "job") -> list[str | None]:
    """Each job's key of `family` (`job`, `results`) in the connection's layout: named by its id alone on a single
    Redis; on a cluster under the queue its directory entry names, None for an id without one (no such job)."""
    if not is_cluster(conn):
        return [template(family, prefix) % job_id for job_id in job_ids]
    queues = directory.queues_of(conn, prefix, job_ids) if job_ids else {}
    return [template(family, prefix, queues[job_id]) % job_id if job_id in queues else None for job_id in job_ids]


def _read(conn: redis.Redis, keys: Sequence[str | None], command: str, *args: Any) -> list[Any]:
    """`command` on each key that exists, in one pipeline (per node on a cluster); None for a key that is None."""
    named = [k for k in keys if k is not None]
    pipe = conn.pipeline(transaction=False)
    for key in named:
        pipe.execute_command(command, key, *args)
    replies = iter(pipe.execute() if named else [])
    return [next(replies) if k is not None else None for k in keys]


def jobs(conn: redis.Redis, prefix: str, job_ids: Sequence[str], default_max_attempts: int) -> list[JobInfo | None]:
    """Each job as stored, None for one that is gone."""
    raws = _read(conn, job_keys(conn, prefix, job_ids), "HGETALL")
    return [JobInfo.from_hash(job_id, raw, default_max_attempts) if raw else None
            for job_id, raw in zip(job_ids, raws, strict=True)]


def places(conn: redis.Redis, prefix: str, job_ids: Sequence[str]) -> list[tuple[str, str] | None]:
    """Each job's (queue, namespace), None for one that is gone: what a key's limits are checked on."""
    out: list[tuple[str, str] | None] = []
    for values in _read(conn, job_keys(conn, prefix, job_ids), "HMGET", "origin", "js_ns"):
        queue, ns = values if values is not None else (None, None)
        out.append(None if queue is None else (text(queue), text(ns) if ns else DEFAULT_NAMESPACE))
    return out


def idempotent_ids(conn: redis.Redis, prefix: str, keyed: Sequence[tuple[str, str, str]]) -> list[str]:
    """The ids of the jobs that (queue, namespace, idempotency key) triples name now; triples naming none are left
    out. The queue counts on a Redis Cluster only, where idempotency keys are per queue (docs/cluster.md 2.2)."""
    cluster = is_cluster(conn)
    keys = [template("idempotency", prefix, queue if cluster else None) % idempotency_scope(ns, key)
            for queue, ns, key in keyed]
    return [text(i) for i in _read(conn, keys, "GET") if i]


def latest_results(conn: redis.Redis, prefix: str, job_ids: Sequence[str], unreadable: Any) -> dict[str, Any]:
    """Each job's latest successful return value (None when it has none); `unreadable` for one this process
    cannot decode (a class it cannot import): that must not fail the read of the others."""
    keys = job_keys(conn, prefix, job_ids, "results")
    out: dict[str, Any] = {}
    for job_id, entries in zip(job_ids, _read(conn, keys, "XREVRANGE", "+", "-", "COUNT", 1), strict=True):
        if not entries or entries[0][1].get(b"type") != RESULT_OK:
            out[job_id] = None
            continue
        try:
            out[job_id] = decode_result(entries[0][1])
        except Exception:  # noqa: BLE001 - see the docstring: say so, do not fail
            out[job_id] = unreadable
    return out
