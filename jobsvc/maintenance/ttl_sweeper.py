"""The TTL sweep pass: delete the finished jobs whose result / failure TTL has passed, a bounded part per pass.
The sweep itself is `ttl_sweep` (jobsvc/admin/bulk/operations.py), which operators can also run by hand."""
from __future__ import annotations

import redis

from .. import defaults
from ..admin.bulk import BulkResult, ttl_sweep
from ..config import Config


class TtlSweeper:
    """Deletes completed, failed and cancelled jobs whose result / failure TTL has passed and uncounts them from their
    groups' gauges (admin.bulk.ttl_sweep): finished jobs get no Redis expiry (set_lifetime in _lib.lua), so this is what
    deletes them.
    A pass handles at most `max_jobs` expired entries so that a backlog does not hold up promotions;
    `more` on the result asks for another pass soon."""

    def __init__(self, conn: redis.Redis, config: Config, batch: int = defaults.BULK_CHUNK,
                 max_jobs: int = 10 * defaults.BULK_CHUNK):
        self.redis, self.config, self.batch, self.max_jobs = conn, config, batch, max_jobs

    def run_once(self) -> BulkResult:
        return ttl_sweep(self.redis, self.config, chunk=self.batch, limit=self.max_jobs)
