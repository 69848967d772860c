"""The one error hierarchy of jobsvc; admin_api maps each class to an HTTP status in one place."""
from __future__ import annotations

from rq.timeouts import JobTimeoutException


class JobsvcError(Exception):
    """Base of every jobsvc error."""

    code = "error"


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
    """The job is not in a state that allows the operation."""

    code = "wrong_state"

    def __init__(self, message: str, state: str | None = None):
        super().__init__(message)
        self.state = state


class LeaseLost(WrongState):
    """The caller's lease token is stale: its outcome is rejected, never written."""

    code = "lease_lost"


class NonRetryableError(Exception):
    """Raise (or subclass) in job code to fail the job at once, without retries."""


class JobTimeout(JobTimeoutException):
    """A job ran past its timeout. RQ's JobTimeoutException too, so job code written for RQ that catches
    that still catches it on jobsvc workers."""


class ScriptError(JobsvcError):
    """A Lua script returned a code no Python caller expects."""

    code = "script_error"
