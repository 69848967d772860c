"""Running one job's Python callable in this process, with its timeout enforced by SIGALRM."""
from __future__ import annotations

import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobsvc.allowlist import ModuleAllowList
from jobsvc.engine import directory
from jobsvc.engine.serialization import load_data
from jobsvc.errors import JobTimeout, NonRetryableError, NotAllowed

from .imports import import_function

if TYPE_CHECKING:
    from jobsvc.config import Config
    from jobsvc.engine.leases import Lease


class HandBack(BaseException):
    """Raised inside a running job when the worker must stop now; the job goes back to its queue.
    A BaseException so that job code catching Exception does not swallow it."""


class Terminated(BaseException):
    """Raised inside a running job an operator terminated; its lease is already revoked."""


@dataclass
class Outcome:
    ok: bool
    result: Any = None
    exc_type: str = ""
    message: str = ""
    traceback: str = ""
    retryable: bool = True
    # HTTP handler jobs: the run's status and duration for the history, a Retry-After to honour, and
    # whether the service accepted the job (202) to finish it later through the callback endpoint.
    run: dict[str, Any] | None = None
    min_delay: float | None = None
    accepted: bool = False
    # The exception itself, for an RQ failure callback's (type, value, traceback) (workers/rq_callbacks.py).
    exc: BaseException | None = None
    # When the run began and ended (epoch seconds, this worker's clock; set by the worker): RQ's execution times,
    # and the run time complete.lua / fail.lua observe.
    started: float = 0.0
    ended: float = 0.0


class FunctionCache:
    """Import paths resolved once per process: imports are the slow part of a no-op job."""

    def __init__(self) -> None:
        self._cache: dict[str, Callable[..., Any]] = {}

    def resolve(self, name: str, instance: Any, allow: ModuleAllowList | None = None) -> Callable[..., Any]:
        """`allow`: the allow-list a job from the HTTP API must stay inside (checked on every job: a function
        cached for a trusted job is not thereby allowed to an API one)."""
        if instance is not None:
            if allow is not None:
                raise NotAllowed("jobs created through the HTTP API cannot call methods of pickled instances")
            return getattr(instance, name)
        func = self._cache.get(name)
        if func is None:
            func = import_function(name, allow)
            self._cache[name] = func
        elif allow is not None:
            allow.check_path(name)
            allow.check_object(name, func)
        return func


def failure(exc: BaseException, retryable: bool) -> Outcome:
    return Outcome(False, exc_type=type(exc).__name__, message=str(exc),
                   traceback="".join(traceback.format_exception(exc)), retryable=retryable, exc=exc)


def execute(data: bytes, timeout: int | None, functions: FunctionCache,
            on_start: Callable[[], None], on_end: Callable[[], None], allow: ModuleAllowList | None = None) -> Outcome:
    """Decode and run one job. `on_start`/`on_end` bracket the job code exactly, so signal
    handlers know when raising into the job is safe. HandBack and Terminated propagate to the caller.
    `allow`: for a job created through the HTTP API, the modules its function must come from."""
    name = ""
    try:
        name, instance, args, kwargs = load_data(data)
        func = functions.resolve(name, instance, allow)
    except Exception as exc:  # noqa: BLE001 - an unloadable job fails at once, never retried
        out = failure(exc, retryable=False)
        out.message = f"cannot load job function{f' {name}' if name else ''}: {out.message}"
        return out
    try:
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, timeout)
        on_start()
        try:
            return Outcome(True, func(*args, **kwargs))
        finally:
            on_end()
            if timeout:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except (HandBack, Terminated):
        raise
    except NonRetryableError as exc:
        return failure(exc, retryable=False)
    except BaseException as exc:  # noqa: BLE001 - job code may raise anything, SystemExit included
        return failure(exc, retryable=True)


def install_timeout_handler() -> None:
    def on_alarm(signum: int, frame: Any) -> None:
        raise JobTimeout("job exceeded its timeout")

    signal.signal(signal.SIGALRM, on_alarm)


def deleted_at_once(lease: Lease, outcome: Outcome | None, reply: list[Any], config: Config) -> bool:
    """Whether an outcome just recorded (None: a completion; `reply`: its script's) deleted the job at once: a result
    (or, once failed for good, failure) TTL of 0, as complete.lua and fail.lua read it (the job's own, else the
    default). On a cluster the worker then removes the job's id directory entry, which the script cannot reach."""
    if outcome is None:
        field, default = "result_ttl", config.result_ttl
    elif not outcome.ok and reply[1] == b"failed":
        field, default = "failure_ttl", config.failure_ttl
    else:  # a retry, or a job handed to an HTTP service: it lives on
        return False
    return directory.ttl_is_zero(lease.fields, field, default)
