"""The scheduler's work, one `run_once()` each: promote due jobs, promote plain-RQ delayed jobs,
reap expired leases, sweep jobs whose TTL passed, hold the leader lock. The scheduler process only
repeats them."""
from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import redis

from . import defaults, scripts
from .bulk import BulkResult, ttl_sweep
from .client import Client
from .config import Config
from .keys import Keys
from .schedules import FireResult, Schedules
from .serialization import dump_exc_string, utcnow_str


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


@dataclass
class ReapResult:
    requeued: int = 0
    failed: int = 0
    quarantined: int = 0
    next_expiry_ms: int | None = None
    now_ms: int = 0

    @property
    def total(self) -> int:
        return self.requeued + self.failed + self.quarantined


def abandoned_exc_string() -> str:
    """The failed result RQ's StartedJobRegistry.cleanup writes for a job whose worker died (RQ 2.12), in RQ's
    result format: reap_expired.lua writes it for a job enqueued with RQ's API that has no retries left."""
    return dump_exc_string(f"Moved to FailedJobRegistry, due to AbandonedJobError, at {datetime.now(timezone.utc)}")


class Reaper:
    """Takes back jobs whose lease expired: requeue (attempt counted), fail, or quarantine; a job enqueued with
    RQ's API as RQ treats a job whose worker died (retried by its Retry, else failed; reap_expired.lua)."""

    def __init__(self, conn: redis.Redis, config: Config, batch: int = defaults.REAP_BATCH):
        self.redis, self.config, self.batch = conn, config, batch

    def run_once(self) -> ReapResult:
        out = ReapResult()
        while True:
            r, f, q, nxt, now = scripts.call(self.redis, "reap_expired", (), (
                self.config.key_prefix, self.config.max_lease_losses, self.batch, abandoned_exc_string(),
                utcnow_str(), self.config.failure_ttl, defaults.WAKE_TOKENS_MAX))
            out.requeued += int(r)
            out.failed += int(f)
            out.quarantined += int(q)
            out.next_expiry_ms = int(nxt) if int(nxt) >= 0 else None
            out.now_ms = int(now)
            if int(r) + int(f) + int(q) < self.batch:
                return out


@dataclass
class LeaderLock:
    """A lock with a token and a TTL: one scheduler leads; a standby takes over when the TTL runs out."""

    redis: redis.Redis
    config: Config
    token: str = field(default_factory=lambda: secrets.token_hex(16))

    @property
    def key(self) -> str:
        return Keys(self.config.key_prefix).scheduler_leader

    def run_once(self) -> bool:
        """Acquire or renew; True while this process leads."""
        ttl_ms = int(self.config.leader_ttl * 1000)
        return bool(scripts.call(self.redis, "leader_acquire", (self.key,), (self.token, ttl_ms)))

    def release(self) -> bool:
        return bool(scripts.call(self.redis, "leader_release", (self.key,), (self.token,)))


class TtlSweeper:
    """Deletes completed, failed and cancelled jobs whose result / failure TTL has passed and uncounts them from their
    groups' gauges (bulk.ttl_sweep): finished jobs get no Redis expiry (set_lifetime in _lib.lua), so this is what
    deletes them.
    A pass handles at most `max_jobs` expired entries so that a backlog does not hold up promotions;
    `more` on the result asks for another pass soon."""

    def __init__(self, conn: redis.Redis, config: Config, batch: int = defaults.BULK_CHUNK,
                 max_jobs: int = 10 * defaults.BULK_CHUNK):
        self.redis, self.config, self.batch, self.max_jobs = conn, config, batch, max_jobs

    def run_once(self) -> BulkResult:
        return ttl_sweep(self.redis, self.config, chunk=self.batch, limit=self.max_jobs)


class CronFirer:
    """Fires the cron schedules that are due (jobsvc/schedules/firing.py): each due schedule's jobs are enqueued and
    its next fire time moved on in one transaction. Every `record_interval` seconds it also copies finished
    runs' outcomes into their schedules' run history. `clock` (epoch ms) replaces Redis time in tests."""

    def __init__(self, conn: redis.Redis, config: Config, batch: int = defaults.SCHEDULE_BATCH,
                 record_interval: float = defaults.SCHEDULE_RECORD_INTERVAL,
                 clock: Callable[[], int] | None = None):
        self.schedules = Schedules(Client(conn, config))
        self.redis, self.batch, self.record_interval, self.clock = conn, batch, record_interval, clock
        self._cache: dict[str, Any] = {}
        self._next_record = 0.0
        self._record_cursor = "-inf"

    def run_once(self) -> FireResult:
        now = int(self.clock()) if self.clock is not None else None
        out = self.schedules.fire_due(now, self.batch, self._cache)
        mono = time.monotonic()
        if mono >= self._next_record:
            self._next_record = mono + self.record_interval
            _, self._record_cursor = self.schedules.record_runs(self._record_cursor)
        return out
