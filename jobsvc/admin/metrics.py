"""A snapshot of everything GET /metrics exposes, read from Redis (the source of truth for every API process):
event counters and histograms per group (`<prefix>tally:<group>`, kept by the Lua transitions), the state
gauges, queue depths and oldest ages, the scheduler's lag and the worker count. O(groups + lanes) in a few
pipelined round trips, never a scan of jobs. Free of any exposition format: admin_api/prometheus.py renders it."""
from __future__ import annotations

from dataclasses import dataclass

import redis

from .. import defaults
from ..engine.keys import RQ_WORKERS, Keys
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


def snapshot(conn: redis.Redis, keys: Keys) -> Snapshot:
    """Read every metric; see the module docstring for the cost."""
    pipe = conn.pipeline(transaction=False)
    pipe.time()
    pipe.smembers(keys.groups)
    pipe.smembers(keys.queues)
    pipe.smembers(RQ_QUEUES)
    pipe.hmget(keys.scheduler_stats, "last_pass_ms", "lag_ms")
    pipe.zrange(keys.scheduled, 0, 0, withscores=True)
    pipe.scard(RQ_WORKERS)
    (secs, micros), group_names, own_queues, rq_queues, sched, first_due, workers = pipe.execute()
    now = int(secs) * 1000 + int(micros) // 1000
    names = sorted(g.decode() for g in group_names)
    queues = sorted({q.decode() for q in own_queues}
                    | {q.decode().removeprefix("rq:queue:") for q in rq_queues}
                    | {n.split("|", 1)[0] for n in names})

    pipe = conn.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(keys.tally(name))
    replies = pipe.execute()
    # States as every other surface counts them (jobsvc/engine/stats.py): the gauges, plus a (queue, default, "(rq)")
    # group holding the jobs of RQ's own API that no jobsvc script has counted yet (it has no events).
    counts = read_counts(conn, keys).groups
    groups = []
    for name, raw in zip(names, replies, strict=True):
        tally = {k.decode(): int(v) for k, v in raw.items()}
        group = Group.parse(name)
        groups.append(GroupMetrics(group, {e: tally.get(e, 0) for e in EVENTS},
                                   counts.get(group, {s.value: 0 for s in State}),
                                   {h: histogram(tally, h) for h in HISTOGRAMS}))
    unseen = sorted(set(counts) - {g.group for g in groups}, key=lambda g: (g.queue, g.namespace, g.function))
    groups.extend(GroupMetrics(group, dict.fromkeys(EVENTS, 0), counts[group],
                               {h: histogram({}, h) for h in HISTOGRAMS}) for group in unseen)

    last_pass, lag = (int(v) if v is not None else None for v in sched)
    overdue = max(0, now - int(first_due[0][1])) if first_due else 0
    return Snapshot(now_ms=now, queues=queues, groups=groups, depth=queue_depths(conn, keys, queues),
                    oldest_age_ms=oldest_queued_ages_ms(conn, keys, queues),
                    scheduler=SchedulerMetrics(last_pass, lag, overdue), workers=int(workers))
