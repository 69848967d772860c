"""The worker's background loop: renew the lease of the running job, refresh the worker's
registration, reap dead peers' leases, end a shutdown grace period, and read RQ's worker commands."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from redis import exceptions as redis_errors

from jobsvc.engine.leases import Lease, Leases
from jobsvc.engine.serialization import utcnow_str
from jobsvc.maintenance.reaper import Reaper

if TYPE_CHECKING:
    import redis

    from jobsvc.config import Config

    from .rq_commands import CommandListener

log = logging.getLogger("jobsvc.worker")

# Seconds between ticks: how late a shutdown grace period or a hung job is noticed.
TICK = 0.25


class Heartbeat:
    def __init__(self, conn: redis.Redis, config: Config, worker_key: str,
                 current: Callable[[], tuple[Lease | None, float]], on_grace_over: Callable[[], None],
                 grace_deadline: Callable[[], float | None],
                 on_terminate: Callable[[str], None] | None = None,
                 counts: Callable[[], tuple[int, int]] | None = None,
                 on_lease_lost: Callable[[str], None] | None = None,
                 in_job: Callable[[], bool] | None = None, commands: CommandListener | None = None,
                 waiting: Callable[[], list[Lease]] | None = None,
                 on_waiting_lost: Callable[[list[str]], None] | None = None):
        self.redis = conn
        self.config = config
        self.leases = Leases(conn, config)
        self.reaper = Reaper(conn, config)
        self.worker_key = worker_key
        self.current = current
        self.on_grace_over = on_grace_over
        self.grace_deadline = grace_deadline
        self.on_terminate = on_terminate
        self.counts = counts or (lambda: (0, 0))
        self.on_lease_lost = on_lease_lost
        # Whether job code runs now. The worker leaves the job before it sends the outcome, so a lease found
        # gone while this is false was ended by that outcome (or is about to be refused by it), not lost.
        self.in_job = in_job or (lambda: True)
        self.commands = commands  # RQ's stop-job / shutdown commands (workers/rq_commands.py)
        # The other leases the worker holds (a batch: claimed jobs not started, completions not recorded), renewed
        # with the running job's; on_waiting_lost hears of those found gone, so the worker never starts them.
        self.waiting: Callable[[], list[Lease]] = waiting or list
        self.on_waiting_lost = on_waiting_lost
        self.worker_name = worker_key.removeprefix("rq:worker:")  # the name claim.lua stored (may hold ':')
        self.stopped = threading.Event()
        self._next_beat = 0.0
        self._next_maintenance = 0.0
        self._thread: threading.Thread | None = None
        self._subscribed = False

    def run_once(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        lease, started = self.current()
        deadline = self.grace_deadline()
        if lease is not None and deadline is not None and now >= deadline:
            self.on_grace_over()
        if self.commands is not None:
            # before the terminate list: a stop-job lands there and is acted on this tick
            self._poll_commands(self.commands)
        if lease is not None and self.on_terminate is not None:
            self._check_terminate(lease, self.on_terminate)
        if now >= self._next_beat:
            self._next_beat = now + self.config.heartbeat_interval
            self._beat(lease, started, now)
        if now >= self._next_maintenance:
            self._next_maintenance = now + self.config.worker_maintenance_interval
            reaped = self.reaper.run_once()
            if reaped.total:
                log.info("reaped %d expired lease(s): %d requeued, %d failed, %d quarantined", reaped.total,
                         reaped.requeued, reaped.failed, reaped.quarantined)

    def _check_terminate(self, lease: Lease, on_terminate: Callable[[str], None]) -> None:
        """An operator terminated jobs of this worker: stop the one running now (each tick: within 1 s)."""
        while True:
            # LPOP without a count answers one value; redis-py's type covers LPOP with a count (a list) too.
            job_id = cast("bytes | None", self.redis.lpop(self._terminate_key(lease)))
            if job_id is None:
                return
            if job_id.decode() == lease.job_id:
                on_terminate(lease.job_id)

    def _terminate_key(self, lease: Lease) -> str:
        """Where terminate.lua lists this worker's jobs to stop: on a cluster in the job's queue's slot, where the
        script runs."""
        return self.leases.layout.key("terminate", lease.queue, self.worker_name)

    def _poll_commands(self, commands: CommandListener) -> None:
        try:
            commands.poll()
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            # redis-py reconnects and subscribes again on a later read; the lease renewal below goes on.
            log.warning("reading RQ worker commands: Redis unavailable (%s); retrying next tick", exc)
        except Exception:  # the lease renewal below must still happen
            log.exception("reading RQ worker commands failed; retrying next tick")

    def _beat(self, lease: Lease | None, started: float, now: float) -> None:
        pipe = self.redis.pipeline(transaction=False)
        processed, failed = self.counts()
        # RQ's own worker fields, so `rq info` and RQ dashboards show jobsvc workers as they are.
        pipe.hset(self.worker_key, mapping={"last_heartbeat": utcnow_str(), "state": "busy" if lease else "idle",
                                            "current_job": lease.job_id if lease else "",
                                            "successful_job_count": processed, "failed_job_count": failed})
        pipe.expire(self.worker_key, int(self.config.heartbeat_interval * 3) + 60)
        pipe.execute()
        waiting = self.waiting()
        if lease is None and not waiting:
            return
        timeout = lease.timeout if lease is not None else None
        if lease is not None and timeout is not None and now - started > timeout + self.config.hung_grace:
            # The job ignores its timeout (stuck in C code): stop renewing, so the lease runs out and the reaper
            # hands the job to a healthy worker (and the rest of its batch with it: this worker is stuck).
            log.error("job %s hung past its timeout of %ss: lease left to expire", lease.job_id, timeout)
            return
        lost = self.leases.renew(([lease] if lease is not None else []) + waiting, holder=self.worker_name)
        if lost and self.on_waiting_lost is not None:
            self.on_waiting_lost([w.job_id for w in waiting if w.job_id in lost])
        if lease is None:
            return
        if lease.job_id in lost and self.current()[0] is lease and self.in_job():
            # Expired (a long pause) or revoked: another worker may run the job now, and this run's outcome
            # would be rejected, so its code stops here, as terminate stops it.
            log.warning("job %s: lease lost while running (expired or revoked): stopping its code", lease.job_id)
            if self.on_lease_lost is not None:
                self.on_lease_lost(lease.job_id)

    def _loop(self) -> None:
        while not self.stopped.wait(TICK):
            try:
                self.run_once()
            except Exception:  # a Redis blip must not kill the heartbeat
                log.exception("heartbeat failed; retrying")

    def subscribe(self) -> None:
        """Listen for RQ's worker commands; the worker calls it before it registers, since RQ's tools find it (and
        may send it a command) as soon as it is registered."""
        if self.commands is not None and not self._subscribed:
            self.commands.subscribe()
            self._subscribed = True

    def start(self) -> None:
        self.subscribe()
        self._thread = threading.Thread(target=self._loop, name="jobsvc-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self.commands is not None:
            self.commands.close()
