"""How a worker records what became of its jobs: counts each recorded outcome (and logs a rejected one), removes
the id directory entries of jobs an outcome deleted at once on a cluster, and hands back jobs it will not run.
LeasedWorker mixes this in."""
from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from jobsvc.engine import directory, scripts
from jobsvc.engine.connection import TRANSIENT
from jobsvc.errors import LeaseLost, NotFound

from .execution import Outcome, deleted_at_once

if TYPE_CHECKING:
    import redis

    from jobsvc.config import Config
    from jobsvc.engine.keys import Keys
    from jobsvc.engine.leases import Lease, Leases

log = logging.getLogger("jobsvc.worker")

# What a worker retries on, or waits out: Redis away, a cluster failing over.
REDIS_DOWN = TRANSIENT


class Recording:
    """The outcome bookkeeping of a worker (its state is LeasedWorker's)."""

    name: str
    connection: redis.Redis
    config: Config
    keys: Keys
    leases: Leases
    cluster: bool
    processed: int
    failed: int
    _gone: list[tuple[str, str]]
    _held: deque[Lease]
    _lease: Lease | None

    def _record(self, lease: Lease, outcome: Outcome | None, reply: list[Any] | Exception) -> None:
        """Count one recorded outcome (outcome None: a completion) and log a rejected or failed one."""
        if isinstance(reply, Exception):  # not recorded (_finish gave up): logged there
            return
        try:
            reply = scripts.check(reply, lease.job_id)
        except (LeaseLost, NotFound) as exc:
            log.warning("job %s: outcome rejected (%s)", lease.job_id, exc)
            return
        if self.cluster and deleted_at_once(lease, outcome, reply, self.config):
            self._gone.append((lease.job_id, directory.value(lease.queue, lease.fields.get(directory.INCARNATION))))
        if outcome is None or outcome.ok:
            self.processed += 1
            return
        self.failed += 1
        log.info("job %s attempt %d failed with %s: %s -> %s", lease.job_id, lease.attempt, outcome.exc_type,
                 outcome.message, reply[1].decode())

    def _forget_gone(self) -> None:
        """On a cluster, the id directory entries of the jobs the last outcomes deleted at once (the scripts cannot
        reach the directory: another slot). One round trip per master, only when there are some; on failure the
        integrity pass's leftover sweep removes them later."""
        gone, self._gone = self._gone, []
        try:
            directory.forget(self.connection, self.keys.prefix, gone)
        except REDIS_DOWN as exc:
            log.warning("worker %s: %d id directory entries not removed (%s); the integrity pass will", self.name,
                        len(gone), exc)

    def _handback(self, lease: Lease) -> None:
        self._lease = None
        try:
            self.leases.handback(lease, self.name)
            log.info("job %s handed back to queue %s", lease.job_id, lease.queue)
        except (LeaseLost, NotFound) as exc:
            log.warning("job %s: hand-back rejected (%s)", lease.job_id, exc)

    def _hand_back_held(self) -> None:
        """Stopping: the claimed jobs that never started go back to the front of their queues, at once."""
        held, self._held = list(self._held), deque()
        if not held:
            return
        try:
            replies = scripts.call_many(self.connection, [self.leases.handback_call(lease, self.name)
                                                          for lease in held])
        except REDIS_DOWN as exc:
            log.error("%d claimed job(s) not handed back, Redis unavailable (%s); their leases will expire",
                      len(held), exc)
            return
        for lease, reply in zip(held, replies, strict=True):
            try:
                scripts.check(reply, lease.job_id)
            except (LeaseLost, NotFound) as exc:
                log.warning("job %s: hand-back rejected (%s)", lease.job_id, exc)
        log.info("worker %s: handed back %d claimed job(s) that had not started", self.name, len(held))
