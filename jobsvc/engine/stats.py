"""Counts per state by queue, namespace and function: O(groups + queues), never a scan of jobs. A group is one
(queue, namespace, function) triple.

One truth for every surface (`jobsvc stats`, `jobsvc info`, `Client.stats`, the API, the dashboard, /metrics),
read in one consistent snapshot by counts.lua:
* **Per queue**, the jobs in each state are what the queue's structures hold, read as RQ's own tools read them
  (`rq info`: LLEN of RQ's list, its registries without entries past their TTL). A job enqueued with RQ's own
  API is counted the moment RQ pushes it, and whatever RQ's tools do (`rq empty`, `rq requeue`, an RQ worker
  of a mixed fleet, registry cleaning) shows at once. Running jobs: the gauges (jobsvc workers) plus RQ's
  StartedJobRegistry (RQ's workers).
* **Per group**, the gauges the Lua transitions keep (`<prefix>count:<group>`), which count a job from the
  first jobsvc script that writes it. What the structures of a queue hold beyond its groups' gauges -- jobs
  enqueued with RQ's API that no jobsvc script moved yet, or ones RQ's own code moved -- is shown as one more
  group, (queue, "default", UNCOUNTED), so that the breakdowns by namespace and function add up to the queue
  counts. RQ's tools can also leave a gauge counting more than is there (`rq empty` deletes jobsvc's jobs
  behind its back): the scheduler's background integrity pass (jobsvc/maintenance/integrity.py) repairs that
  within a walk; until then the per-group figures of that queue are that much too high, the per-queue ones are not.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import redis

from . import scripts
from .cluster import scopes
from .connection import is_cluster, text
from .job import DEFAULT_NAMESPACE
from .keys import Keys
from .states import State

BY = ("queue", "namespace", "function")
# Events counted per group in `<prefix>tally:<group>` (count_event in _lib.lua). lease_lost: a lease expired
# (the reaper took the job back).
EVENTS = ("enqueued", "completed", "failed", "retried", "quarantined", "cancelled", "lease_lost")
# The function of the group that holds what a queue's structures hold beyond its gauges: mostly jobs enqueued
# with RQ's own API that no jobsvc script moved yet (their function is learnt when one does).
UNCOUNTED = "(rq)"
# The states counts.lua reads off a queue's structures, in the order of its reply (running comes apart).
_STRUCTURE_STATES = (State.QUEUED, State.SCHEDULED, State.DEFERRED, State.COMPLETED, State.FAILED, State.CANCELLED,
                     State.QUARANTINED)


@dataclass(frozen=True)
class Group:
    queue: str
    namespace: str
    function: str

    @classmethod
    def parse(cls, raw: str) -> Group:
        queue, namespace, function = raw.split("|", 2)
        return cls(queue, namespace, function)


def zero() -> dict[str, int]:
    return {s.value: 0 for s in State}


@dataclass(frozen=True)
class Counts:
    queues: dict[str, dict[str, int]]  # queue -> state -> jobs, read off its structures (see the module doc)
    groups: dict[Group, dict[str, int]]  # the gauges, plus (queue, "default", UNCOUNTED) where they miss jobs

    def by(self, by: str) -> dict[str, dict[str, int]]:
        """Jobs per state by 'queue' (the queue counts), 'namespace' or 'function' (groups summed)."""
        if by not in BY:
            raise ValueError(f"by must be one of {', '.join(BY)}")
        if by == "queue":
            return {q: dict(row) for q, row in self.queues.items()}
        out: dict[str, dict[str, int]] = defaultdict(zero)
        for group, counts in self.groups.items():
            _add(out[getattr(group, by)], counts)
        return dict(out)

    def total(self) -> dict[str, int]:
        out = zero()
        for row in self.queues.values():
            _add(out, row)
        return out

    def narrowed(self, queue: str | None = None, namespace: str | None = None,
                 functions: Collection[str] | None = None) -> Counts:
        """The counts of the groups of one queue, namespace and/or function (any of `functions`: a registry
        function's jobs are grouped by its import path). Filtered by queue alone, the queue keeps its own counts;
        by namespace or function, each queue's counts are its matching groups summed."""
        groups = {g: c for g, c in self.groups.items()
                  if (queue is None or g.queue == queue) and (namespace is None or g.namespace == namespace)
                  and (functions is None or g.function in functions)}
        if namespace is None and functions is None:
            return Counts({q: c for q, c in self.queues.items() if queue is None or q == queue}, groups)
        queues: dict[str, dict[str, int]] = defaultdict(zero)
        for group, counts in groups.items():
            _add(queues[group.queue], counts)
        return Counts(dict(queues), groups)

    def grouped(self, by: Sequence[str]) -> list[tuple[dict[str, str], dict[str, int]]]:
        """Jobs per state by several fields at once (e.g. queue and function): one row per combination, each
        ({field: value}, counts), in order of the values. O(groups), off the gauges."""
        if not by or any(b not in BY for b in by):
            raise ValueError(f"group by one or more of {', '.join(BY)}")
        out: dict[tuple[str, ...], dict[str, int]] = defaultdict(zero)
        for group, counts in self.groups.items():
            _add(out[tuple(getattr(group, b) for b in by)], counts)
        return [(dict(zip(by, values, strict=True)), out[values]) for values in sorted(out)]

    def seen_by(self, sees: Callable[[str, str], bool], every_namespace: bool) -> Counts:
        """What a key limited to some queues or namespaces may see: the groups it sees and, for a key that sees
        every namespace, its queues' counts; for one limited to namespaces, its groups summed per queue (the
        jobs of other namespaces in the same queue are not its business)."""
        groups = {g: c for g, c in self.groups.items() if sees(g.queue, g.namespace)}
        if every_namespace:
            queues = {q: c for q, c in self.queues.items() if sees(q, DEFAULT_NAMESPACE)}
        else:
            queues = defaultdict(zero)
            for group, counts in groups.items():
                _add(queues[group.queue], counts)
        return Counts(dict(queues), groups)


def read_counts(conn: redis.Redis, keys: Keys, queue: str | None = None) -> Counts:
    """Every queue's counts and every group's (or those of one queue, which is then there even if unknown), in
    one snapshot (counts.lua): see the module doc."""
    if is_cluster(conn):
        # A snapshot per queue (each is one slot), merged: exact per queue, not one instant across the shards; one
        # round trip per master (call_many groups the calls by node).
        replies = scripts.call_many(conn, [("counts", scripts.scope_of(q), (keys.prefix, q))
                                           for q in ([queue] if queue else scopes(conn, keys.prefix)) if q is not None])
    else:
        replies = [scripts.call(conn, "counts", (), (keys.prefix, queue or ""))]
    raw_groups = [g for reply in replies for g in reply[0]]
    raw_queues = [q for reply in replies for q in reply[1]]
    groups: dict[Group, dict[str, int]] = {}
    gauged: dict[str, dict[str, int]] = defaultdict(zero)  # the gauges summed per queue
    for name, fields in raw_groups:
        counts = zero()
        counts.update({text(fields[i]): int(fields[i + 1]) for i in range(0, len(fields), 2)})
        group = Group.parse(text(name))
        groups[group] = counts
        _add(gauged[group.queue], counts)
    queues: dict[str, dict[str, int]] = {}
    for row in raw_queues:
        queue, sizes, rq_running = text(row[0]), [int(v) for v in row[1:-1]], int(row[-1])
        counts = zero()
        counts.update({s.value: n for s, n in zip(_STRUCTURE_STATES, sizes, strict=True)})
        counts[State.RUNNING.value] = gauged[queue][State.RUNNING.value] + rq_running
        queues[queue] = counts
        extra = {s: max(0, n - gauged[queue].get(s, 0)) for s, n in counts.items()}
        if any(extra.values()):
            groups[Group(queue, DEFAULT_NAMESPACE, UNCOUNTED)] = extra
    return Counts(queues, groups)


def group_counts(conn: redis.Redis, keys: Keys) -> dict[Group, dict[str, int]]:
    """The gauges alone: every group with its count per state (states with no job read 0). Jobs no jobsvc script
    wrote yet are in none (read_counts adds them)."""
    names = sorted(text(g) for g in conn.smembers(keys.groups))
    pipe = conn.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(keys.count(name))
    out: dict[Group, dict[str, int]] = {}
    for name, raw in zip(names, pipe.execute(), strict=True):
        counts = zero()
        counts.update({k.decode(): int(v) for k, v in raw.items()})
        out[Group.parse(name)] = counts
    return out


def counts_by(conn: redis.Redis, keys: Keys, by: str) -> dict[str, dict[str, int]]:
    """Counts per state by 'queue', 'namespace' or 'function' (read_counts)."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}")
    return read_counts(conn, keys).by(by)


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for state, n in counts.items():
        into[state] = into.get(state, 0) + n

