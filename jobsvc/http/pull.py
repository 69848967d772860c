"""Pull workers: programs in any language that take jobs over HTTP instead of running a Python worker.

They get the same leases as `workers.worker.LeasedWorker`: `claim` leases up to `count` jobs of a queue,
`heartbeat` extends one lease, `ack` finishes the job with the lease's token. Every write is a fenced
script (claim.lua, heartbeat.lua, complete.lua, fail.lua), so a wrong or stale token changes nothing and
raises LeaseLost; an expired lease is taken back by the same reaper (jobsvc/maintenance/reaper.py), attempt and lease
loss counted, so a job that keeps losing its pull worker ends quarantined like any other.

Only jobs created for pull workers (`Client.enqueue_pull`, POST /jobs with trigger `pull`) can be claimed here:
they wait in their queue's pull lanes, which Python workers never pop, and a claim pops nothing else, so a
pull worker never sees an ordinary job's function and arguments.

On a Redis Cluster (docs/cluster.md) a claim is its queue's script in its queue's slot; a heartbeat or an ack, given
a job id, finds the job's queue in the id directory (jobsvc/engine/directory.py: an id without an entry is no job)
and runs in that queue's slot, a batch of acks one complete.lua call per queue (`Leases.slot`)."""
from __future__ import annotations

import json
import pickle
import time
from dataclasses import dataclass
from typing import Any, cast

import redis

from .. import defaults
from ..config import Config
from ..engine import directory, replies, scripts
from ..engine.connection import is_cluster, text
from ..engine.keys import template
from ..engine.leases import Completion, Lease, Leases
from ..engine.replies import Reply
from ..engine.serialization import load_data
from ..engine.states import state_of
from ..errors import LeaseLost, NotFound, ValidationError
from ..validation import QUEUE_NAME, is_name

STATUSES = ("completed", "failed")
DEFAULT_ERROR_TYPE = "Error"
# What ack reads of the job before the fenced script: the attempt and backoff options (for the retry delay),
# the start time and worker (for the result entry RQ reads).
# Where the last ack of a job sent it, written by complete.lua and fail.lua: `state|due_ms|token` (replayed).
ACKED_FIELD = "js_acked"
# The last three: whether the outcome deletes the job, and its id directory entry on a cluster (_deleted).
_ACK_FIELDS = ("origin", "js_started_ms", "js_attempts", "worker_name", "js_backoff", "js_backoff_base",
               "js_backoff_cap", "js_backoff_jitter", "result_ttl", "failure_ttl", directory.INCARNATION)


@dataclass(frozen=True)
class AckResult:
    """Where an acked job went: completed, scheduled (a retry, due at `due_ms`) or failed."""

    job_id: str
    state: str
    due_ms: int | None = None


@dataclass(frozen=True)
class JobCall:
    """What a claimed job asks for: the function and arguments, and the JSON payload of an HTTP job."""

    function: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    payload: Any
    meta: dict[str, Any] | None


def claim(conn: redis.Redis, config: Config, queue: str, count: int = 1,
          visibility_timeout: float = defaults.PULL_VISIBILITY_TIMEOUT, worker: str = "pull") -> list[Lease]:
    """Lease up to `count` ready jobs of `queue` for `visibility_timeout` seconds, in one round trip."""
    _check_queue(queue)
    _check_range("count", count, 1, defaults.PULL_COUNT_MAX)
    _check_range("visibility_timeout", visibility_timeout, 0.001, defaults.PULL_VISIBILITY_MAX)
    leases = Leases(conn, config)
    call = leases.claim_call([queue], worker, lease_ttl=visibility_timeout, count=count, pull=True)
    return leases.parse_claims(scripts.call(conn, *call))


def heartbeat(conn: redis.Redis, config: Config, job_id: str, token: str,
              visibility_timeout: float | None = None) -> int:
    """Extend the lease `token` holds on the job; returns its new expiry (epoch ms, Redis time).
    Without `visibility_timeout`: by the job's callback_timeout for an HTTP handler job that answered 202,
    else by PULL_VISIBILITY_TIMEOUT. LeaseLost (with the job's state) when the token is not the job's,
    NotFound when there is no job."""
    _check_token(token)
    queue = _locate(conn, config.key_prefix, [job_id]).get(job_id, _NOWHERE)
    if queue is _NOWHERE:
        raise _missing(job_id)
    key = _job_key(config.key_prefix, job_id, queue)
    if visibility_timeout is None:
        own = conn.hget(key, "js_callback_ttl")
        visibility_timeout = float(own) if own else defaults.PULL_VISIBILITY_TIMEOUT
        _check_range("visibility_timeout", visibility_timeout, 0.001, defaults.CALLBACK_TIMEOUT_MAX)
    else:
        _check_range("visibility_timeout", visibility_timeout, 0.001, defaults.PULL_VISIBILITY_MAX)
    reply = scripts.call(conn, "heartbeat", scripts.scope_of(queue), (config.key_prefix, int(visibility_timeout * 1000),
                                                                       "", job_id, token))
    if len(reply) > 1:
        raise _lost(conn, key, job_id)
    return int(reply[0])


_NOWHERE = "\0"  # no queue holds the job: a cluster's id directory has no entry for it (no queue name has a NUL)


def _locate(conn: redis.Redis, prefix: str, job_ids: list[str]) -> dict[str, str | None]:
    """Where each job's keys are: None (by its id alone) for every id on a single Redis; on a cluster its queue, from
    the id directory, ids without an entry left out (no such job)."""
    if not is_cluster(conn):
        return dict.fromkeys(job_ids)
    return dict(directory.queues_of(conn, prefix, job_ids)) if job_ids else {}


def _job_key(prefix: str, job_id: str, queue: str | None) -> str:
    return template("job", prefix, queue) % job_id


def _missing(job_id: str) -> Exception:
    """What a fenced script answers for a job that is not there (NotFound)."""
    return replies.error(Reply.NOT_FOUND, f"job {job_id}")


@dataclass(frozen=True)
class Ack:
    """One outcome to record: `completed` with a result, or `failed` with an error (str or
    {type?, message, traceback?}) and whether it may be retried."""

    job_id: str
    token: str
    status: str
    result: Any = None
    error: str | dict[str, Any] | None = None
    retryable: bool = True

    def check(self) -> None:
        _check_token(self.token)
        if self.status not in STATUSES:
            raise ValidationError(f"status must be one of {', '.join(STATUSES)}")
        if self.status == "completed" and self.error is not None:
            raise ValidationError("a completed ack takes a result, not an error")
        if self.status == "failed" and self.error is None:
            raise ValidationError("a failed ack needs an error")
        if self.status == "failed" and self.result is not None:
            raise ValidationError("a failed ack takes an error, not a result")


def ack(conn: redis.Redis, config: Config, job_id: str, token: str, status: str, result: Any = None,
        error: str | dict[str, Any] | None = None, retryable: bool = True, worker: str | None = None) -> AckResult:
    """Finish the job the token leases: `completed` with a result, or `failed` with an error (str or
    {type?, message, traceback?}); a retryable failure with attempts left is scheduled after its backoff.
    The scripts check the token atomically: a wrong or stale one raises LeaseLost and writes nothing."""
    (out,) = ack_many(conn, config, [Ack(job_id, token, status, result, error, retryable)], worker)
    if isinstance(out, Exception):
        raise out
    return out


def ack_many(conn: redis.Redis, config: Config, acks: list[Ack],
             worker: str | None = None) -> list[AckResult | LeaseLost | NotFound]:
    """Record many outcomes in two round trips (read each job's attempt and backoff, then every fenced
    script; on a cluster one more first, the id directory's). Each entry is its own outcome: an AckResult, or the
    LeaseLost / NotFound of a token that does not hold its job (that one changes nothing; the others still apply).
    ValidationError for bad input, before anything is written."""
    for one in acks:
        one.check()
    queues = _locate(conn, config.key_prefix, [one.job_id for one in acks])
    known = [one for one in acks if one.job_id in queues]  # on a cluster, the jobs the id directory knows
    keys = [_job_key(config.key_prefix, one.job_id, queues[one.job_id]) for one in known]
    pipe = conn.pipeline(transaction=False)
    for key in keys:
        pipe.hmget(key, *_ACK_FIELDS)
    # One HMGET per ack, each answering one value per field asked.
    found = [{k: v.decode(errors="replace") for k, v in zip(_ACK_FIELDS, values, strict=True) if v is not None}
             for values in (pipe.execute() if known else [])]
    calls, where = _ack_calls(Leases(conn, config), known, found, worker, [queues[one.job_id] for one in known])
    raws = scripts.call_many(conn, calls, config.wait()) if calls else []
    # A completion's reply is its entry in its complete.lua call's list (one per job, in order); a failure's
    # is its fail.lua call's own.
    results = [_ack_result(one, raws[call] if at is None else raws[call][at])
               for one, (call, at) in zip(known, where, strict=True)]
    gone = _deleted(config, known, found, [queues[one.job_id] for one in known], results)
    done = iter(replayed(conn, known, keys, results))
    directory.forget_deleted(conn, config.key_prefix, gone, "ack")
    return [next(done) if one.job_id in queues else cast("NotFound", _missing(one.job_id)) for one in acks]


def _deleted(config: Config, acks: list[Ack], found: list[dict[str, str]], queues: list[str | None],
             results: list[AckResult | LeaseLost | NotFound]) -> list[tuple[str, str]]:
    """On a cluster, the id directory entries (directory.value) of the jobs these acks deleted with their outcome (a
    result or, failed for good, failure TTL of 0: complete.lua and fail.lua cannot reach the directory, another
    slot). Read before `replayed`: a replayed ack deleted nothing now."""
    out = []
    for one, fields, queue, res in zip(acks, found, queues, results, strict=True):
        if queue is None or not isinstance(res, AckResult) or res.state not in STATUSES:
            continue
        field, default = (("result_ttl", config.result_ttl) if res.state == "completed"
                          else ("failure_ttl", config.failure_ttl))
        if directory.ttl_is_zero(fields, field, default):
            out.append((one.job_id, directory.value(queue, fields.get(directory.INCARNATION))))
    return out


@dataclass
class _Batch:
    """The completions that share one complete.lua call: one worker name (and one queue on a cluster)."""

    worker: str
    done: list[Completion]


def _ack_calls(leases: Leases, acks: list[Ack], found: list[dict[str, str]], worker: str | None,
               queues: list[str | None] | None = None) -> tuple[list[scripts.Call], list[tuple[int, int | None]]]:
    """The fenced script calls of `acks` (their jobs' fields read in `found`, their queues on a cluster in `queues`:
    the slot of each call, even for a job whose hash is gone), and where each ack's reply
    is: (call, position in that complete.lua batch) or (call, None) for its own fail.lua call.
    complete.lua fences each job of a batch by its own token, so completions share a call per worker name
    (the name it records), and per queue on a cluster (one call's keys are in one slot); each failure keeps
    its own fail.lua call. A job acked again in the same request joins a batch only if that call runs after
    (or is) the call of its previous ack, else starts a new one: its acks run in the order given, the later
    one refused or replayed as with one call per ack. Acks of different jobs may run out of their order: each
    is fenced by its own job's token, so none changes whether another applies."""
    pending: list[scripts.Call | _Batch] = []
    where: list[tuple[int, int | None]] = []
    open_batches: dict[tuple[str, str], int] = {}
    last: dict[str, int] = {}  # job id -> the call of its latest ack so far
    now = time.time()
    for one, fields, queue in zip(acks, found, queues or [None] * len(acks), strict=True):
        lease = Lease(one.job_id, queue if queue is not None else fields.get("origin", ""), one.token, 0, fields)
        started = int(fields["js_started_ms"]) / 1000 if fields.get("js_started_ms") else now
        by = worker or fields.get("worker_name") or "pull"
        if one.status == "completed":
            key = (by, leases.slot(lease))
            if open_batches.get(key, -1) < last.get(one.job_id, 0):
                open_batches[key] = len(pending)
                pending.append(_Batch(by, []))
            last[one.job_id] = open_batches[key]
            batch = cast("_Batch", pending[last[one.job_id]])
            where.append((last[one.job_id], len(batch.done)))
            batch.done.append(Completion(lease, one.result, started, now))
        else:
            exc_type, message, traceback = error_parts(one.error)  # type: ignore[arg-type]
            last[one.job_id] = len(pending)
            where.append((len(pending), None))
            pending.append(leases.fail_call(lease, exc_type, message, traceback, one.retryable, by, started, now))
    calls = [leases.complete_many_call(p.worker, p.done) if isinstance(p, _Batch) else p for p in pending]
    return calls, where


def _ack_result(one: Ack, raw: Any) -> AckResult | LeaseLost | NotFound:
    """What one ack's script reply says: where its job went, or why its token was refused."""
    try:
        reply = scripts.check(raw, one.job_id)
    except (LeaseLost, NotFound) as exc:
        return exc
    if one.status == "completed":
        return AckResult(one.job_id, "completed")
    state = text(reply[1])
    return AckResult(one.job_id, state, int(reply[2]) if state == "scheduled" else None)


def replayed(conn: redis.Redis, acks: list[Ack], keys: list[str],
             out: list[AckResult | LeaseLost | NotFound]) -> list[AckResult | LeaseLost | NotFound]:
    """A refused ack that repeats the one its token recorded (a network retry) gets that ack's answer.
    complete.lua and fail.lua keep `ACKED_FIELD` = `state|due_ms|token` of the last ack in the HSET that ends
    the lease; tokens are never reused, so a match means this very lease ended with this outcome. The same
    token with the other status stays refused. One HGET per refused ack (`keys`: each ack's job hash), none on the
    usual path."""
    refused = [i for i, res in enumerate(out) if isinstance(res, LeaseLost)]
    if not refused:
        return out
    pipe = conn.pipeline(transaction=False)
    for i in refused:
        pipe.hget(keys[i], ACKED_FIELD)
    for i, raw in zip(refused, pipe.execute(), strict=True):
        lost = cast("LeaseLost", out[i])
        state, _, rest = text(raw).partition("|") if raw else ("", "", "")
        due, _, token = rest.partition("|")
        if token != acks[i].token or not state:
            continue
        if (state == "completed") != (acks[i].status == "completed"):
            out[i] = LeaseLost(f"job {acks[i].job_id}: this token already acked it as "
                               f"{'completed' if state == 'completed' else 'failed'}", lost.state)
            continue
        out[i] = AckResult(acks[i].job_id, state, int(float(due)) if due else None)
    return out


def error_parts(error: str | dict[str, Any]) -> tuple[str, str, str]:
    """(type, message, traceback) of an ack's error: a string is the message."""
    if isinstance(error, str):
        return DEFAULT_ERROR_TYPE, error, ""
    return (str(error.get("type") or DEFAULT_ERROR_TYPE), str(error.get("message", "")),
            str(error.get("traceback") or ""))


def job_call(lease: Lease) -> JobCall:
    """The function, arguments, payload and meta of a claimed job (unreadable parts come back empty)."""
    try:
        function, _, args, kwargs = load_data(lease.fields["data"])
    except Exception:  # noqa: BLE001 - a job enqueued with objects this process cannot import is still served
        function, args, kwargs = "<unreadable>", (), {}
    payload = None
    raw = lease.fields.get("js_payload")
    if raw:
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = raw
    meta = None
    if lease.fields.get("meta"):
        try:
            meta = pickle.loads(lease.fields["meta"])
        except Exception:  # noqa: BLE001 - as for data
            meta = None
    return JobCall(function, args, kwargs, payload, meta if isinstance(meta, dict) else None)


def _lost(conn: redis.Redis, key: str, job_id: str) -> Exception:
    """What a fenced script would have answered (fence() in _lib.lua) for a token heartbeat.lua reported lost:
    NotFound for a job that is gone, else LeaseLost with the state the job is in now (its hash: `key`)."""
    values = conn.hmget(key, "js_state", "status", "origin")
    if all(v is None for v in values):
        return _missing(job_id)
    # strict=False: origin, the third value, only tells a job that is there from one that is gone (above).
    fields = {k: text(v) for k, v in zip(("js_state", "status"), values, strict=False) if v is not None}
    return replies.error(Reply.LEASE_LOST, f"job {job_id}", state_of(fields).value)


def _check_queue(queue: str) -> None:
    if not is_name(queue, QUEUE_NAME):
        raise ValidationError(f"queue name {queue!r} must be 1-128 of A-Z a-z 0-9 _ . : -")


def _check_token(token: str) -> None:
    # An empty token would match the blanked token of a finished job in heartbeat.lua.
    if not isinstance(token, str) or not 0 < len(token) <= defaults.PULL_TOKEN_MAX:
        raise ValidationError(f"token must be 1-{defaults.PULL_TOKEN_MAX} characters")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValidationError(f"{name} must be {low:g}-{high:g}")
