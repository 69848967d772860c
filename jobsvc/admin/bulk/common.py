"""What every bulk operation shares: the filter it takes (BulkFilter, validated before anything is read), the
result it returns (BulkResult), the progress callback, and the chunk size and queue helpers."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from ... import defaults
from ...engine.connection import text
from ...engine.keys import RQ_QUEUE, Keys
from ...engine.layout import Layout
from ...engine.states import State, parse_state
from ...errors import ValidationError
from ...validation import QUEUE_NAME, is_name

SAMPLE_SIZE = 20

# progress(done, total): ids looked at so far, out of an estimate; called after each chunk.
Progress = Callable[[int, int], None] | None


@dataclass
class BulkFilter:
    queue: str | None = None  # None: every queue
    namespace: str | None = None  # job hash field js_ns
    function: str | None = None  # import path: js_group's third part (plain-RQ jobs: RQ's description)
    # a jobsvc state name (or alias), or several (prune); each operation says which it accepts
    state: str | Sequence[str] | None = None
    older_than_s: float | None = None  # ended (or created, if it never ended) more than N seconds ago
    newer_than_s: float | None = None
    error_contains: str | None = None  # substring of js_error, case-insensitive

    def validated(self) -> BulkFilter:
        if self.queue is not None and not is_name(self.queue, QUEUE_NAME):
            raise ValidationError(f"bad queue name {self.queue!r}")
        for name in ("older_than_s", "newer_than_s"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ValidationError(f"{name} must be a number of seconds >= 0")
        for name in ("namespace", "function", "error_contains"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or v == ""):
                raise ValidationError(f"{name} must be a non-empty string")
        return self

    def states(self, accepted: Sequence[State], default: Sequence[State]) -> tuple[State, ...]:
        """The states an operation walks: the filter's, if the operation accepts them, else its default."""
        if self.state is None:
            return tuple(default)
        names = [self.state] if isinstance(self.state, str) else list(self.state)
        if not names:
            raise ValidationError("give at least one state")
        out: list[State] = []
        for name in names:
            try:
                state = parse_state(name) if isinstance(name, str) else None
            except ValueError:
                state = None
            if state is None:
                raise ValidationError(f"unknown state {name!r}")
            if state not in accepted:
                raise ValidationError(f"state must be one of {', '.join(s.value for s in accepted)}")
            if state not in out:
                out.append(state)
        return tuple(out)

    def lua_args(self) -> list[Any]:
        """namespace, function, error (lower case), older_than_ms, newer_than_ms; '' for no filter."""
        def ms(v: float | None) -> Any:
            return "" if v is None else int(v * 1000)

        return [self.namespace or "", self.function or "", (self.error_contains or "").lower(),
                ms(self.older_than_s), ms(self.newer_than_s)]


@dataclass
class BulkResult:
    operation: str
    dry_run: bool
    matched: int  # jobs matching the filter (ttl_sweep: expired registry entries)
    changed: int  # jobs actually changed (0 for dry runs)
    sample: list[str]  # up to 20 matching ids
    skipped: int = 0  # read from the state's registry but gone or moved on when the script looked: safe to repeat
    details: dict[str, int] = field(default_factory=dict)  # per-operation counts (ttl_sweep: deleted, dropped)
    more: bool = False  # stopped at the caller's limit: call again


def queues(conn: redis.Redis, keys: Keys, queue: str | None) -> list[str]:
    """The one queue asked for, or every queue jobsvc or plain RQ has used (on a Redis Cluster, where plain RQ
    does not run: every queue of its registry), in name order: a bulk operation walks them one at a time."""
    if queue is not None:
        return [queue]
    layout = Layout.of(conn, keys.prefix)
    if layout.cluster:
        return layout.cluster_queues(conn)
    pipe = conn.pipeline(transaction=False)
    pipe.smembers(keys.queues)
    pipe.smembers("rq:queues")
    own, rq = pipe.execute()
    names = {text(q) for q in own}
    names |= {text(q)[len(RQ_QUEUE):] for q in rq if text(q).startswith(RQ_QUEUE)}
    return sorted(names)


def chunk_size(chunk: int) -> int:
    """`chunk`, checked: ids per script call, 1..BULK_CHUNK."""
    if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= defaults.BULK_CHUNK:
        raise ValidationError(f"chunk must be 1..{defaults.BULK_CHUNK}")
    return chunk
