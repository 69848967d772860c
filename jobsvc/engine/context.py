"""What job code can ask of the worker running it: which job this is, and reporting progress.

    from jobsvc import set_progress
    def resize_all(paths):
        for i, path in enumerate(paths):
            resize(path)
            set_progress(100 * (i + 1) // len(paths), f"{i + 1}/{len(paths)} images")
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from .. import defaults
from ..errors import LeaseLost, NotFound, ValidationError
from . import scripts
from .layout import Layout


@dataclass(frozen=True)
class RunningJob:
    id: str
    token: str
    attempt: int
    queue: str
    connection: redis.Redis
    prefix: str = defaults.KEY_PREFIX  # the worker's key prefix (progress.lua's keys are rendered with it)


_current: RunningJob | None = None


def current_job() -> RunningJob | None:
    """The job this process is running (None outside a jobsvc worker)."""
    return _current


def enter(job: RunningJob | None) -> None:
    """Called by the worker around each job."""
    global _current  # noqa: PLW0603 - one job per worker process: the module holds it for job code
    _current = job


def set_progress(percent: int, message: str = "") -> bool:
    """Record the running job's progress (0-100); False outside a job or when the lease was lost."""
    if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
        raise ValidationError("progress must be an integer 0-100")
    job = _current
    if job is None:
        return False
    try:
        scope = Layout.of(job.connection, job.prefix).scope(job.queue)
        reply = scripts.call(job.connection, "progress", scope, (job.prefix, job.id, job.token, percent, message[:500]))
        scripts.check(reply, job.id)
    except (LeaseLost, NotFound):
        return False
    return True
