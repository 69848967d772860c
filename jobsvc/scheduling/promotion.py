"""Promotion, one `run_once()` each: move scheduled jobs whose due time has come into their ready lanes
(`Promoter`); jobs delayed by plain RQ into RQ's queue lists, and rq-scheduler's one-off jobs (`enqueue_at` /
`enqueue_in`) onto jobsvc's timeline as soon as they are seen (`RqPromoter`). The scheduler process
(workers/scheduler.py) repeats them while it leads."""
from __future__ import annotations

from dataclasses import dataclass

import redis

from .. import defaults
from ..config import Config
from ..engine import scripts
from ..engine.cluster import scopes
from ..engine.connection import redis_ms
from ..engine.keys import Keys
from ..engine.serialization import utcnow_str
from .rq_scheduler import Entry, page_after


@dataclass
class PromoteResult:
    promoted: int
    next_due_ms: int | None
    now_ms: int
    adopted: int = 0  # RqPromoter: rq-scheduler one-off jobs moved onto jobsvc's timeline (still scheduled)


class Promoter:
    """Moves scheduled jobs whose due time has come into their ready lanes."""

    def __init__(self, conn: redis.Redis, config: Config, batch: int = defaults.PROMOTE_BATCH):
        self.redis, self.prefix, self.batch = conn, config.key_prefix, batch

    def run_once(self) -> PromoteResult:
        # One timeline on a single Redis; one per queue on a cluster: the next due time is the earliest of them.
        results = [self._promote(queue) for queue in scopes(self.redis, self.prefix)]
        dues = [r.next_due_ms for r in results if r.next_due_ms is not None]
        return PromoteResult(sum(r.promoted for r in results), min(dues) if dues else None,
                             max((r.now_ms for r in results), default=0) or redis_ms(self.redis))

    def _promote(self, queue: str | None) -> PromoteResult:
        total = 0
        while True:
            n, nxt, now = scripts.call(self.redis, "promote", scripts.scope_of(queue), (
                self.prefix, self.batch, utcnow_str(), defaults.WAKE_TOKENS_MAX))
            total += int(n)
            if int(n) < self.batch or int(nxt) < 0 or int(nxt) > int(now):
                return PromoteResult(total, int(nxt) if int(nxt) >= 0 else None, int(now))


class RqPromoter:
    """Moves jobs delayed by plain RQ (its ScheduledJobRegistry, whole seconds) into RQ's queue lists, and adopts
    rq-scheduler's one-off jobs, due or not, onto jobsvc's timeline of delayed jobs (from there `Promoter` queues
    them at their time, to the millisecond); recurring ones stay in its zset until `jobsvc schedules import
    --from-rq-scheduler`. Its zset is walked a page of `batch` entries per pass (`page_after`), so each pass costs
    O(batch) however many recurring entries it holds. `next_due_ms`: now while the walk has more pages (the caller
    passes again at once), else the earliest adopted job's due time (`Promoter` also wakes for it: its timeline
    is jobsvc's), else None (the next page at the caller's own pace)."""

    def __init__(self, conn: redis.Redis, config: Config, batch: int = defaults.PROMOTE_BATCH):
        self.redis, self.prefix, self.batch = conn, config.key_prefix, batch
        self.keys = Keys(config.key_prefix)
        self._after: Entry | None = None  # where the walk of rq-scheduler's zset resumes; None: at its first entry

    def run_once(self) -> PromoteResult:
        page = page_after(self.redis, self._after, self.batch)
        n, adopted, first_due, now, locked = scripts.call(self.redis, "promote_rq", (), (
            self.prefix, self.batch, utcnow_str(), defaults.WAKE_TOKENS_MAX, *page.one_offs))
        if int(locked):  # an rqscheduler is moving jobs: this page is read again next pass
            return PromoteResult(int(n), None, int(now))
        # The page's one-offs left the zset: the next page starts after its last entry that stays.
        self._after = (page.last_recurring or self._after) if page.full else None
        due = int(now) if page.full else (int(first_due) if int(first_due) >= 0 else None)
        return PromoteResult(int(n), due, int(now), int(adopted))
