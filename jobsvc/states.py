"""Job states, the edges between them and the RQ status each maps to: declared once, here."""
from __future__ import annotations

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

# (from, to) -> the Lua script (or pipeline) that performs the edge.
TRANSITIONS: dict[tuple[State, State], str] = {
    (State.QUEUED, State.RUNNING): "claim.lua",
    (State.RUNNING, State.COMPLETED): "complete.lua",
    (State.RUNNING, State.SCHEDULED): "fail.lua",  # error with attempts left: backoff (RQ's Retry: its interval)
    (State.RUNNING, State.FAILED): "fail.lua",  # attempts used up, or non-retryable
    (State.RUNNING, State.QUEUED): "reap_expired.lua",  # lease lost; handback.lua on shutdown
    (State.RUNNING, State.QUARANTINED): "reap_expired.lua",
    (State.FAILED, State.QUEUED): "requeue.lua",
    (State.QUARANTINED, State.QUEUED): "requeue.lua",
    (State.CANCELLED, State.QUEUED): "requeue.lua",
    (State.QUEUED, State.CANCELLED): "cancel.lua",
    (State.SCHEDULED, State.CANCELLED): "cancel.lua",
    (State.DEFERRED, State.CANCELLED): "cancel.lua",
    (State.RUNNING, State.CANCELLED): "terminate.lua",
    (State.QUEUED, State.SCHEDULED): "patch.lua",  # a new run time in the future
    (State.SCHEDULED, State.QUEUED): "promote.lua",
    (State.DEFERRED, State.QUEUED): "complete.lua",  # its last dependency completed (release_dependents)
}

# Edges a second script performs too: PATCH moves a scheduled job to queued (a run time now or past), as
# promote does; a failure releases the dependents that allow failure, as a completion releases them all;
# RQ's Retry without an interval puts a failed job straight back on its queue, as a lost lease does.
ALSO_BY: dict[tuple[State, State], str] = {(State.SCHEDULED, State.QUEUED): "patch.lua",
                                           (State.DEFERRED, State.QUEUED): "fail.lua",
                                           (State.RUNNING, State.QUEUED): "fail.lua"}

# Deleting a job is not an edge: every state but running may be deleted (delete.lua).
DELETABLE: frozenset[State] = frozenset(set(State) - {State.RUNNING})

# Where a new job starts: enqueue.lua writes it straight into one of these (deferred: depends_on).
INITIAL: frozenset[State] = frozenset({State.QUEUED, State.SCHEDULED, State.DEFERRED})

TERMINAL: frozenset[State] = frozenset({State.COMPLETED, State.FAILED, State.QUARANTINED, State.CANCELLED})

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


def can_move(src: State, dst: State) -> bool:
    return (src, dst) in TRANSITIONS


def state_of(fields: dict[str, str]) -> State:
    """The state of a decoded job hash, whether jobsvc or plain RQ wrote it."""
    own = fields.get("js_state")
    if own:
        return State(own)
    return FROM_RQ_STATUS.get(fields.get("status", ""), State.QUEUED)
