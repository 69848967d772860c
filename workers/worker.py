"""The leased worker: an RQ BaseWorker subclass (so RQ's tools list it) with its own fast loop.

Per job: one round trip that finishes the previous job (fenced by its lease token) and claims
the next one, atomically over all queues; the job runs in this process, no fork."""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis
from rq.worker import BaseWorker

from jobsvc import Client, context, scripts
from jobsvc.allowlist import ORIGIN_API, ORIGIN_FIELD, ModuleAllowList
from jobsvc.config import Config
from jobsvc.errors import LeaseLost, NotFound, WrongState
from jobsvc.keys import Keys
from jobsvc.leases import Lease, Leases
from jobsvc.redis_check import warn_if_evicting

from .execution import FunctionCache, HandBack, Outcome, Terminated, execute, install_timeout_handler
from .heartbeat import Heartbeat
from .http_handler import HandlerCaller
from .rq_callbacks import Callbacks
from .rq_commands import CommandListener
from .rq_job import ClaimedJob, CurrentJobSlot
from .rq_wake import RqWake

log = logging.getLogger("jobsvc.worker")

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


class _StopWaiting(BaseException):
    """Breaks an idle wait when a stop signal arrives."""


def _signal_main_thread(signum: int) -> None:
    """A real signal aimed at the main thread, so a job blocked in a system call (sleep, socket read) is
    interrupted too; _thread.interrupt_main only runs the handler once the job returns to Python."""
    ident = threading.main_thread().ident
    if ident is None:  # only a thread not started yet has none
        raise RuntimeError("the main thread has no id")
    signal.pthread_kill(ident, signum)


class LeasedWorker(BaseWorker):
    def __init__(self, queues: Sequence[str], connection: redis.Redis, config: Config, name: str | None = None):
        name = name or f"{socket.gethostname()}.{os.getpid()}.{os.urandom(3).hex()}"
        super().__init__(list(queues), name=name, connection=connection,
                         worker_ttl=int(config.heartbeat_interval * 3 + 60))
        self.config = config
        self.keys = Keys(config.key_prefix)
        self.leases = Leases(connection, config)
        self.functions = FunctionCache()
        self.allow_list = self.config.module_allow_list()
        self._handlers: HandlerCaller | None = None  # made on the first handler job
        self.queue_list = list(queues)
        self._lease: Lease | None = None
        self._job_started = 0.0
        self._in_job = False
        self._idle = False
        self._stop_at: float | None = None  # monotonic deadline of the shutdown grace period
        self._last_signal = 0.0
        self._terminate_id: str | None = None
        self._terminate_reason = ""
        self._terminate_by_user = False  # terminate / RQ stop-job (on_stopped runs), not a lost lease
        # RQ's view of the running job: rq.get_current_job() and the job given to RQ callbacks (None: HTTP handler).
        self._rq_job: ClaimedJob | None = None
        self._rq_slot: CurrentJobSlot | None = None  # made in work(), in the thread that runs the jobs
        self.callbacks = Callbacks(self.functions, on_timer=self._time_callback)
        # A separate connection for blocking waits: a wait broken by a signal is simply dropped.
        self._waiter = redis.Redis(connection_pool=redis.ConnectionPool(**connection.connection_pool.connection_kwargs))
        # Idle waits that also see jobs plain RQ pushes (workers/rq_wake.py); made in work(), None without it.
        self._rq_wake: RqWake | None = None
        self._woken_by_rq = False
        self.processed = 0
        self.failed = 0

    # -- signals -------------------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stop_at is not None

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        if not self.stopping:
            self._stop_at = now + self.config.shutdown_grace
            self._last_signal = now
            log.info("worker %s: stopping (signal %d); in-flight job has %.1fs to finish", self.name, signum,
                     self.config.shutdown_grace)
            if self._idle:
                raise _StopWaiting()
            return
        if now - self._last_signal < 1.0:
            return  # the same Ctrl+C reaching both a supervisor and this process
        log.warning("worker %s: second stop signal: handing back at once", self.name)
        self._stop_at = now
        self._interrupt()

    def _on_grace_signal(self, signum: int, frame: Any) -> None:
        self._interrupt()

    def _on_terminate_signal(self, signum: int, frame: Any) -> None:
        lease = self._lease
        if self._in_job and lease is not None and lease.job_id == self._terminate_id:
            raise Terminated()

    def _terminate(self, job_id: str, reason: str = "terminated by an operator", by_user: bool = True) -> None:
        # Called from the heartbeat thread; a real signal so a job blocked in a system call stops too.
        self._terminate_id, self._terminate_reason, self._terminate_by_user = job_id, reason, by_user
        _signal_main_thread(signal.SIGUSR2)

    def _lease_lost(self, job_id: str) -> None:
        self._terminate(job_id, "stopped: its lease was lost (expired or revoked), so its outcome would be rejected",
                        by_user=False)

    def _stop_job(self, job_id: str) -> None:
        """RQ's stop-job command (heartbeat thread): terminate.lua in its 'stop' mode records it as RQ does (status
        stopped, FailedJobRegistry, a failed result) and lists it for this worker's heartbeat, which then stops
        the code."""
        try:
            Client(self.connection, self.config).terminate(job_id, mode="stop")
        except (WrongState, NotFound) as exc:
            log.info("job %s: stop-job command too late (%s)", job_id, exc)

    def _running_job_id(self) -> str | None:
        lease = self._lease
        return lease.job_id if lease is not None else None

    def _interrupt(self) -> None:
        if self._in_job:
            raise HandBack()
        if self._idle:
            raise _StopWaiting()

    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGUSR1, self._on_grace_signal)
        signal.signal(signal.SIGUSR2, self._on_terminate_signal)
        install_timeout_handler()

    def _grace_over(self) -> None:
        # Called from the heartbeat thread: deliver the hand-back in the main thread.
        _signal_main_thread(signal.SIGUSR1)

    # -- loop ----------------------------------------------------------------------------------------

    def work(self, burst: bool = False, *_args: Any, **_kwargs: Any) -> bool:  # RQ's other options do not apply
        """Run until stopped (or, with burst, until the queues are empty). Returns True if it did work."""
        self._install_signal_handlers()
        # Probed before the worker registers: RQ's tools (send_shutdown_command) find it once registered, and its
        # command subscription (heartbeat.start) should follow that as closely as before.
        self._rq_wake = None if burst else self._start_rq_wake()
        self.register_birth()
        warn_if_evicting(self.connection, f"worker {self.name}")
        heartbeat = Heartbeat(self.connection, self.config, self.key, self._current, self._grace_over,
                              lambda: self._stop_at, on_terminate=self._terminate,
                              counts=lambda: (self.processed, self.failed), on_lease_lost=self._lease_lost,
                              in_job=lambda: self._in_job,
                              commands=CommandListener(self.connection, self.name, self._running_job_id,
                                                       self._stop_job))
        self._rq_slot = CurrentJobSlot()
        heartbeat.start()
        log.info("worker %s: listening on %s; jobs from the HTTP API may run functions from: %s", self.name,
                 ", ".join(self.queue_list), self.allow_list.describe())
        try:
            self._loop(burst)
        finally:
            heartbeat.stop()
            self._rq_slot.close()
            if self._rq_wake is not None:
                self._rq_wake.reset()
            self.register_death()
            log.info("worker %s: stopped after %d job(s), %d failed", self.name, self.processed, self.failed)
        return self.processed > 0

    def _start_rq_wake(self) -> RqWake | None:
        """Says at start how soon a job plain RQ enqueues starts here (it sends no jobsvc wake-up)."""
        later = f"a job plain RQ enqueues starts within {self.config.idle_wait:g}s (the idle wait), not at once"
        if not self.config.rq_wake:
            log.info("worker %s: JOBSVC_RQ_WAKE is off: %s", self.name, later)
            return None
        wake = RqWake(self.connection, self.queue_list, self.keys, self.config.idle_wait)
        why_not = wake.probe()
        if why_not:
            log.warning("worker %s: %s: %s", self.name, why_not, later)
            return None
        log.info("worker %s: idle waits track RQ's queue lists (CLIENT TRACKING): a job plain RQ enqueues starts "
                 "at once", self.name)
        return wake

    def _current(self) -> tuple[Lease | None, float]:
        return self._lease, self._job_started

    def _claim_call(self) -> scripts.Call:
        return self.leases.claim_call(self.queue_list, self.name)

    def _loop(self, burst: bool) -> None:
        lease = self._claim()
        while True:
            if lease is None:
                if self.stopping or burst:
                    return
                lease = self._claim_when_idle()
                if lease is None and self.stopping:
                    return
                continue
            if self._rq_wake is not None:
                self._rq_wake.disarm()  # busy: no messages (no command unless it was armed)
            running = lease
            try:
                lease = self._run_and_finish(running)
            except Exception:  # a bug or a bad reply must not take the worker down
                # Whatever this job's lease was, it expires and the reaper hands the job on.
                log.exception("worker %s: unexpected error around job %s; going on", self.name, running.job_id)
                self._lease = None
                self._pause(1.0)
                lease = None if self.stopping else self._claim()

    def _claim_when_idle(self) -> Lease | None:
        """No job was ready: wait for one (a jobsvc wake-up, a job plain RQ pushed, or the idle wait), then claim.
        None when there is still none, or the worker is stopping."""
        if self._rq_wake is not None and self._rq_wake.arm():
            lease = self._claim()  # just started tracking RQ's lists: a job pushed since the last claim sent nothing
            if lease is not None:
                return lease
        self._wait_for_work()
        if self.stopping:
            return None
        lease = self._claim()
        if self._woken_by_rq and self._rq_wake is not None:
            self._rq_wake.claimed(lease is not None)
        return lease

    def _claim(self) -> Lease | None:
        call = self._claim_call()
        try:
            return self.leases.parse_claim(call, scripts.call(self.connection, *call))
        except REDIS_DOWN as exc:
            log.error("worker %s: cannot claim, Redis unavailable (%s); retrying", self.name, exc)
        except Exception:  # e.g. a script error: log it, wait, try again
            log.exception("worker %s: claim failed; retrying", self.name)
        self._pause(1.0)
        return None

    def _pause(self, seconds: float) -> None:
        """Wait after a Redis error; a stop signal ends the wait."""
        self._idle = True
        try:
            if not self.stopping:
                time.sleep(seconds)
        except _StopWaiting:
            pass
        finally:
            self._idle = False

    def _wait_for_work(self) -> None:
        self._idle = True
        self._woken_by_rq = False
        wake_keys = [self.keys.wake(q) for q in self.queue_list]
        try:
            if self.stopping:
                return
            if self._rq_wake is not None and self._rq_wake.armed:
                self._woken_by_rq = self._rq_wake.wait(wake_keys, self.config.idle_wait) == "rq"
            else:
                self._waiter.blpop(wake_keys, timeout=self.config.idle_wait)
        except _StopWaiting:
            self._waiter.connection_pool.disconnect()
            if self._rq_wake is not None:
                self._rq_wake.reset()
        finally:
            self._idle = False

    def _run_and_finish(self, lease: Lease) -> Lease | None:
        """Run one job, then finish it and claim the next in one round trip."""
        self._lease, self._job_started = lease, time.monotonic()
        started = time.time()
        context.enter(context.RunningJob(lease.job_id, lease.token, lease.attempt, lease.queue, self.connection))
        rq_job = self._rq_job = (None if lease.fields.get("js_handler")
                                 else ClaimedJob(lease.job_id, self.connection, lease.fields))
        try:
            if lease.fields.get("js_handler"):
                outcome = self._handler_caller().call(lease, self._enter_job, self._leave_job)
            else:
                outcome = execute(lease.fields["data"], lease.timeout, self.functions, self._enter_job,
                                  self._leave_job, self._allow_list_for(lease))
        except HandBack:
            self._handback(lease)
            return None
        except Terminated:
            self._lease = None
            log.info("job %s %s", lease.job_id, self._terminate_reason)
            if self._terminate_by_user and rq_job is not None:
                self.callbacks.after_stop(lease.fields, rq_job, self._allow_list_for(lease))
            return None if self.stopping else self._claim()
        finally:
            context.enter(None)
            self._rq_job = None
        ended = time.time()  # before any callback: RQ's execution end, too, leaves the callbacks out
        if rq_job is not None:
            outcome = self.callbacks.after_run(lease.fields, rq_job, outcome, self._allow_list_for(lease))
        if outcome.accepted:
            finish = self.leases.await_callback_call(lease, self.name, outcome.run or {})
        elif outcome.ok:
            finish = self.leases.complete_call(lease, outcome.result, self.name, started, ended, outcome.run)
        else:
            finish = self.leases.fail_call(lease, outcome.exc_type, outcome.message, outcome.traceback,
                                           outcome.retryable, self.name, started, ended, outcome.run,
                                           outcome.min_delay)
        claim = None if self.stopping else self._claim_call()
        replies = self._finish(lease, finish, claim)
        self._lease = None
        if replies is None:
            return None
        self._record(lease, outcome, replies[0])
        return self.leases.parse_claim(claim, replies[1]) if claim and len(replies) > 1 else None

    def _finish(self, lease: Lease, finish: scripts.Call, claim: scripts.Call | None) -> list[Any] | None:
        """Send the outcome (and the next claim); while Redis is away, retry the outcome alone until
        the lease would have run out anyway. A retry after a lost reply is rejected as stale: harmless."""
        calls = [finish, claim] if claim else [finish]
        give_up = time.monotonic() + self.config.lease_ttl
        delay = 0.1
        while True:
            try:
                return scripts.call_many(self.connection, calls)
            except REDIS_DOWN as exc:
                if time.monotonic() + delay > give_up or self.stopping:
                    log.error("job %s: outcome not recorded, Redis unavailable (%s); its lease will expire "
                              "and it will run again", lease.job_id, exc)
                    return None
                log.warning("job %s: Redis unavailable (%s); retrying the outcome in %.1fs", lease.job_id, exc, delay)
                calls = [finish]
                self._pause(delay)
                delay = min(delay * 2, 5.0)

    def _allow_list_for(self, lease: Lease) -> ModuleAllowList | None:
        """The allow-list a job's function must come from: only jobs created through the HTTP API have one."""
        return self.allow_list if lease.fields.get(ORIGIN_FIELD) == ORIGIN_API else None

    def _handler_caller(self) -> HandlerCaller:
        if self._handlers is None:
            self._handlers = HandlerCaller(self.config)
        return self._handlers

    def _enter_job(self) -> None:
        self._slot().enter(self._rq_job)
        self._in_job = True

    def _leave_job(self) -> None:
        self._in_job = False
        self._slot().leave()

    def _slot(self) -> CurrentJobSlot:
        """The slot rq.get_current_job() reads: work() opens it, and jobs run only inside work()."""
        if self._rq_slot is None:
            raise RuntimeError("a job runs only inside work()")
        return self._rq_slot

    def _time_callback(self, seconds: int) -> None:
        """An RQ callback may take `seconds`: the heartbeat's hung-job check (started + job timeout + hung_grace)
        must measure it, not the job that already ended, or a long callback would let the lease lapse."""
        lease = self._lease
        if lease is not None:
            self._job_started = time.monotonic() + seconds - (lease.timeout or 0)

    def _record(self, lease: Lease, outcome: Outcome, reply: list[Any]) -> None:
        try:
            reply = scripts.check(reply, lease.job_id)
        except (LeaseLost, NotFound) as exc:
            log.warning("job %s: outcome rejected (%s)", lease.job_id, exc)
            return
        if outcome.ok:
            self.processed += 1
            return
        self.failed += 1
        log.info("job %s attempt %d failed with %s: %s -> %s", lease.job_id, lease.attempt, outcome.exc_type,
                 outcome.message, reply[1].decode())

    def _handback(self, lease: Lease) -> None:
        self._lease = None
        try:
            self.leases.handback(lease, self.name)
            log.info("job %s handed back to queue %s", lease.job_id, lease.queue)
        except (LeaseLost, NotFound) as exc:
            log.warning("job %s: hand-back rejected (%s)", lease.job_id, exc)
