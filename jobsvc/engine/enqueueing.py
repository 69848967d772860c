"""The one way jobs get written: `enqueue` builds each job's RQ hash fields and sends `enqueue.lua`, one script
call per ENQUEUE_BATCH jobs in one round trip, or queues them on a caller's MULTI. Every creator of jobs calls it
(`Client.enqueue_many` and the pull variant, registry functions, schedule fires and runs, the HTTP API)."""
from __future__ import annotations

import json
import logging
import os
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast, overload

import redis
from redis.client import Pipeline

from .. import defaults
from ..config import Config
from ..errors import Conflict
from ..http.urlguard import check_url
from . import depends, directory, scripts
from .connection import TRANSIENT, is_cluster, round_trip, text
from .job import JobSpec, handler_name, payload_json
from .keys import cluster_name, idempotency_scope, template
from .serialization import dump_data, func_name, utcnow_str

log = logging.getLogger(__name__)

# The queues whose copy of the disabled functions' set a connection wrote (on a cluster; `_copy_disabled`), as
# (prefix, queue): per connection object, which is per process in practice, and dropped with the connection.
_SYNCED: weakref.WeakKeyDictionary[redis.Redis, set[tuple[str, str]]] = weakref.WeakKeyDictionary()

# The hash field that makes a job a pull job (enqueue.lua puts it in its queue's pull lanes).
PULL_FIELDS = {"js_trigger": "pull"}


@dataclass(frozen=True)
class Enqueued:
    """A job id from enqueue; `created` is False when an idempotency key returned an existing job."""

    id: str
    created: bool


@overload
def enqueue(conn: redis.Redis, config: Config, specs: Iterable[JobSpec],
            extra_fields: Sequence[dict[str, Any]] | None = None, *, pipe: None = None) -> list[Enqueued]: ...


@overload
def enqueue(conn: redis.Redis, config: Config, specs: Iterable[JobSpec],
            extra_fields: Sequence[dict[str, Any]] | None = None, *, pipe: Pipeline) -> int: ...


def enqueue(conn: redis.Redis, config: Config, specs: Iterable[JobSpec],
            extra_fields: Sequence[dict[str, Any]] | None = None, *,
            pipe: Pipeline | None = None) -> list[Enqueued] | int:
    """Enqueue a batch and return its ids. `extra_fields`, one dict per spec, adds jobsvc hash fields of other
    features (js_schedule, js_fn, js_origin, PULL_FIELDS).

    With `pipe` (a MULTI the caller executes: a schedule fire enqueues and advances the schedule atomically)
    the script calls are queued on it and nothing is sent; the answer is how many replies they add, the first
    ones of the scripts queued from here on, for `enqueued(replies)`. They go by EVAL of the source: a NOSCRIPT
    inside MULTI could not be retried the way `scripts.call_many` retries it."""
    specs = list(specs)
    if is_cluster(conn):
        if pipe is not None:
            raise ValueError("a MULTI cannot span a Redis Cluster's slots")
        # A dependency enqueued in the same call is written before its dependent looks it up (depends.waves).
        return [done for a, b in depends.waves(specs) for done in _enqueue_per_queue(
            conn, config, specs[a:b], None if extra_fields is None else extra_fields[a:b])]
    calls = _calls(config, specs, extra_fields)
    if pipe is not None:
        n = 0
        for name, keys, args in calls:
            pipe.eval(scripts.SOURCES[name], *scripts.command(name, keys, args))
            n += 1
        return n
    # Built lazily: each chunk goes out as soon as it is built, so Python builds the next while Redis runs it.
    return enqueued(scripts.call_many(conn, calls, config.wait()))


def enqueued(replies: Iterable[Any]) -> list[Enqueued]:
    """The ids in the replies of enqueue.lua: flat (id, created) pairs, one per job of its chunk."""
    return [Enqueued(reply[i].decode(), bool(reply[i + 1])) for reply in replies for i in range(0, len(reply), 2)]


def _enqueue_per_queue(conn: redis.Redis, config: Config, specs: list[JobSpec],
                       extra_fields: Sequence[dict[str, Any]] | None) -> list[Enqueued]:
    """On a Redis Cluster, one queue's jobs per call (a queue's keys share its slot), every queue's calls in one
    round trip per master, each job's id directory entry written first (jobsvc/engine/directory.py: an id given is
    claimed, a drawn one's entry goes ahead of its script); each queue joins the cluster's queue registry first,
    which what walks the queues reads. The ids come back in the order of `specs`; an id given that names a job of
    another queue answers with that job, as on a single Redis. An enqueue that raises gives its claims back first:
    left, they would read as an enqueue in flight (`_claim_given`) for CLAIM_GRACE_MS."""
    cluster = cast("redis.RedisCluster", conn)
    prefix = config.key_prefix
    drawn = iter(directory.local_ids(cluster, prefix, [s.queue for s in specs if not s.job_id], new_job_id))
    ids = [spec.job_id or next(drawn) for spec in specs]
    out: list[Enqueued] = [Enqueued("", False)] * len(specs)
    claims = _claim_given(conn, prefix, specs, ids, out)
    sent = [False]  # whether the enqueue scripts may have run (then a claim may name the job they wrote)
    try:
        return _write(conn, config, specs, extra_fields, ids, out, claims, sent)
    except BaseException:
        _give_back(conn, prefix, specs, ids, claims, sent[0])
        raise


def _write(conn: redis.Redis, config: Config, specs: list[JobSpec], extra_fields: Sequence[dict[str, Any]] | None,
           ids: list[str], out: list[Enqueued], claims: dict[int, directory.Claim], sent: list[bool]) -> list[Enqueued]:
    """`_enqueue_per_queue`'s writes once the ids given are claimed: the drawn ids' entries and the jobs' scripts."""
    cluster = cast("redis.RedisCluster", conn)
    prefix = config.key_prefix
    claimed_at = time.monotonic()
    by_queue: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        if not spec.job_id or i in claims:
            by_queue.setdefault(spec.queue, []).append(i)
    if not by_queue:
        return out
    order = [i for idx in by_queue.values() for i in idx]
    fields = _incarnations(specs, _waiting(conn, prefix, specs, ids, order, extra_fields), claims)
    first, alongside = directory.plan(cluster, prefix, ((ids[i], specs[i].queue) for i in order
                                                        if not specs[i].job_id))
    # Before any script, in one round trip per master: the queues join the registry, and the entries on another
    # master than their job's queue are written (and waited for).
    registered: list[Any] = []
    scripts.call_many(conn, [], config.wait(), before=[("SADD", cluster_name(prefix, "cluster_queues"), *by_queue),
                                                       *first], before_replies=registered)
    _copy_disabled(conn, prefix, list(by_queue), bool(registered[0]))
    if time.monotonic() - claimed_at > directory.CLAIM_GRACE_MS / 2000:
        # Never in practice (consecutive round trips): an entry this old may be taken for a leftover.
        if claims:  # a claim: given back, and the enqueue starts over
            directory.restore(conn, prefix, [(ids[i], c.entry, c.replaced or "") for i, c in claims.items()])
            claims.clear()
            return _enqueue_per_queue(conn, config, specs, extra_fields)
        alongside = first + alongside  # a drawn id's entry: written again (LeftoverSweep may have removed it)
    calls = [call for queue, idx in by_queue.items()
             for call in _calls(config, [specs[i] for i in idx],
                                None if fields is None else [fields[i] for i in idx], queue,
                                [ids[i] for i in idx])]
    sent[0] = True
    for i, done in zip(order, enqueued(scripts.call_many(conn, calls, config.wait(), before=alongside)),
                       strict=True):
        out[i] = done
    _release_unwritten(conn, prefix, specs, ids, order, out, claims)
    return out


def _give_back(conn: redis.Redis, prefix: str, specs: list[JobSpec], ids: list[str],
               claims: dict[int, directory.Claim], sent: bool) -> None:
    """The claims of an enqueue that raised or was refused, given back (each entry gets back what it held), but for
    those whose job its scripts wrote (`sent`: the job's js_inc is the claim's). Best effort: on a Redis away they
    stay, and an enqueue of the id into another queue is refused as in flight (`_claim_given`) until CLAIM_GRACE_MS
    passed, then claims it over."""
    if not claims:
        return
    try:
        todo = dict(claims)
        if sent:
            incs = round_trip(conn, [("HGET", template("job", prefix, specs[i].queue) % ids[i], directory.INCARNATION)
                                     for i in todo])
            todo = {i: c for (i, c), inc in zip(claims.items(), incs, strict=True)
                    if not isinstance(inc, Exception) and (inc is None or text(inc) != c.incarnation)}
        directory.restore(conn, prefix, [(ids[i], c.entry, c.replaced or "") for i, c in todo.items()])
    except TRANSIENT as exc:
        log.warning("enqueue: %d id directory claims not given back (%s)", len(claims), exc)


def _release_unwritten(conn: redis.Redis, prefix: str, specs: list[JobSpec], ids: list[str], order: list[int],
                       out: list[Enqueued], claims: dict[int, directory.Claim]) -> None:
    """The entries written for jobs the enqueue did not write, one round trip per master, only when there are some.
    A drawn id answered by an idempotency key with an earlier job (written at its creation) is unused: its entry
    goes. A given id's claim is undone (its entry gets back what it held): when an idempotency key answered with
    another job (that id's own job, if it exists, keeps its entry), or when the id's job existed already: its entry
    names that job's incarnation again, read from the job (what the claim replaced may be another claim's, racing
    in the same queue, that wrote nothing); with none before, the claim stays: it names the job's queue."""
    swaps = [(ids[i], specs[i].queue, "") for i in order
             if not specs[i].job_id and out[i].id != ids[i]]
    swaps += [(ids[i], c.entry, c.replaced or "") for i, c in claims.items()
              if not out[i].created and out[i].id != ids[i]]
    existed = [(i, c) for i, c in claims.items() if not out[i].created and out[i].id == ids[i] and c.replaced]
    if existed:  # a round trip only for ids given whose job was there: the incarnation their entry gets back
        incs = round_trip(conn, [("HGET", template("job", prefix, specs[i].queue) % ids[i], directory.INCARNATION)
                                 for i, _ in existed])
        swaps += [(ids[i], c.entry, c.replaced or "" if isinstance(inc, Exception)
                   else directory.value(specs[i].queue, None if inc is None else text(inc)))
                  for (i, c), inc in zip(existed, incs, strict=True)]
    if swaps:
        directory.restore(conn, prefix, swaps)


def _claim_given(conn: redis.Redis, prefix: str, specs: list[JobSpec], ids: list[str],
                 out: list[Enqueued]) -> dict[int, directory.Claim]:
    """Claim the entries of the ids given (directory.claim; a round trip only when some are): the positions claimed,
    to enqueue. One whose entry names another queue is answered with that queue's job (created False, in `out`), as
    on a single Redis enqueue.lua answers with the job of an id given, when that job exists (or this batch claimed
    it). An entry whose job is gone is claimed over, while it holds what was read (an enqueue racing for it the same
    way wins or loses it whole), unless claimed too recently to be a leftover: that enqueue is in flight and may
    write its job or not, so this one is refused (Conflict: retry) rather than answered with a job that may never
    exist. Refused or raising, it gives back what it claimed."""
    claims: dict[int, directory.Claim] = {}
    try:
        busy = _claim_loop(conn, prefix, specs, ids, out, claims)
    except BaseException:
        _give_back(conn, prefix, specs, ids, claims, False)
        raise
    if busy:
        _give_back(conn, prefix, specs, ids, claims, False)
        i, entry = busy[0]
        raise Conflict(f"job id {ids[i]!r} is being enqueued into queue {directory.queue_in(entry)!r} by another "
                       f"client and its job is not written yet: retry the enqueue into {specs[i].queue!r}")
    return claims


def _claim_loop(conn: redis.Redis, prefix: str, specs: list[JobSpec], ids: list[str], out: list[Enqueued],
                claims: dict[int, directory.Claim]) -> list[tuple[int, str]]:
    """`_claim_given`'s claims (into `claims`) and answers (into `out`); the ids found in flight elsewhere."""
    todo = {i: "" for i, spec in enumerate(specs) if spec.job_id}
    busy: list[tuple[int, str]] = []
    for _ in range(3):  # a leftover claimed over by another enqueue in between, twice: answered as that one's job
        if not todo:
            break
        found = dict(zip(todo, directory.claim(conn, prefix, [(ids[i], specs[i].queue, e) for i, e in todo.items()]),
                         strict=True))
        claims.update((i, c) for i, c in found.items() if c.claimed)
        ours = {c.entry for c in claims.values()}  # an id given twice in this batch: its first job, written here
        other = [(i, c) for i, c in found.items() if not c.claimed and c.entry not in ours]
        there = directory.existing(conn, prefix, [(ids[i], directory.queue_in(c.entry)) for i, c in other]) \
            if other else set()
        busy += [(i, c.entry) for i, c in other if ids[i] not in there and c.fresh]
        todo = {i: c.entry for i, c in other if ids[i] not in there and not c.fresh}
        for i, c in found.items():
            if not c.claimed and i not in todo:
                out[i] = Enqueued(ids[i], False)
    for i in todo:
        out[i] = Enqueued(ids[i], False)
    return busy


def _incarnations(specs: list[JobSpec], extra_fields: Sequence[dict[str, Any]] | None,
                  claims: dict[int, directory.Claim]) -> Sequence[dict[str, Any]] | None:
    """`extra_fields` with the incarnation of each id claimed (directory.INCARNATION), written by the enqueue's own
    HSET: what a remover of its entry compares."""
    if not claims:
        return extra_fields
    out = [dict(e) for e in extra_fields] if extra_fields is not None else [{} for _ in specs]
    for i, c in claims.items():
        out[i][directory.INCARNATION] = c.incarnation
    return out


def _copy_disabled(conn: redis.Redis, prefix: str, queues: list[str], new: bool) -> None:
    """Each queue gets its copy of the disabled functions' set before its first job, so that claim.lua holds a
    disabled function's jobs there too (jobsvc/engine/functions/copies.py: the SADD came first, then the master set
    is read, which is what makes a disable running at once reach this queue). Written when the queue registry's SADD
    says a queue is new (`new`: it counts the new queues, not which, so every queue of the batch), and also for a
    queue this connection has not yet written, whatever the SADD said: a first enqueue whose copy failed after its
    SADD (a failover, a killed client) leaves the queue registered without its copy, and the retry's SADD says 0.
    Why here and not in the scheduler's passes: this closes that hole before the queue's first jobs are written (a
    periodic pass would leave them claimable until it ran), and costs a sync per queue and connection, never a
    command per job or batch after the first (`_SYNCED`)."""
    from .functions import copies  # here: the functions package's registry enqueues through this module

    synced = _SYNCED.setdefault(conn, set())
    todo = queues if new else [q for q in queues if (prefix, q) not in synced]
    if todo:
        copies.sync(conn, prefix, todo)
        synced.update((prefix, q) for q in todo)  # only once written: a failed sync is tried again next time


def _waiting(conn: redis.Redis, prefix: str, specs: list[JobSpec], ids: list[str], order: list[int],
             extra_fields: Sequence[dict[str, Any]] | None) -> Sequence[dict[str, Any]] | None:
    """`extra_fields` with the js_waits field of each job to enqueue that depends on a job of another queue, once it
    is registered there (jobsvc/engine/depends.py: step 1); as they were when none does."""
    jobs = [(ids[i], specs[i]) for i in order if specs[i].depends_on]
    if not jobs:
        return extra_fields
    known = {ids[i]: specs[i].queue for i in order}
    waiting = depends.register(conn, prefix, jobs, known)
    if waiting.stale():  # never in practice: the enqueue must follow its registration within depends.GRACE_MS
        waiting = depends.register(conn, prefix, jobs, known)
    if not waiting.fields:
        return extra_fields
    out = [dict(e) for e in extra_fields] if extra_fields is not None else [{} for _ in specs]
    for i in order:
        if ids[i] in waiting.fields:
            out[i]["js_waits"] = waiting.fields[ids[i]]
    return out


def _calls(config: Config, specs: list[JobSpec], extra_fields: Sequence[dict[str, Any]] | None,
           queue: str | None = None, ids: Sequence[str] | None = None) -> Iterator[scripts.Call]:
    """The enqueue.lua calls of a batch, one per ENQUEUE_BATCH jobs, each built when asked for. `queue`: on a
    cluster, the one queue of `specs`, whose slot the calls' keys are in; `ids`: their ids, chosen already (a
    cluster's directory entries are written first)."""
    for start in range(0, len(specs), defaults.ENQUEUE_BATCH):
        chunk = specs[start:start + defaults.ENQUEUE_BATCH]
        now = utcnow_str()
        jobs = [job_fields(config, spec, now, None if ids is None else ids[start + k]) for k, spec in enumerate(chunk)]
        if extra_fields is not None:
            # One extra dict per spec (the contract above): this chunk's slice matches it job for job.
            extra = extra_fields[start:start + defaults.ENQUEUE_BATCH]
            for (_, fields), more in zip(jobs, extra, strict=True):
                fields.update(more)
        # Fields every job of the chunk shares (times, TTLs, queue, function...) are sent once.
        common = dict(jobs[0][1])
        for _, fields in jobs[1:]:
            common = {k: v for k, v in common.items() if fields.get(k) == v}
        args: list[Any] = [config.key_prefix, defaults.WAKE_TOKENS_MAX, config.idempotency_ttl, len(chunk),
                           len(common)]
        for k, v in common.items():
            args += (k, v)
        for head, fields in jobs:
            own = [(k, v) for k, v in fields.items() if k not in common]
            args += head
            args.append(len(own))
            for k, v in own:
                args += (k, v)
        yield ("enqueue", scripts.scope_of(queue), args)


def new_job_id() -> str:
    """A job id nobody chose: uuid4's 122 random bits, without its overhead. A module function so that a test can
    make ids predictable (listings order jobs created in the same millisecond by id)."""
    return os.urandom(16).hex()


def job_fields(config: Config, spec: JobSpec, now: str, job_id: str | None = None) -> tuple[list[Any], dict[str, Any]]:
    """The script's per-job header (id, queue, priority, delay, at, idempotency key, id given) and fields; `job_id`:
    the id chosen for a job given none (else a new one)."""
    handler = check_url(spec.handler, allow_private=config.allow_private_urls) if spec.handler else None
    name = handler_name(handler) if handler else func_name(spec.func)  # type: ignore[arg-type]
    job_id = spec.job_id or job_id or new_job_id()
    fields: dict[str, Any] = {
        "created_at": now,
        "data": dump_data(name, spec.args, spec.kwargs),
        "origin": spec.queue,
        "description": spec.description or describe(name, spec.args, spec.kwargs),
        "timeout": spec.timeout if spec.timeout is not None else (
            defaults.HANDLER_TIMEOUT if handler else config.job_timeout),
        "result_ttl": spec.result_ttl if spec.result_ttl is not None else config.result_ttl,
        "failure_ttl": spec.failure_ttl if spec.failure_ttl is not None else config.failure_ttl,
        "js_max_attempts": spec.max_attempts or config.max_attempts,
        "js_ns": spec.namespace,
        "js_trigger": spec.trigger,
        "js_group": group_key(spec.queue, spec.namespace, name),
    }
    if not spec.delay and spec.at is None:
        fields["enqueued_at"] = now
    fields.update(_option_fields(config, spec, handler))
    idem = idempotency_scope(spec.namespace, spec.idempotency_key) if spec.idempotency_key else ""
    head = [job_id, spec.queue, spec.priority, spec.delay_ms(), spec.at_ms(), idem, 1 if spec.job_id else 0]
    return head, fields


def _option_fields(config: Config, spec: JobSpec, handler: str | None) -> dict[str, Any]:
    """The hash fields of the options a job may have: backoff, dependencies, meta, idempotency, HTTP."""
    fields: dict[str, Any] = {}
    if spec.backoff is not None:
        fields.update(spec.backoff.to_fields())  # type: ignore[union-attr]
    if spec.depends_on:
        # RQ's own fields (rq/job.py to_dict): enqueue.lua defers the job on them; RQ reads them back.
        fields["dependency_id"] = spec.depends_on[0]
        fields["dependency_ids"] = json.dumps(list(spec.depends_on))
        if spec.allow_failure:
            fields["allow_dependency_failures"] = 1
    if spec.meta:
        import pickle

        fields["meta"] = pickle.dumps(spec.meta, pickle.HIGHEST_PROTOCOL)
    if spec.idempotency_key:
        fields["js_idem"] = spec.idempotency_key
    if handler:
        fields["js_handler"] = handler
        fields["js_callback_ttl"] = spec.callback_timeout or defaults.CALLBACK_TIMEOUT
    if spec.payload is not None:
        fields["js_payload"] = payload_json(spec.payload)
    if spec.callback_url:
        fields["js_callback"] = check_url(spec.callback_url, allow_private=config.allow_private_urls)
    return fields


def group_key(queue: str, namespace: str, func: str) -> str:
    """The gauge group of a job: its queue, namespace and function ('|' is in none of them)."""
    return f"{queue}|{namespace}|{func}"


def describe(name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """RQ's `description` of a call: `f(1, to='x')`, cut at 200 characters."""
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    call = f"{name}({', '.join(parts)})"
    return call if len(call) <= 200 else call[:197] + "..."
