"""jobsvc: RQ-compatible background jobs on Redis, with leases, backoff, quarantine and a scheduler."""
from .config import Config
from .engine.backoff import Backoff
from .engine.client import Client, Enqueued
from .engine.context import current_job, set_progress
from .engine.job import JobInfo, JobSpec
from .engine.states import State
from .errors import JobsvcError, JobTimeout, LeaseLost, NonRetryableError, NotFound, ValidationError, WrongState

__version__ = "0.1.0"

__all__ = ["Backoff", "Client", "Config", "Enqueued", "JobInfo", "JobSpec", "JobTimeout", "JobsvcError",
           "LeaseLost", "NonRetryableError", "NotFound", "State", "ValidationError", "WrongState", "current_job",
           "set_progress"]
