"""How a worker stops: SIGTERM / SIGINT start a graceful stop (the running job has the grace period to finish; a
second signal hands it back at once), SIGUSR1 ends the grace period, SIGUSR2 stops a job an operator terminated
(or whose lease was lost). The handlers run in the main thread, which runs the jobs: a real signal, so a job blocked
in a system call is interrupted too."""
from __future__ import annotations

import logging
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from .execution import HandBack, Terminated, install_timeout_handler

if TYPE_CHECKING:
    from jobsvc.config import Config
    from jobsvc.engine.leases import Lease

log = logging.getLogger("jobsvc.worker")


class StopWaiting(BaseException):
    """Breaks an idle wait when a stop signal arrives."""


def _signal_main_thread(signum: int) -> None:
    """A real signal aimed at the main thread, so a job blocked in a system call (sleep, socket read) is
    interrupted too; _thread.interrupt_main only runs the handler once the job returns to Python."""
    ident = threading.main_thread().ident
    if ident is None:  # only a thread not started yet has none
        raise RuntimeError("the main thread has no id")
    signal.pthread_kill(ident, signum)


class StopSignals:
    """The worker's signal handlers and their state (LeasedWorker mixes this in)."""

    name: str
    config: Config
    _lease: Lease | None
    _stop_at: float | None  # monotonic deadline of the shutdown grace period
    _last_signal: float
    _in_job: bool
    _idle: bool
    _terminate_id: str | None
    _terminate_reason: str
    _terminate_by_user: bool

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
                raise StopWaiting()
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

    def _interrupt(self) -> None:
        if self._in_job:
            raise HandBack()
        if self._idle:
            raise StopWaiting()

    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGUSR1, self._on_grace_signal)
        signal.signal(signal.SIGUSR2, self._on_terminate_signal)
        install_timeout_handler()

    def _grace_over(self) -> None:
        # Called from the heartbeat thread: deliver the hand-back in the main thread.
        _signal_main_thread(signal.SIGUSR1)
