"""The Python API: enqueue jobs (one, or a batch in one round trip), read them back, requeue, cancel."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, cast

import redis

from .. import defaults
from ..config import Config
from ..errors import JobsvcError, NotFound, ValidationError, WrongState
from . import directory, scripts
from .backoff import Backoff
from .cluster import scopes
from .connection import connect, round_trip, text
from .enqueueing import PULL_FIELDS, Enqueued, describe, enqueue
from .job import JobInfo, JobSpec, decode_result
from .keys import Keys
from .layout import Layout
from .run_history import run_id, runs_page
from .serialization import dump_data, dump_exc_string, utcnow_str
from .states import State
from .stats import EVENTS, Group, read_counts

# The failed result RQ's worker writes for a job stopped by send_stop_job_command (rq/worker/worker_classes.py,
# RQ 2.12), in RQ's result format: terminate.lua's 'stop' mode writes it.
STOPPED_EXC_STRING = dump_exc_string("Job stopped by user, work-horse terminated.")

NOOP = "jobsvc.engine.client.noop"
_OPTIONS = frozenset(JobSpec.__dataclass_fields__) - {"func", "args", "kwargs"}


class Client:
    """Entry point of the Python API.

    >>> client = Client("redis://localhost:6379/0")
    >>> client.enqueue(send_email, "ada@example.com", queue="mail", delay=30, max_attempts=5)
    """

    def __init__(self, connection: str | redis.Redis | None = None, config: Config | None = None):
        self.config = config or Config.from_env()
        self.redis = connect(connection, self.config)
        self.keys = Keys(self.config.key_prefix)
        self.layout = Layout.of(self.redis, self.keys.prefix)  # names keys in this connection's layout

    @property
    def cluster(self) -> bool:
        return self.layout.cluster

    # -- where a job is --------------------------------------------------------------------------

    def _queue(self, job_id: str) -> str | None:
        """On a Redis Cluster, the queue whose slot holds the job's keys, from the id directory (NotFound without
        an entry; an entry whose job is gone reads as not found where the job's keys are read). None on a single
        Redis, where the job's keys are named by its id alone."""
        if not self.cluster:
            return None
        queue = directory.queues_of(self.redis, self.keys.prefix, [job_id]).get(job_id)
        if queue is None:
            raise NotFound(f"no job {job_id}")
        return queue

    def queue_of(self, job_id: str) -> str:
        """The queue of an existing job (NotFound otherwise). On a cluster from the id directory, the entry checked
        against the job itself (jobsvc/engine/directory.py; `directory.queues_of` reads many ids, one round trip
        per master)."""
        if self.cluster:
            queue = cast(str, self._queue(job_id))
            if directory.existing(self.redis, self.keys.prefix, [(job_id, queue)]):
                return queue
            raise NotFound(f"no job {job_id}")
        origin = self.redis.hget(self.keys.job(job_id), "origin")
        if origin is None:
            raise NotFound(f"no job {job_id}")
        return text(origin)

    # -- enqueue ---------------------------------------------------------------------------------

    @staticmethod
    def job(func: Callable[..., Any] | str, *args: Any, kwargs: dict[str, Any] | None = None,
            **options: Any) -> JobSpec:
        """Build a JobSpec for enqueue_many; options are those of `enqueue`."""
        unknown = set(options) - _OPTIONS
        if unknown:
            raise ValidationError(f"unknown job option(s): {', '.join(sorted(unknown))} "
                                  "(arguments of the job function go in kwargs=)")
        return JobSpec(func=func, args=args, kwargs=dict(kwargs or {}), **options)

    @staticmethod
    def handler_job(url: str, payload: Any = None, **options: Any) -> JobSpec:
        """Build a JobSpec of an HTTP handler job: a worker POSTs {job_id, attempt, payload} to `url`."""
        unknown = set(options) - _OPTIONS
        if unknown:
            raise ValidationError(f"unknown job option(s): {', '.join(sorted(unknown))}")
        return JobSpec(func=None, handler=url, payload=payload, **options)

    def enqueue_handler(self, url: str, payload: Any = None, **options: Any) -> Enqueued:
        """Enqueue an HTTP handler job (docs/http.md). Options as `enqueue`, plus callback_url and
        callback_timeout; timeout is the request's, 1-30 s (default 30)."""
        return self.enqueue_many([self.handler_job(url, payload, **options)])[0]

    def enqueue(self, func: Callable[..., Any] | str, *args: Any, kwargs: dict[str, Any] | None = None,
                **options: Any) -> Enqueued:
        """Enqueue func(*args, **kwargs). Options: queue, delay (s or timedelta), at (datetime or epoch s),
        priority 1-10 (1 first), max_attempts 1-20, backoff ('fixed'|'linear'|'exponential' or Backoff),
        timeout (s, -1 none), idempotency_key, result_ttl, failure_ttl, job_id, description, meta,
        depends_on (a job id, an Enqueued, or a list of them: the job stays deferred until they all complete)
        and allow_failure (True: until they all end, failed included). Dependencies are stored as RQ stores
        them, so RQ's tools read them and a dependent may wait on jobs enqueued with RQ's own API."""
        return self.enqueue_many([self.job(func, *args, kwargs=kwargs, **options)])[0]

    def enqueue_many(self, specs: Iterable[JobSpec]) -> list[Enqueued]:
        """Enqueue a batch: one script call per ENQUEUE_BATCH jobs, all in one round trip."""
        return enqueue(self.redis, self.config, specs)

    def enqueue_pull(self, func: Callable[..., Any] | str, *args: Any, kwargs: dict[str, Any] | None = None,
                     **options: Any) -> Enqueued:
        """Enqueue a job for pull workers (jobsvc.http.pull, POST /api/v1/jobs/claim), as POST /jobs with trigger
        `pull` does: only a pull claim of its queue takes it, never a Python worker. It runs now (no delay or
        at); `func` is the name the pull worker knows the work by."""
        return self.enqueue_pull_many([self.job(func, *args, kwargs=kwargs, **options)])[0]

    def enqueue_pull_many(self, specs: Iterable[JobSpec]) -> list[Enqueued]:
        """enqueue_pull for a batch, in one round trip."""
        specs = list(specs)
        for spec in specs:
            if spec.trigger != "immediate":
                raise ValidationError(f"a pull job runs now: give no delay or at (given: {spec.trigger!r})")
        return enqueue(self.redis, self.config, specs, [dict(PULL_FIELDS) for _ in specs])

    # -- read --------------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobInfo:
        return self._read(job_id, self._queue(job_id))

    def _read(self, job_id: str, queue: str | None) -> JobInfo:
        # Bytes replies (connect() never sets decode_responses: RQ reads bytes); redis-py types them bytes | str.
        raw = cast("dict[bytes, bytes]", self.redis.hgetall(self.layout.key("job", queue, job_id)))
        if not raw:
            raise NotFound(f"no job {job_id}")
        return JobInfo.from_hash(job_id, raw, self.config.max_attempts)

    def state(self, job_id: str) -> State:
        return self.get(job_id).state

    def result(self, job_id: str, wait: float = 0) -> Any:
        """The job's latest return value (None until it completes); wait up to `wait` seconds for one."""
        try:
            key = self.layout.key("results", self._queue(job_id), job_id)
        except NotFound:
            return None  # on a cluster, an id without an entry: as a single Redis answers an id without a result
        deadline = time.monotonic() + wait
        while True:
            # XREVRANGE entries always have an id and fields (bytes); redis-py's type allows None for XCLAIM's
            # deleted ones.
            entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", self.redis.xrevrange(key, "+", "-", count=1))
            if entries and entries[0][1].get(b"type") == b"1":
                return decode_result(entries[0][1])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            last = entries[0][0] if entries else "0-0"
            self.redis.xread({key: last}, block=max(1, int(remaining * 1000)), count=1)

    def runs(self, job_id: str, cursor: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """The job's attempts, oldest first: id, times, duration, worker, outcome and, for failures, the error
        and traceback (jobsvc/engine/run_history.py; a page of them: `runs_page`)."""
        return runs_page(self.redis, self.keys, job_id, cursor, limit, queue=self._queue(job_id)).runs

    def stats(self, queue: str) -> dict[str, int]:
        """Event totals of a queue (the sum of its groups' tallies; requeues from its own hash) plus its jobs per
        state now, `<state>_now`, as every other surface counts them (jobsvc/engine/stats.py: read_counts; jobs enqueued
        with RQ's own API included). O(groups), never a scan of jobs. On a cluster every key read is in the queue's
        slot (its groups and their tallies are kept there)."""
        raw = self.redis.hgetall(self.layout.key("stats", queue, queue))
        out = {text(k): int(v) for k, v in raw.items() if text(k) not in EVENTS}
        names = (text(m) for m in self.redis.smembers(self.layout.key("groups", queue)))
        groups = [g for g in names if Group.parse(g).queue == queue]
        pipe = self.redis.pipeline(transaction=False)
        for group in groups:
            pipe.hmget(self.layout.key("tally", queue, group), *EVENTS)
        for values in pipe.execute() if groups else []:
            for event, v in zip(EVENTS, values, strict=True):  # HMGET answers one value per field asked
                if v is not None:
                    out[event] = out.get(event, 0) + int(v)
        for state, n in read_counts(self.redis, self.keys, queue).queues[queue].items():
            out[f"{state}_now"] = n
        return out

    # -- operator actions ------------------------------------------------------------------------

    def _call(self, name: str, job_id: str, *args: Any, queue: str | None = None) -> Any:
        """Run a one-job script in the job's slot (its queue's on a cluster: `queue` when known, else _queue's) and
        check its reply."""
        scope = scripts.scope_of(queue if queue is not None else self._queue(job_id))
        return scripts.check(scripts.call(self.redis, name, scope, (self.keys.prefix, job_id, *args)), job_id)

    def requeue(self, job_id: str) -> None:
        """failed | quarantined | cancelled -> queued, attempts reset, history kept."""
        self._call("requeue", job_id, utcnow_str(), defaults.WAKE_TOKENS_MAX)

    def cancel(self, job_id: str) -> None:
        """queued | scheduled -> cancelled; kept for the job's failure TTL, then the TTL sweep deletes it."""
        self._call("cancel", job_id, utcnow_str(), self.config.failure_ttl)

    def patch(self, job_id: str, args: tuple[Any, ...] | list[Any] | None = None,
              kwargs: dict[str, Any] | None = None, priority: int | None = None,
              run_at_ms: int | None = None) -> JobInfo:
        """Change a queued or scheduled job: its arguments, priority or run time (epoch ms; now or past queues it)."""
        queue = self._queue(job_id)
        data = description = ""
        if args is not None or kwargs is not None:
            current = self._read(job_id, queue)
            new_args = tuple(args) if args is not None else current.args
            new_kwargs = dict(kwargs) if kwargs is not None else current.kwargs
            data = dump_data(current.func_name, new_args, new_kwargs)  # type: ignore[assignment]
            description = describe(current.func_name, new_args, new_kwargs)
        if priority is not None:
            JobSpec(func=NOOP, priority=priority)  # the same validation as at enqueue
        if run_at_ms is not None and run_at_ms < 0:
            raise ValidationError("run_at must be a time after 1970")
        self._call("patch", job_id, data, description, "" if priority is None else priority,
                   "" if run_at_ms is None else run_at_ms, utcnow_str(), defaults.WAKE_TOKENS_MAX, queue=queue)
        return self._read(job_id, queue)

    def disable(self, job_id: str) -> None:
        """Hold a queued, scheduled or deferred job: no worker claims it until `enable` (job_disable.lua).
        Plain RQ workers of a mixed fleet do not know the flag."""
        self._call("job_disable", job_id)

    def enable(self, job_id: str) -> None:
        """Let workers claim a job `disable` held."""
        self._call("job_enable", job_id, defaults.WAKE_TOKENS_MAX)

    def trigger(self, job_id: str) -> tuple[str, int]:
        """Run a scheduled job now (scheduled -> queued, through patch.lua). Returns the id its coming run will
        have in the run history (jobsvc/engine/run_history.py) and the trigger time (Redis ms). A job that is
        queued already, deferred (it waits for its dependencies) or started is WrongState."""
        queue = self._queue(job_id)
        state = self._read(job_id, queue).state
        if state != State.SCHEDULED:
            raise WrongState(f"job {job_id} is {state.value}: only a scheduled job can be triggered", state.value)
        reply = self._call("patch", job_id, "", "", "", 0, utcnow_str(), defaults.WAKE_TOKENS_MAX, queue=queue)
        return run_id(job_id, int(reply[3]) + 1), int(reply[2])

    def delete(self, job_id: str) -> None:
        """Remove a job that is not running, with its result, history and index entries (on a cluster, then its
        id directory entry: jobsvc/engine/directory.py)."""
        queue = self._queue(job_id)
        reply = self._call("delete", job_id, queue=queue)
        if queue is not None:  # the entry of this incarnation only (the reply tells it: delete.lua)
            entry = directory.value(queue, text(reply[1]) if len(reply) > 1 else None)
            directory.forget(self.redis, self.keys.prefix, [(job_id, entry)])

    def terminate(self, job_id: str, mode: str = "terminate") -> str:
        """running -> cancelled: the lease is revoked at once and the worker stops the job within a second.
        mode="stop" records it as RQ's send_stop_job_command does instead (terminate.lua): RQ status 'stopped',
        in FailedJobRegistry with a failed result (state failed). Returns the name of the worker that ran it."""
        if mode not in ("terminate", "stop"):
            raise ValidationError(f"mode must be 'terminate' or 'stop', not {mode!r}")
        stop_exc = STOPPED_EXC_STRING if mode == "stop" else ""
        queue = self._queue(job_id)
        tell = () if queue is None else ("1",)  # a cluster's: the incarnation of a job the stop deleted
        reply = self._call("terminate", job_id, utcnow_str(), self.config.failure_ttl, mode, stop_exc, *tell,
                           queue=queue)
        if queue is not None and len(reply) > 2:  # a stop with failure TTL 0 deleted it: its entry goes too
            directory.forget_deleted(self.redis, self.keys.prefix, [(job_id, directory.value(queue, text(reply[2])))],
                                     "terminate")
        return text(reply[1])

    # -- queues ----------------------------------------------------------------------------------

    def pause(self, queue: str) -> None:
        self.redis.sadd(self.layout.key("paused", queue), queue)

    def resume(self, queue: str) -> None:
        self.redis.srem(self.layout.key("paused", queue), queue)
        self.redis.rpush(self.layout.key("wake", queue, queue), "1")

    def paused(self) -> set[str]:
        """The queues paused now (on a cluster, each queue of its registry asked: one round trip per master)."""
        if not self.cluster:
            return {text(q) for q in self.redis.smembers(self.keys.paused)}
        queues = self.queues()
        flags = round_trip(self.redis, [("SISMEMBER", self.layout.key("paused", q), q) for q in queues])
        for flag in flags:  # round_trip returns a node's error as a reply: never read it as "not paused"
            if isinstance(flag, Exception):
                raise flag
        return {q for q, flag in zip(queues, flags, strict=True) if flag == 1}

    def queues(self) -> list[str]:
        if self.cluster:
            return [q for q in scopes(self.redis, self.keys.prefix) if q is not None]
        return sorted(text(q) for q in self.redis.smembers(self.keys.queues))


def noop() -> None:
    """A function that does nothing (used to validate options without a real job)."""


__all__ = ["Backoff", "Client", "Enqueued", "JobsvcError"]
