"""The scheduler's cron pass: fire the cron schedules that are due (jobsvc/scheduling/schedules/) and keep their
run history current."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from .. import defaults
from ..config import Config
from ..engine.client import Client
from .schedules import FireResult, Schedules


class CronFirer:
    """Fires the cron schedules that are due (jobsvc/scheduling/schedules/firing.py): each due schedule's jobs are
    enqueued and its next fire time moved on in one transaction. Every `record_interval` seconds it also copies
    finished runs' outcomes into their schedules' run history. `clock` (epoch ms) replaces Redis time in tests."""

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
