"""Promotion, one `run_once()` each: move scheduled jobs whose due time has come into their ready lanes
(`Promoter`), and jobs delayed by plain RQ or by rq-scheduler's `enqueue_at` / `enqueue_in` into RQ's queue
lists (`RqPromoter`). The scheduler process (workers/scheduler.py) repeats them while it leads."""
from __future__ import annotations

from dataclasses import dataclass

import redis

from .. import defaults
from ..config import Config
from ..engine import scripts
from ..engine.connection import redis_ms
from ..engine.keys import Keys
from ..engine.serialization import utcnow_str
from .rq_scheduler import due_one_offs


@dataclass
class PromoteResult:
    promoted: int
    next_due_ms: int | None
    now_ms: int


class Promoter:
    """Moves scheduled jobs whose due time has come into their ready lanes."""

    def __init__(self, conn: redis.Redis, config: Config, batch: int = defaults.PROMOTE_BATCH):
        self.redis, self.prefix, self.batch = conn, config.key_prefix, batch

    def run_once(self) -> PromoteResult:
        total = 0
        while True:
            n, nxt, now = scripts.call(self.redis, "promote", (), (self.prefix, self.batch, utcnow_str(),
                                                                     defaults.WAKE_TOKENS_MAX))
            total += int(n)
            if int(n) < self.batch or int(nxt) < 0 or int(nxt) > int(now):
                return PromoteResult(total, int(nxt) if int(nxt) >= 0 else None, int(now))


class RqPromoter:
    """Moves jobs delayed by plain RQ (its ScheduledJobRegistry, whole seconds) and rq-scheduler's one-off jobs
    (its zset; recurring ones stay there until `jobsvc schedules import --from-rq-scheduler`) into RQ's queue
    lists. `next_due_ms` is rq-scheduler's next entry: its scores are exact times, kept to the millisecond."""

    def __init__(self, conn: redis.Redis, config: Config, batch: int = defaults.PROMOTE_BATCH):
        self.redis, self.prefix, self.batch = conn, config.key_prefix, batch
        self.keys = Keys(config.key_prefix)

    def run_once(self) -> PromoteResult:
        until = f"{redis_ms(self.redis) / 1000:.3f}"
        ids = due_one_offs(self.redis, float(until), self.batch)
        n, nxt, now = scripts.call(self.redis, "promote_rq", (), (
            self.prefix, self.batch, utcnow_str(), defaults.WAKE_TOKENS_MAX, self.keys.rq_scheduler_jobs,
            self.keys.rq_scheduler_lock, until, *ids))
        return PromoteResult(int(n), int(nxt) if int(nxt) >= 0 else None, int(now))
