"""The one error hierarchy of jobsvc; admin_api maps each class to an HTTP status in one place."""
from __future__ import annotations

from typing import Any

from rq.timeouts import JobTimeoutException


class JobsvcError(Exception):
    """Base of every jobsvc error. `code` names the kind (the API's `error.code`); `details()` what the API puts
    in `error.details`."""

    code = "error"

    def details(self) -> dict[str, Any]:
        return {}


class ValidationError(JobsvcError, ValueError):
    """Bad input: an option out of range, an unknown value."""

    code = "validation_error"


class UnsafeURL(ValidationError):
    """A handler or callback URL jobsvc refuses to call: not https, or not a public address."""

    code = "unsafe_url"


class NotAllowed(ValidationError):
    """An import path (or what it resolves to) is outside the allow-list of modules (jobsvc.allowlist)."""

    code = "module_not_allowed"


class NotFound(JobsvcError, LookupError):
    """No job, queue or key of that id."""

    code = "not_found"


class WrongState(JobsvcError):
    """The job is not in a state that allows the operation; `state` is the one it is in (details.state). Its
    subclasses are the other refusals of a change that conflicts with what is stored (HTTP 409)."""

    code = "wrong_state"

    def __init__(self, message: str, state: str | None = None):
        super().__init__(message)
        self.state = state

    def details(self) -> dict[str, Any]:
        return {"state": self.state}


class LeaseLost(WrongState):
    """The caller's lease token is stale: its outcome is rejected, never written."""

    code = "lease_lost"


class _NoJobState(WrongState):
    """A refusal that is about a function or schedule, not a job's state: no `state`, no details."""

    def __init__(self, message: str):
        super().__init__(message, None)

    def details(self) -> dict[str, Any]:
        return {}


class AlreadyExists(_NoJobState):
    """A create of a function or schedule whose id is taken."""

    code = "already_exists"


class Conflict(_NoJobState):
    """What the caller read (a function's or schedule's stored version) changed before its write, each time
    it tried: someone else keeps changing it. Also an enqueue on a Redis Cluster of an id given that another client
    is enqueueing into another queue at that moment (jobsvc/engine/enqueueing.py `_claim_given`): retry."""

    code = "conflict"


class Disabled(_NoJobState):
    """A disabled registry function refuses new jobs (its queued jobs wait in their lane)."""

    code = "disabled"


class FunctionMissing(_NoJobState):
    """A schedule names a registry function that no longer exists: it cannot make its job."""

    code = "function_missing"


class NonRetryableError(Exception):
    """Raise (or subclass) in job code to fail the job at once, without retries."""


class JobTimeout(JobTimeoutException):
    """A job ran past its timeout. RQ's JobTimeoutException too, so job code written for RQ that catches
    that still catches it on jobsvc workers."""


class NotOnCluster(JobsvcError, NotImplementedError):
    """An operation that does not run on a Redis Cluster yet (docs/cluster.md): refused, rather than a wrong
    answer read from single-node key names."""

    code = "not_on_cluster"


class ScriptError(JobsvcError):
    """A Lua script returned a code (or reply) its caller does not expect: a bug (the API: 500)."""

    code = "script_error"
