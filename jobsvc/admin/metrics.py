"""A snapshot of everything GET /metrics exposes, read from Redis (the source of truth for every API process):
event counters and histograms per group (`<prefix>tally:<group>`, kept by the Lua transitions), the state
gauges, queue depths and oldest ages, the scheduler's lag and the worker count. O(groups + lanes) in a few
pipelined round trips, never a scan of jobs. On a Redis Cluster the same keys exist per queue (in its slot,
docs/cluster.md 2.6), read pipelined per shard. Free of any exposition format: admin_api/prometheus.py renders it."""
from __future__ import annotations

from dataclasses import dataclass

import redis

from .. import defaults
from ..engine.connection import redis_ms
from ..engine.keys import RQ_WORKERS, Keys
from ..engine.layout import Layout
from ..engine.states import State
from ..engine.stats import EVENTS, Group, read_counts
from .timeseries import oldest_queued_ages_ms, queue_depths

# Histograms per group (observe in _lib.lua): run duration, and the wait from ready to started.
HISTOGRAMS = ("run", "wait")
RQ_QUEUES = "rq:queues"


@dataclass(frozen=True)
class Histogram:
    buckets: list[tuple[float, int]]  # (upper bound in seconds, cumulative count); the last bound is +inf
    sum_seconds: float

    @property
    def count(self) -> int:
        return self.buckets[-1][1]


@dataclass(frozen=True)
class GroupMetrics:
    group: Group
    events: dict[str, int]
    states: dict[str, int]
    histograms: dict[str, Histogram]


@dataclass(frozen=True)
class SchedulerMetrics:
    last_pass_ms: int | None  # the promoter's last call (Redis ms); None: no scheduler has run
    lag_ms: int | None  # how late the most overdue job of its last promoting call was
    overdue_ms: int  # how long the earliest due job still waiting to be promoted is overdue (0: none)


@dataclass(frozen=True)
class Snapshot:
    now_ms: int
    queues: list[str]
    groups: list[GroupMetrics]
    depth: dict[str, int]
    oldest_age_ms: dict[str, int | None]
    scheduler: SchedulerMetrics
    workers: int  # registered in RQ's worker set


def histogram(raw: dict[str, int], name: str) -> Histogram:
    """A group's histogram from its tally fields (<name>_b<i> per bucket, not cumulative; <name>_sum_ms)."""
    bounds = [b / 1000 for b in defaults.HISTOGRAM_BUCKETS_MS] + [float("inf")]
    running, buckets = 0, []
    for i, bound in enumerate(bounds, start=1):
        running += raw.get(f"{name}_b{i}", 0)
        buckets.append((bound, running))
    return Histogram(buckets, raw.get(f"{name}_sum_ms", 0) / 1000)


@dataclass(frozen=True)
class _Heads:
    """What a snapshot reads before the tallies: Redis's clock, every group, every queue, the promoter's stats
    and the earliest due time."""
    now_ms: int
    groups: list[str]
    queues: list[str]
    last_pass_ms: int | None
    lag_ms: int | None
    first_due_ms: float | None
    workers: int


def _heads(conn: redis.Redis, keys: Keys) -> _Heads:
    """One pipelined round trip on a single Redis."""
    pipe = conn.pipeline(transaction=False)
    pipe.time()
    pipe.smembers(keys.groups)
    pipe.smembers(keys.queues)
    pipe.smembers(RQ_QUEUES)
    pipe.hmget(keys.scheduler_stats, "last_pass_ms", "lag_ms")
    pipe.zrange(keys.scheduled, 0, 0, withscores=True)
    pipe.scard(RQ_WORKERS)
    (secs, micros), group_names, own_queues, rq_queues, sched, first_due, workers = pipe.execute()
    names = sorted(g.decode() for g in group_names)
    queues = sorted({q.decode() for q in own_queues}
                    | {q.decode().removeprefix("rq:queue:") for q in rq_queues}
                    | {n.split("|", 1)[0] for n in names})
    last_pass, lag = (int(v) if v is not None else None for v in sched)
    return _Heads(int(secs) * 1000 + int(micros) // 1000, names, queues, last_pass, lag,
                  float(first_due[0][1]) if first_due else None, int(workers))


def _cluster_heads(conn: redis.Redis, layout: Layout) -> _Heads:
    """On a Redis Cluster each queue has its own groups, promoter stats and timeline (docs/cluster.md 2.6): read
    pipelined per shard and merged. The last pass is the promoter's latest call on any queue; the lag that of the
    latest call that promoted any job."""
    queues = layout.cluster_queues(conn)
    pipe = conn.pipeline(transaction=False)
    for q in queues:
        pipe.smembers(layout.key("groups", q))
        pipe.hmget(layout.key("scheduler_stats", q), "last_pass_ms", "lag_ms", "lag_at_ms")
        pipe.zrange(layout.key("scheduled", q), 0, 0, withscores=True)
    pipe.scard(RQ_WORKERS)
    replies = pipe.execute()
    workers = replies.pop()
    names = sorted({g.decode() for members in replies[0::3] for g in members})
    stats = [[int(v) if v is not None else None for v in row] for row in replies[1::3]]
    passes = [p for p, _, _ in stats if p is not None]
    lags = [(at, lag) for _, lag, at in stats if lag is not None and at is not None]
    dues = [float(first[0][1]) for first in replies[2::3] if first]
    return _Heads(redis_ms(conn), names, sorted(set(queues) | {n.split("|", 1)[0] for n in names}),
                  max(passes) if passes else None, max(lags)[1] if lags else None, min(dues) if dues else None,
                  int(workers))


def snapshot(conn: redis.Redis, keys: Keys) -> Snapshot:
    """Read every metric; see the module docstring for the cost."""
    layout = Layout.of(conn, keys.prefix)
    heads = _cluster_heads(conn, layout) if layout.cluster else _heads(conn, keys)
    pipe = conn.pipeline(transaction=False)
    for name in heads.groups:
        pipe.hgetall(layout.key("tally", name.split("|", 1)[0], name))
    replies = pipe.execute()
    # States as every other surface counts them (jobsvc/engine/stats.py): the gauges, plus a (queue, default, "(rq)")
    # group holding the jobs of RQ's own API that no jobsvc script has counted yet (it has no events).
    counts = read_counts(conn, keys).groups
    groups = []
    for name, raw in zip(heads.groups, replies, strict=True):
        tally = {k.decode(): int(v) for k, v in raw.items()}
        group = Group.parse(name)
        groups.append(GroupMetrics(group, {e: tally.get(e, 0) for e in EVENTS},
                                   counts.get(group, {s.value: 0 for s in State}),
                                   {h: histogram(tally, h) for h in HISTOGRAMS}))
    unseen = sorted(set(counts) - {g.group for g in groups}, key=lambda g: (g.queue, g.namespace, g.function))
    groups.extend(GroupMetrics(group, dict.fromkeys(EVENTS, 0), counts[group],
                               {h: histogram({}, h) for h in HISTOGRAMS}) for group in unseen)
    now, queues = heads.now_ms, heads.queues
    overdue = max(0, now - int(heads.first_due_ms)) if heads.first_due_ms is not None else 0
    return Snapshot(now_ms=now, queues=queues, groups=groups, depth=queue_depths(conn, keys, queues),
                    oldest_age_ms=oldest_queued_ages_ms(conn, keys, queues),
                    scheduler=SchedulerMetrics(heads.last_pass_ms, heads.lag_ms, overdue), workers=heads.workers)
