"""Counts per state by queue, namespace and function, read from gauges the Lua transitions keep:
O(groups), never a scan of jobs. A group is one (queue, namespace, function) triple."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import redis

from .keys import Keys
from .states import State

BY = ("queue", "namespace", "function")
# Events counted per group in `<prefix>tally:<group>` (count_event in _lib.lua). lease_lost: a lease expired
# (the reaper took the job back).
EVENTS = ("enqueued", "completed", "failed", "retried", "quarantined", "cancelled", "lease_lost")


@dataclass(frozen=True)
class Group:
    queue: str
    namespace: str
    function: str

    @classmethod
    def parse(cls, raw: str) -> Group:
        queue, namespace, function = raw.split("|", 2)
        return cls(queue, namespace, function)


def group_counts(conn: redis.Redis, keys: Keys) -> dict[Group, dict[str, int]]:
    """Every group with its count per state (states with no job read 0)."""
    names = sorted(g.decode() for g in conn.smembers(keys.groups))
    pipe = conn.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(keys.count(name))
    out: dict[Group, dict[str, int]] = {}
    for name, raw in zip(names, pipe.execute()):
        counts = {s.value: 0 for s in State}
        counts.update({k.decode(): int(v) for k, v in raw.items()})
        out[Group.parse(name)] = counts
    return out


def counts_by(conn: redis.Redis, keys: Keys, by: str) -> dict[str, dict[str, int]]:
    """Counts per state summed by 'queue', 'namespace' or 'function'."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}")
    totals: dict[str, dict[str, int]] = defaultdict(lambda: {s.value: 0 for s in State})
    for group, counts in group_counts(conn, keys).items():
        row = totals[getattr(group, by)]
        for state, n in counts.items():
            row[state] = row.get(state, 0) + n
    return dict(totals)
