"""Job states, the edges between them and the RQ status each maps to: declared once, here.

`EDGES` is the state machine: every change of a job's state, with the Lua script(s) that perform it and when.
`TRANSITIONS` (edge -> scripts) and the state lists other modules use (`RETRYABLE`, `PRUNABLE`, `TTL_STATES`)
are derived from it. `tests/test_jobsvc/test_state_table.py` reads every script in jobsvc/lua/ (its header and
its `js_state` writes) and checks it against `EDGES`; the edge table of docs/states.md is generated from it
(`python -m jobsvc.docgen`)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class State(str, Enum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    QUARANTINED = "quarantined"
    CANCELLED = "cancelled"
    DEFERRED = "deferred"


class Outside(str, Enum):
    """The two ends of an edge that are not states: before enqueue.lua writes the job, after its hash is gone."""

    NEW = "(new)"
    DELETED = "(deleted)"


Node = State | Outside

# The status RQ reads in the job hash for each state.
RQ_STATUS: dict[State, str] = {
    State.SCHEDULED: "scheduled",
    State.QUEUED: "queued",
    State.RUNNING: "started",
    State.COMPLETED: "finished",
    State.FAILED: "failed",
    State.QUARANTINED: "failed",
    State.CANCELLED: "canceled",
    State.DEFERRED: "deferred",
}

# Read side: a hash written by plain RQ has a status but no jobsvc state.
FROM_RQ_STATUS: dict[str, State] = {
    "scheduled": State.SCHEDULED,
    "queued": State.QUEUED,
    "started": State.RUNNING,
    "finished": State.COMPLETED,
    "failed": State.FAILED,
    "canceled": State.CANCELLED,
    "stopped": State.CANCELLED,
    "deferred": State.DEFERRED,
    "created": State.QUEUED,
}

# The performer of an edge that RQ's own code makes (`rq requeue`, an RQ worker of a mixed fleet, Job.cancel):
# it changes only the job's RQ status. The script listed beside it makes jobsvc's js_state and gauge follow.
RQ = "RQ's own code"


@dataclass(frozen=True)
class Edges:
    """Every (from, to) of sources x targets (but from == to) is performed by each of `scripts`, `when`."""

    sources: tuple[Node, ...]
    targets: tuple[Node, ...]
    scripts: tuple[str, ...]
    when: str


S = State
_ENDED = (S.COMPLETED, S.FAILED, S.QUARANTINED, S.CANCELLED)
_WAITING = (S.QUEUED, S.SCHEDULED, S.DEFERRED)
_REQUEUABLE = (S.FAILED, S.QUARANTINED, S.CANCELLED)

EDGES: tuple[Edges, ...] = (
    Edges((Outside.NEW,), (S.QUEUED, S.SCHEDULED, S.DEFERRED), ("enqueue.lua",),
          "`Client.enqueue`, `enqueue_many` (also registry jobs and schedule fires): `scheduled` with a delay or a run "
          "time, `deferred` with `depends_on` while a dependency is not done"),
    Edges((S.SCHEDULED,), (S.QUEUED,), ("promote.lua",),
          "due time reached (the scheduler's `Promoter`); also a one-off job of rq-scheduler (`Scheduler.enqueue_at` "
          "/ `enqueue_in`), which `promote_rq.lua` adopted onto jobsvc's timeline, still `scheduled`, as soon as it "
          "saw it (not while an rqscheduler holds its lock)"),
    Edges((S.SCHEDULED,), (S.QUEUED,), ("promote_rq.lua",),
          "a job plain RQ delayed (`enqueue_in` / `enqueue_at`, an RQ worker's `Retry` with an interval): its time in "
          "RQ's `ScheduledJobRegistry` came (the scheduler's `RqPromoter`)"),
    Edges((S.QUEUED,), (S.SCHEDULED,), ("patch.lua",), "operator sets a run time in the future"),
    Edges((S.SCHEDULED,), (S.QUEUED,), ("patch.lua",), "operator sets a run time now or in the past"),
    Edges((S.QUEUED,), (S.RUNNING,), ("claim.lua",),
          "a worker (Python or pull) claims; atomic over all its queues and priorities. A job RQ's tools put back "
          "after it ended (below) is counted out of the state it left and starts with fresh attempts"),
    Edges((S.RUNNING,), (S.COMPLETED,), ("complete.lua",), "success, only with the current lease token"),
    Edges((S.RUNNING,), (S.SCHEDULED,), ("fail.lua",),
          "an exception with attempts left: backoff with jitter; a job enqueued with RQ's API: RQ's `Retry` with an "
          "interval (`retry_plan` in `_lib.lua` decides which rule applies)"),
    Edges((S.RUNNING,), (S.QUEUED,), ("fail.lua",),
          "a job enqueued with RQ's API whose `Retry` has no interval (or 0): back on its queue at once, "
          "`retries_left` - 1"),
    Edges((S.RUNNING,), (S.FAILED,), ("fail.lua",),
          "last attempt failed, or `NonRetryableError`, or the function cannot be imported; a job enqueued with RQ's "
          "API: no `retries_left` left (none without `retry=`)"),
    Edges((S.RUNNING,), (S.QUEUED,), ("reap_expired.lua",),
          "lease expired (worker killed or hung): attempt and lease loss counted, front of its queue; a job enqueued "
          "with RQ's API only while its `Retry` has `retries_left`, as RQ's `StartedJobRegistry.cleanup` retries an "
          "abandoned job (`retry_plan`)"),
    Edges((S.RUNNING,), (S.SCHEDULED,), ("reap_expired.lua",),
          "lease expired, a job enqueued with RQ's API whose `Retry` has an interval"),
    Edges((S.RUNNING,), (S.FAILED,), ("reap_expired.lua",),
          "lease expired on the last attempt; a job enqueued with RQ's API: no `retries_left` (RQ's "
          "`AbandonedJobError` failure, with its result entry)"),
    Edges((S.RUNNING,), (S.QUARANTINED,), ("reap_expired.lua",),
          "lease expired for the `max_lease_losses`-th time (jobs of jobsvc's API only)"),
    Edges((S.RUNNING,), (S.QUEUED,), ("handback.lua",),
          "a stopping worker returns a job it did not finish: front of its lane, attempt not counted"),
    Edges((S.RUNNING,), (S.CANCELLED,), ("terminate.lua",),
          "operator terminate (mode `terminate`): lease revoked at once, the worker stops the job within a heartbeat "
          "tick (0.25 s)"),
    Edges((S.RUNNING,), (S.FAILED,), ("terminate.lua",),
          "RQ's `send_stop_job_command` (mode `stop`): as terminate, recorded as RQ records a stop (RQ status "
          "`stopped`, `FailedJobRegistry`, a failed result); not retried, dependents stay deferred"),
    Edges((S.DEFERRED,), (S.QUEUED,), ("complete.lua",),
          "its last dependency completed: released in the same script (`release_dependents` in `_lib.lua`), at the "
          "front with `enqueue_at_front`"),
    Edges((S.DEFERRED,), (S.QUEUED,), ("fail.lua", "reap_expired.lua"),
          "a dependency failed for good (not when it is retried), by an exception or a lost lease, and the dependent "
          "allows failure (`allow_failure`); otherwise it stays deferred"),
    Edges((S.DEFERRED,), (S.QUEUED,), ("depend_release.lua",),
          "on a Redis Cluster, a dependency in another queue ended as above: its queue's release outbox carried to "
          "the dependent's queue by the scheduler (`jobsvc/engine/depends.py`, docs/cluster.md 2.5)"),
    Edges(_WAITING, (S.CANCELLED,), ("cancel.lua",), "operator cancel; kept for its `failure_ttl`"),
    Edges((S.QUEUED, S.RUNNING), (S.CANCELLED,), ("cancel_stale.lua",),
          "the cancel-stale sweep (`cancel_stale`, POST /jobs/stale/cancel): `cancel.lua` for a job queued too long, "
          "`terminate.lua` for one running too long, their own code run on each job of a chunk that still matches"),
    Edges(_REQUEUABLE, (S.QUEUED,), ("requeue.lua",),
          "operator retry of one job: attempts and lease losses reset, history kept"),
    Edges(_REQUEUABLE, (S.QUEUED,), ("bulk_requeue.lua",),
          "operator bulk retry (`bulk_retry`, `requeue_quarantined`): what `requeue.lua` does, one chunk of matching "
          "jobs per call"),
    Edges(tuple(s for s in State if s != S.RUNNING), (Outside.DELETED,), ("delete.lua",),
          "operator delete: hash, result, history, index entries, idempotency key (freed: the key may create a new "
          "job)"),
    Edges(_ENDED, (Outside.DELETED,), ("prune.lua",),
          "operator prune (bulk), one chunk per call; the idempotency key stays until its own TTL ends"),
    Edges((S.COMPLETED, S.FAILED, S.CANCELLED), (Outside.DELETED,), ("sweep_ttl.lua",),
          "the result TTL (completed) or failure TTL (failed, cancelled) ended: the scheduler's TTL sweep; the "
          "idempotency key stays until its own TTL ends"),
    Edges((S.COMPLETED, S.FAILED, S.CANCELLED, S.DEFERRED), (S.QUEUED,), (RQ, "sweep_orphans.lua"),
          "RQ's tools put it back on its queue (`rq requeue`, the `requeue` of RQ's finished, failed, canceled or "
          "deferred registry), or an RQ worker of a mixed fleet released a dependent (`enqueue_dependents`): RQ "
          "changes only its status; the integrity sweep makes `js_state` and the gauge follow, an ended job with "
          "fresh attempts, unless `claim.lua` takes it first"),
    Edges((S.QUEUED,), (S.COMPLETED, S.FAILED), (RQ, "sweep_orphans.lua"),
          "an RQ worker of a mixed fleet ran it (`failed` also for RQ's stop); the integrity sweep follows"),
    Edges(_WAITING, (S.CANCELLED,), (RQ, "sweep_orphans.lua"),
          "RQ's `Job.cancel()`; the integrity sweep follows, keeping it for its `failure_ttl`"),
)


def _transitions(rows: tuple[Edges, ...]) -> dict[tuple[Node, Node], tuple[str, ...]]:
    out: dict[tuple[Node, Node], tuple[str, ...]] = {}
    for row in rows:
        for src in row.sources:
            for dst in row.targets:
                if src != dst:
                    have = out.get((src, dst), ())
                    out[(src, dst)] = have + tuple(s for s in row.scripts if s not in have)
    return out


# (from, to) -> the scripts that perform the edge (RQ: RQ's own code, followed by the script beside it).
TRANSITIONS: dict[tuple[Node, Node], tuple[str, ...]] = _transitions(EDGES)


def sources(target: Node, script: str) -> tuple[State, ...]:
    """The states `script` moves a job from into `target`, in State order."""
    return tuple(s for s in State if script in TRANSITIONS.get((s, target), ()))


# An operator's retry (requeue.lua, bulk_requeue.lua) takes a job from these states back to its queue.
RETRYABLE: tuple[State, ...] = sources(State.QUEUED, "requeue.lua")
# An operator's prune (prune.lua) deletes jobs in these states: the ended ones.
PRUNABLE: tuple[State, ...] = sources(Outside.DELETED, "prune.lua")
# States whose jobs end at a TTL (result_ttl for completed, failure_ttl for failed and cancelled): sweep_ttl.lua.
TTL_STATES: tuple[State, ...] = sources(Outside.DELETED, "sweep_ttl.lua")
# Ended states: a job there runs again only when requeued.
TERMINAL: frozenset[State] = frozenset(PRUNABLE)

# Filter aliases accepted from BullMQ users.
ALIASES: dict[str, State] = {
    "waiting": State.QUEUED,
    "wait": State.QUEUED,
    "active": State.RUNNING,
    "delayed": State.SCHEDULED,
    "started": State.RUNNING,
    "finished": State.COMPLETED,
    "canceled": State.CANCELLED,
}


def parse_state(name: str) -> State:
    """A state from its name or an alias; ValueError for anything else."""
    key = name.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    return State(key)


def state_of(fields: dict[str, str]) -> State:
    """The state of a decoded job hash, whether jobsvc or plain RQ wrote it."""
    own = fields.get("js_state")
    if own:
        return State(own)
    return FROM_RQ_STATUS.get(fields.get("status", ""), State.QUEUED)
