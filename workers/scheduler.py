"""The scheduler process: while it leads, promote due jobs, promote plain-RQ delayed jobs, reap
expired leases, fire due cron schedules, (every sweep_interval) delete jobs whose TTL passed and (every
integrity_interval) run a bounded step of the integrity sweep, then
sleep until the next due time, fire time or lease expiry (woken early when an earlier job is scheduled).
Standbys retry the leader lock. Every scheduler, leader or not, also sends outcome notifications to
callback URLs on a thread of its own (workers/callbacks.py).

On a Redis Cluster (a redis+cluster:// URL, docs/cluster.md) the passes walk the queues of the cluster's registry,
each script call in one queue's slot; the lock is in a slot of its own; the wait is a SlotWait on every queue's
wake-up list and the schedules'. Plain RQ's and rq-scheduler's delayed jobs do not exist there (RQ does not run on
a cluster): that pass is skipped."""
from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

import redis

from jobsvc import defaults
from jobsvc.config import Config
from jobsvc.engine.cluster import SlotWait, scopes
from jobsvc.engine.connection import TRANSIENT, is_cluster
from jobsvc.engine.depends import ReleaseDrain
from jobsvc.engine.keys import Keys, template
from jobsvc.maintenance.integrity import IntegrityPass
from jobsvc.maintenance.reaper import Reaper
from jobsvc.maintenance.ttl_sweeper import TtlSweeper
from jobsvc.redis_check import refuse_cluster, warn_if_evicting
from jobsvc.scheduling.cron_firer import CronFirer
from jobsvc.scheduling.leader import LeaderLock
from jobsvc.scheduling.promotion import Promoter, RqPromoter
from jobsvc.scheduling.schedules.store import SCHEDULES_SLOT

from .callbacks import Notifier

log = logging.getLogger("jobsvc.scheduler")


class Scheduler:
    def __init__(self, conn: redis.Redis, config: Config):
        self.redis = conn
        self.config = config
        self.keys = Keys(config.key_prefix)
        self.cluster = is_cluster(conn)
        self.lock = LeaderLock(conn, config)
        self.promoter = Promoter(conn, config)
        # RQ's registries and rq-scheduler's zset are single-node names RQ alone writes: none on a cluster.
        self.rq_promoter = None if self.cluster else RqPromoter(conn, config)
        self.reaper = Reaper(conn, config)
        self.releases = ReleaseDrain(conn, config)  # a cluster's dependents in other queues; a single Redis: no-op
        self.ttl_sweeper = TtlSweeper(conn, config)
        self.cron = CronFirer(conn, config)
        self.integrity = IntegrityPass(conn, config)
        self.leading = False
        self.stopped = threading.Event()
        self._next_lock = 0.0
        self._next_rq = float("inf") if self.cluster else 0.0  # never on a cluster (rq_promoter is None)
        self._next_sweep = 0.0
        # The first integrity pass one interval after start: a scheduler that just started has more urgent work
        # (promotions, reaping) than drift.
        self._next_integrity = time.monotonic() + config.integrity_interval
        # The blocking wait has its own connection(s): on a cluster one per wake-up list (SlotWait, made at the
        # first wait and again when the queues change), else one BLPOP connection.
        self._waiter = None if self.cluster else redis.Redis(
            connection_pool=redis.ConnectionPool(**conn.connection_pool.connection_kwargs))
        self._slot_wait: SlotWait | None = None
        if self.cluster:
            log.info("on a Redis Cluster: plain RQ's and rq-scheduler's delayed jobs are not promoted (RQ does not "
                     "run there; docs/cluster.md)")

    def run_once(self) -> float:
        """One pass; returns how many seconds to sleep before the next."""
        now = time.monotonic()
        if now >= self._next_lock or not self.leading:
            was = self.leading
            self.leading = self.lock.run_once()
            self._next_lock = now + self.config.leader_ttl / 3
            if self.leading != was:
                log.info("scheduler %s: %s", self.lock.token[:8], "leading" if self.leading else "standing by")
        if not self.leading:
            return self.config.leader_ttl / 3
        promoted = self.promoter.run_once()
        reaped = self.reaper.run_once()
        self.releases.run_once()
        fired = self.cron.run_once()
        if self.rq_promoter is not None and now >= self._next_rq:
            # RQ's registries every scheduler_max_sleep (whole-second scores), with a page of rq-scheduler's zset
            # (its one-off jobs adopted onto jobsvc's timeline, which Promoter serves to the millisecond); the
            # next page at once while the walk has more (RqPromoter.next_due_ms).
            rq = self.rq_promoter.run_once()
            self._next_rq = now + self.config.scheduler_max_sleep
            if rq.next_due_ms is not None:
                self._next_rq = min(self._next_rq, now + max(0.0, (rq.next_due_ms - rq.now_ms) / 1000))
        swept_more = False
        if now >= self._next_sweep:
            # A backlog of expired jobs is swept a bounded pass at a time, promotions in between.
            swept_more = self.ttl_sweeper.run_once().more
            self._next_sweep = now if swept_more else now + self.config.sweep_interval
        if self.config.integrity_interval > 0 and now >= self._next_integrity:
            # A bounded step of the integrity sweep: drift is repaired without an operator
            # (jobsvc/maintenance/integrity.py).
            self._next_integrity = now + self.config.integrity_interval
            try:
                self.integrity.run_once()
            except redis.ResponseError:  # a damaged key must not stop promotions; the next pass walks anew
                log.exception("integrity pass failed")
        if reaped.total:
            log.info("reaped %d expired lease(s): %d requeued, %d failed, %d quarantined", reaped.total,
                     reaped.requeued, reaped.failed, reaped.quarantined)
        wait = 0.0 if swept_more else self.config.scheduler_max_sleep
        for due in (promoted.next_due_ms, reaped.next_expiry_ms):
            if due is not None:
                wait = min(wait, max(0.0, (due - promoted.now_ms) / 1000))
        if fired.next_fire_ms is not None:
            wait = min(wait, max(0.0, (fired.next_fire_ms - fired.now_ms) / 1000))
        wait = min(wait, max(0.0, self._next_rq - time.monotonic()))
        return min(wait, max(0.0, self._next_lock - time.monotonic()))

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early when a job earlier than every other is scheduled."""
        if seconds <= 0 or self.stopped.is_set():
            return
        block = seconds - defaults.SCHEDULER_SPIN_BELOW
        if not self.leading or block < 0.001:
            # Redis times out blocked clients on its own 100 ms clock: short waits are kept here. And
            # Redis reads a BLPOP timeout under 1 ms as 0, "block forever": never send one.
            self.stopped.wait(seconds)
            return
        # Wake up a little early and finish the wait locally, so the due time is met to the millisecond.
        if self._waiter is not None:
            self._waiter.blpop([self.keys.scheduler_wake], timeout=block)
        else:
            self._wait_on_cluster(block)

    def _wait_on_cluster(self, seconds: float) -> None:
        """Block on every queue's wake-up list and the schedules' (each in its own slot: SlotWait), the queues read
        anew from the cluster's registry each time, so a queue first used meanwhile can wake the next wait."""
        prefix = self.config.key_prefix
        lists = [template("scheduler_wake", prefix, q) for q in [SCHEDULES_SLOT, *scopes(self.redis, prefix)]]
        if self._slot_wait is None or self._slot_wait.lists != lists:
            if self._slot_wait is not None:
                self._slot_wait.close()
            self._slot_wait = SlotWait(self.redis, lists)  # type: ignore[arg-type]  # is_cluster: a RedisCluster
        self._slot_wait.wait(seconds)

    def run(self) -> None:
        def on_signal(signum: int, frame: Any) -> None:
            self.stopped.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info("scheduler %s: started", self.lock.token[:8])
        refuse_cluster(self.redis)  # a cluster node behind a plain URL: name it redis+cluster://
        warn_if_evicting(self.redis, f"scheduler {self.lock.token[:8]}")
        # Outcome notifications go out on their own thread: a slow callback URL must not delay promotions.
        # Every scheduler sends, leader or not: each notification is leased to one sender at a time.
        notifier = threading.Thread(target=Notifier(self.redis, self.config).run_forever, args=(self.stopped,),
                                    name="notifier", daemon=True)
        notifier.start()
        try:
            while not self.stopped.is_set():
                try:
                    self.sleep(self.run_once())
                except TRANSIENT as exc:  # Redis away, or a cluster in a failover: the next pass may work
                    log.error("redis unavailable (%s); retrying", exc)
                    self.leading = False
                    self.stopped.wait(1.0)
        finally:
            if self._slot_wait is not None:
                self._slot_wait.close()
            if self.leading:
                self.lock.release()
            log.info("scheduler %s: stopped", self.lock.token[:8])
