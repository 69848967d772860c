"""Per-minute event counts and queue readings for the dashboard and GET /metrics, read from the counters the Lua
transitions keep (`<prefix>minute:<epoch minute>` hashes of `<queue>|<event>`, see count_event in _lib.lua)
and from the heads of the ready lanes: O(minutes) or O(lanes), never a scan of jobs. On a Redis Cluster each queue
has its own minute hashes (in its slot, docs/cluster.md 2.6): the charts sum the queues', O(minutes x queues),
pipelined per shard."""
from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timezone

import redis

from .. import defaults
from ..engine.connection import redis_ms
from ..engine.keys import Keys
from ..engine.layout import Layout

# The events counted per minute (MINUTE_EVENTS in _lib.lua).
EVENTS = ("enqueued", "completed", "failed", "retried")


def per_minute(conn: redis.Redis, keys: Keys, minutes: int = defaults.PER_MINUTE_WINDOW, queue: str | None = None,
               now_ms: int | None = None) -> list[dict[str, int]]:
    """Events of the last `minutes` minutes (the current one last), oldest first and zero-filled:
    [{"minute": epoch seconds of the minute's start, "enqueued": n, "completed": n, "failed": n, "retried": n}].
    All queues summed when queue is None. One round trip; now_ms defaults to this machine's clock."""
    if minutes < 1:
        return []
    now = int(time.time() * 1000) if now_ms is None else int(now_ms)
    last = now // 60_000
    epoch_minutes = list(range(last - minutes + 1, last + 1))
    layout = Layout.of(conn, keys.prefix)
    # The hashes each minute is summed from: the one on a single Redis; on a cluster, each queue's.
    sources = [queue] if queue is not None or not layout.cluster else layout.cluster_queues(conn)
    pipe = conn.pipeline(transaction=False)
    for m in epoch_minutes:
        for q in sources:
            if queue is None:
                pipe.hgetall(layout.key("minute", q, m))
            else:
                pipe.hmget(layout.key("minute", q, m), [f"{queue}|{e}" for e in EVENTS])
    replies = iter(pipe.execute())
    out = []
    for m in epoch_minutes:
        row: dict[str, int] = {"minute": m * 60, **dict.fromkeys(EVENTS, 0)}
        for raw in (next(replies) for _ in sources):
            if queue is None:
                for field, n in raw.items():
                    event = field.decode().rpartition("|")[2]
                    if event in row:
                        row[event] += int(n)
            else:
                for event, n in zip(EVENTS, raw, strict=True):
                    row[event] += int(n) if n is not None else 0
        out.append(row)
    return out


def lanes_of(conn: redis.Redis, keys: Keys, queues: Iterable[str]) -> dict[str, list[str]]:
    """Each queue's ready lanes (lists) in claim order: highest priority (lowest number) first."""
    queues = list(queues)
    layout = Layout.of(conn, keys.prefix)
    pipe = conn.pipeline(transaction=False)
    for q in queues:
        pipe.smembers(layout.key("lanes", q, q))
    out = {}
    for q, extra in zip(queues, pipe.execute(), strict=True):
        prios = sorted({defaults.PRIORITY, *(int(p) for p in extra)})
        out[q] = [layout.lane(q, p) for p in prios]
    return out


def queue_depths(conn: redis.Redis, keys: Keys, queues: Iterable[str]) -> dict[str, int]:
    """Ids waiting in each queue's lanes (jobs pushed by plain RQ included). Two round trips for all queues."""
    lanes = lanes_of(conn, keys, queues)
    pipe = conn.pipeline(transaction=False)
    for q_lanes in lanes.values():
        for lane in q_lanes:
            pipe.llen(lane)
    lengths = iter(pipe.execute())
    return {q: sum(next(lengths) for _ in q_lanes) for q, q_lanes in lanes.items()}


def queue_depth(conn: redis.Redis, keys: Keys, queue: str) -> int:
    """Ids waiting in a queue's lanes."""
    return queue_depths(conn, keys, [queue])[queue]


def oldest_queued_ages_ms(conn: redis.Redis, keys: Keys, queues: Iterable[str]) -> dict[str, int | None]:
    """For each queue, how long (ms, Redis clock) its longest-waiting ready job has been ready; None when no job
    waits. Reads the first few ids of each lane only (a lane is in arrival order, bar jobs put back at its
    front), so it is O(lanes) and three round trips for all queues."""
    lanes = lanes_of(conn, keys, queues)
    layout = Layout.of(conn, keys.prefix)
    pipe = conn.pipeline(transaction=False)
    if not layout.cluster:  # TIME names no key: a cluster's pipeline has no node to send it to
        pipe.time()
    for q_lanes in lanes.values():
        for lane in q_lanes:
            pipe.lrange(lane, 0, defaults.OLDEST_PEEK - 1)
    replies = pipe.execute()
    if layout.cluster:
        now = redis_ms(conn)
    else:
        secs, micros = replies.pop(0)
        now = int(secs) * 1000 + int(micros) // 1000
    heads = iter(replies)
    peeked = {q: [id_ for _ in q_lanes for id_ in next(heads)] for q, q_lanes in lanes.items()}
    pipe = conn.pipeline(transaction=False)
    for q, ids in peeked.items():
        for id_ in ids:
            pipe.hmget(layout.job(q, id_.decode()), "status", "js_ready_ms", "js_created_ms", "enqueued_at")
    fields = iter(pipe.execute())
    out: dict[str, int | None] = {}
    for q, ids in peeked.items():
        oldest: int | None = None
        for _ in ids:
            status, ready, created, enqueued_at = next(fields)
            # A cancelled or deleted job's id stays in its lane until a worker pops it: not waiting.
            if status != b"queued":
                continue
            t = int(float(ready or created)) if (ready or created) else _rq_time_ms(enqueued_at)
            if t is not None:
                oldest = t if oldest is None else min(oldest, t)
        out[q] = None if oldest is None else max(0, now - oldest)
    return out


def _rq_time_ms(raw: bytes | None) -> int | None:
    """Epoch ms of an RQ timestamp (a job pushed by plain RQ has only its enqueued_at); None if unreadable."""
    if not raw:
        return None
    try:
        dt = datetime.fromisoformat(raw.decode().replace("Z", "+00:00"))
    except ValueError:
        return None
    return int((dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp() * 1000)


def oldest_queued_age_ms(conn: redis.Redis, keys: Keys, queue: str) -> int | None:
    """How long (ms) the longest-waiting ready job of a queue has been ready; None when none waits."""
    return oldest_queued_ages_ms(conn, keys, [queue])[queue]
