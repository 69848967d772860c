"""jobsvc: RQ-compatible background jobs on Redis, with leases, backoff, quarantine and a scheduler."""
from .backoff import Backoff
from .client import Client, Enqueued
from .config import Config
from .context import current_job, set_progress
from .errors import JobsvcError, JobTimeout, LeaseLost, NonRetryableError, NotFound, ValidationError, WrongState
from .job import JobInfo, JobSpec
from .states import State

__version__ = "0.1.0"

__all__ = ["Backoff", "Client", "Config", "Enqueued", "JobInfo", "JobSpec", "JobTimeout", "JobsvcError",
           "LeaseLost", "NonRetryableError", "NotFound", "State", "ValidationError", "WrongState", "current_job",
           "set_progress"]
