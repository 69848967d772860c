"""Promotion, one `run_once()` each: move scheduled jobs whose due time has come into their ready lanes
(`Promoter`), and jobs delayed by plain RQ into RQ's queue lists (`RqPromoter`). The scheduler process
(workers/scheduler.py) repeats them while it leads."""
from __future__ import annotations

from dataclasses import dataclass

import redis

from .. import defaults
from ..config import Config
from ..engine import scripts
from ..engine.serialization import utcnow_str


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
    """Moves jobs delayed by plain RQ (its ScheduledJobRegistry, whole seconds) into RQ's queue lists."""

    def __init__(self, conn: redis.Redis, config: Config, batch: int = defaults.PROMOTE_BATCH):
        self.redis, self.prefix, self.batch = conn, config.key_prefix, batch

    def run_once(self) -> int:
        return int(scripts.call(self.redis, "promote_rq", (), (self.prefix, self.batch, utcnow_str(),
                                                                defaults.WAKE_TOKENS_MAX)))
