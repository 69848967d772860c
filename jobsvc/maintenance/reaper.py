"""The reaper pass: take back the jobs whose lease expired (a worker or pull worker that died or stalled)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import redis

from .. import defaults
from ..config import Config
from ..engine import directory, scripts
from ..engine.cluster import scopes
from ..engine.connection import text
from ..engine.serialization import dump_exc_string, utcnow_str


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
        # One lease index on a single Redis; one per queue on a cluster: the next expiry is the earliest of them.
        out = ReapResult()
        gone: list[tuple[str, str]] = []  # on a cluster, the id directory entries of the jobs deleted at once
        for queue in scopes(self.redis, self.config.key_prefix):
            nxt = self._reap(queue, out, gone)
            if nxt is not None and (out.next_expiry_ms is None or nxt < out.next_expiry_ms):
                out.next_expiry_ms = nxt
        directory.forget_deleted(self.redis, self.config.key_prefix, gone, "reaper")
        return out

    def _reap(self, queue: str | None, out: ReapResult, gone: list[tuple[str, str]]) -> int | None:
        """Reap one lease index into `out` (on a cluster, `gone` gets the entries of the jobs a failure TTL of 0
        deleted: reap_expired.lua cannot reach the directory, another slot); its next expiry (ms)."""
        while True:
            reply = scripts.call(self.redis, "reap_expired", scripts.scope_of(queue), (
                self.config.key_prefix, self.config.max_lease_losses, self.batch, abandoned_exc_string(),
                utcnow_str(), self.config.failure_ttl, defaults.WAKE_TOKENS_MAX, *(() if queue is None else ("1",))))
            r, f, q, nxt, now = reply[:5]
            if queue is not None and len(reply) > 5:
                pairs = reply[5]
                gone += [(text(pairs[k]), directory.value(queue, text(pairs[k + 1])))
                         for k in range(0, len(pairs), 2)]
            out.requeued += int(r)
            out.failed += int(f)
            out.quarantined += int(q)
            out.now_ms = max(out.now_ms, int(now))
            if int(r) + int(f) + int(q) < self.batch:
                return int(nxt) if int(nxt) >= 0 else None
