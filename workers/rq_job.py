"""The running job as RQ's own `Job` object, for code written for RQ: what `rq.get_current_job()` returns
inside a job (so `job.meta[...] = ...; job.save_meta()`, `job.id`, `job.origin` work), and the `job` argument of
RQ callbacks (workers/rq_callbacks.py).

Cheap on purpose, because every job pays for it: the Job is built from the hash claim.lua already returned
(no Redis command), and only when something first reads it; a job that never asks costs one small object and
a list append."""
from __future__ import annotations

from typing import Any

import redis
from rq.job import Job, _job_stack


class ClaimedJob(Job):
    """An rq Job whose state is read from the claimed hash on first use (Job.restore, ~30 µs, skipped by
    the jobs that never look)."""

    def __init__(self, job_id: str, connection: redis.Redis, fields: dict[str, Any], key: str | None = None):
        # Job.__init__ is deferred to the first attribute read (__getattr__): nothing else is set here, so
        # every attribute RQ's Job has is missing until then. `key`: the job hash's name when it is not RQ's (on a
        # Redis Cluster it carries the queue's tag), so that save_meta, refresh, get_status ... read and write it.
        self.__dict__["_claimed"] = (job_id, connection, fields)
        self.__dict__["_own_key"] = key

    @property
    def key(self) -> bytes:
        own = self.__dict__.get("_own_key")
        return Job.key.fget(self) if own is None else own.encode()  # type: ignore[attr-defined]

    def _materialise(self) -> bool:
        claimed = self.__dict__.pop("_claimed", None)
        if claimed is None:
            return False
        job_id, connection, fields = claimed
        Job.__init__(self, job_id, connection=connection)
        # decode_hash (jobsvc/engine/job.py) left `data` and `meta` as bytes and decoded the rest; restore wants bytes.
        self.restore({k: v if isinstance(v, bytes) else str(v).encode() for k, v in fields.items()})
        return True

    def __getattr__(self, name: str) -> Any:
        # Python calls this only for an attribute the instance lacks: before materialising, any of RQ's.
        if not self._materialise():
            raise AttributeError(name)
        return getattr(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # A write before the first read must not be undone by the Job.__init__ that the read would run.
        if "_claimed" in self.__dict__:
            self._materialise()
        object.__setattr__(self, name, value)


class CurrentJobSlot:
    """Makes `rq.get_current_job()` return the running job, as RQ's `Job.perform` does (it pushes the job on
    `rq.job._job_stack`, a stack local to the thread, and pops it when the function returns).

    `LocalStack.push` / `pop` cost ~4 µs a job (a thread-local lookup each, and popping the last item frees
    the thread's storage). So the worker pushes a None once, at the bottom, for as long as it works: the
    stack's list then stays put, `get_current_job()` reads None between jobs, and each job is an append and
    a pop on that list (0.1 µs). Open and close it in the thread that runs the jobs."""

    def __init__(self) -> None:
        self._stack: list[Any] = _job_stack.push(None)

    def enter(self, job: Job | None) -> None:
        self._stack.append(job)

    def leave(self) -> None:
        if len(self._stack) > 1:  # never our bottom None, whatever job code did to the stack
            self._stack.pop()

    def close(self) -> None:
        del self._stack[1:]
        _job_stack.pop()
