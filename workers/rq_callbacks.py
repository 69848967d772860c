"""RQ's job callbacks (`on_success`, `on_failure`, `on_stopped`) run by jobsvc workers as RQ 2.x's worker runs
them (rq/worker/base.py: perform_job; rq/worker/worker_classes.py: monitor_work_horse).

RQ stores each callback in the job hash: the import path in `success_callback_name` / `failure_callback_name`
/ `stopped_callback_name` ('' for none) and its timeout in `*_callback_timeout` (absent: 60 s, RQ's
CALLBACK_TIMEOUT). Any job whose hash has these fields gets them, enqueued by RQ or not. What runs when:

- `on_success(job, connection, result)`: after the job returned, before its result is saved. If it raises or
  times out, the job fails with that error instead, and `on_failure` runs for it (as in RQ 2.x).
- `on_failure(job, connection, type, value, traceback)`: after every failed execution, also one that will be
  retried (RQ calls it before deciding on a retry). If it raises or times out, the failure is recorded with
  the callback's error, whose traceback carries the job's own error ("During handling of ..."), as RQ does.
- `on_stopped(job, connection)`: after the job was stopped (jobsvc terminate, RQ's send_stop_job_command). Its
  errors are only logged: the job's outcome (cancelled) was recorded before the job was stopped.

Each runs under its own SIGALRM timeout that raises rq.timeouts.JobTimeoutException, as RQ's death penalty
does. A job without callbacks costs one dict lookup here: no Redis command, no import."""
from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rq.defaults import CALLBACK_TIMEOUT
from rq.job import JobStatus
from rq.timeouts import JobTimeoutException
from rq.utils import now

from jobsvc.allowlist import ModuleAllowList

from .execution import FunctionCache, HandBack, Outcome, Terminated, failure
from .rq_job import ClaimedJob

log = logging.getLogger("jobsvc.worker")

SUCCESS, FAILURE, STOPPED = "success", "failure", "stopped"
_NAME_FIELD = {kind: f"{kind}_callback_name" for kind in (SUCCESS, FAILURE, STOPPED)}


def callback_name(fields: dict[str, Any], kind: str) -> str:
    return fields.get(_NAME_FIELD[kind]) or ""


def callback_timeout(fields: dict[str, Any], kind: str) -> int:
    raw = fields.get(f"{kind}_callback_timeout")
    return int(raw) if raw not in (None, "") else CALLBACK_TIMEOUT


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """RQ's UnixSignalDeathPenalty, but giving SIGALRM back to the worker's own handler afterwards (RQ's resets
    it to the default, which would kill the worker at the next job's timeout). <= 0: no limit, as in RQ."""
    if seconds <= 0:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise JobTimeoutException(f"Task exceeded maximum timeout value ({seconds} seconds)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:  # even if the alarm fired just now, the worker gets its handler back
            signal.signal(signal.SIGALRM, previous)


class Callbacks:
    """The callbacks of one worker. `on_timer(seconds)` is told before each callback runs how long it may take,
    so the worker's hung-job check measures the callback, not the job that has already ended."""

    def __init__(self, functions: FunctionCache, on_timer: Callable[[int], None] | None = None):
        self.functions = functions
        self.on_timer = on_timer or (lambda seconds: None)

    def after_run(self, fields: dict[str, Any], job: ClaimedJob, outcome: Outcome,
                  allow: ModuleAllowList | None) -> Outcome:
        """Run the success or failure callback of a finished execution; returns the outcome to record."""
        if outcome.ok:
            if not callback_name(fields, SUCCESS):
                return outcome
            outcome = self._success(fields, job, outcome, allow)
            if outcome.ok:
                return outcome
        if not callback_name(fields, FAILURE):
            return outcome
        return self._failure(fields, job, outcome, allow)

    def after_stop(self, fields: dict[str, Any], job: ClaimedJob, allow: ModuleAllowList | None) -> None:
        if not callback_name(fields, STOPPED):
            return
        try:
            self._call(fields, STOPPED, allow, job, job.connection)
        except (HandBack, Terminated):
            raise
        except BaseException:  # RQ logs it; the job's outcome is already recorded
            log.exception("job %s: stopped callback %s failed", job.id, callback_name(fields, STOPPED))

    def _success(self, fields: dict[str, Any], job: ClaimedJob, outcome: Outcome,
                 allow: ModuleAllowList | None) -> Outcome:
        job._status = JobStatus.FINISHED  # what RQ's job object says while its success callback runs
        job.ended_at = now()
        try:
            self._call(fields, SUCCESS, allow, job, job.connection, outcome.result)
        except (HandBack, Terminated):
            raise
        except BaseException as exc:  # noqa: BLE001 - RQ fails the job with whatever the callback raised
            log.warning("job %s: success callback %s failed (%s: %s): the job fails", job.id,
                        callback_name(fields, SUCCESS), type(exc).__name__, exc)
            failed = failure(exc, retryable=True)  # RQ retries it if the job has retries left
            failed.message = f"success callback {callback_name(fields, SUCCESS)}: {failed.message}"
            return failed
        return outcome

    def _failure(self, fields: dict[str, Any], job: ClaimedJob, outcome: Outcome,
                 allow: ModuleAllowList | None) -> Outcome:
        job._status = JobStatus.FAILED
        job.ended_at = job.ended_at or now()
        exc = outcome.exc
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else (None, None, None)
        try:
            self._call(fields, FAILURE, allow, job, job.connection, *exc_info)
        except (HandBack, Terminated):
            raise
        except BaseException as cb_exc:  # recorded as the failure, as RQ does
            log.exception("job %s: failure callback %s failed", job.id, callback_name(fields, FAILURE))
            if cb_exc.__context__ is None:
                cb_exc.__context__ = exc  # RQ calls it inside `except:`, so its traceback shows both
            failed = failure(cb_exc, outcome.retryable)
            failed.message = f"failure callback {callback_name(fields, FAILURE)}: {failed.message}"
            return failed
        return outcome

    def _call(self, fields: dict[str, Any], kind: str, allow: ModuleAllowList | None, *args: Any) -> None:
        seconds = callback_timeout(fields, kind)
        self.on_timer(seconds)
        with deadline(seconds):
            # Resolved like the job's function: imports cached, and a job from the HTTP API held to the allow-list.
            func = self.functions.resolve(callback_name(fields, kind), None, allow)
            func(*args)
