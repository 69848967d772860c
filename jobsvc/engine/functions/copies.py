"""The disabled functions on a Redis Cluster (docs/cluster.md 2.4): the registry's set of disabled refs (the master
set, `<prefix>{#functions}:functions:disabled`, written by function_save.lua / function_delete.lua with the
function) and a copy of it in every queue's slot (`<prefix>{<q>}:functions:disabled`), which is what claim.lua
reads there: the per-job scripts never leave their queue's slot. Nothing of this runs on a single Redis, where
claim.lua reads the one set the registry writes.

Who writes the copies (`sync`): a registry write that can change the master set (a disable, an enable, a delete:
a rare admin call, one functions_copy.lua call per queue of the cluster's queue registry), and the client before
its first jobs in a queue: when the queue registry's SADD says the queue is new, and when this connection has not
written that queue's copy yet (jobsvc/engine/enqueueing.py: `_copy_disabled`; so a registration whose copy failed,
after a failover or with its client killed, gets it from the next enqueue into that queue).

Why every copy ends equal to the master set, whatever runs at once:
  * A registry write writes the master set, then reads the queue registry; a queue's registration SADDs the queue
    to the registry, then reads the master set. Whichever of the two reads comes later sees the other's write: a
    queue registered before the disable's registry read gets its copy from the disable, one registered after it
    reads a master set that already has the disable. So some writer always carries each change to each copy.
  * Each writer replaces a copy whole with the master set it read, then reads the master set again and writes
    again while it differs. So the last write to a copy is right: what it wrote was the master set still at its
    writer's second read, after the write; a change after that read is made by a writer that reads the queue
    registry later still, finds the queue there and writes this copy afterwards: that write would be the last.
A registry writer that dies half-way (a client killed between the master set and the copies), or a copy's write lost
in a failover, leaves copies behind until the next registry write or the end of the scheduler's next integrity walk
(jobsvc/maintenance/integrity.py, which syncs every queue); calling `Registry.copy_disabled()` (or the disable
again) writes them all at once."""
from __future__ import annotations

from collections.abc import Sequence

import redis

from ... import defaults
from ...errors import Conflict
from .. import scripts
from ..connection import round_trip, text
from ..keys import OWN_SLOT, cluster_name, template

# The registry's own slot on a cluster, given to its scripts as their scope the way a queue is (as the schedules
# are given SCHEDULES_SLOT): every key function_save.lua and function_delete.lua name is then in `{#functions}`,
# the master set of disabled refs included. No queue is named so: '#' is in no queue name.
FUNCTIONS_SLOT = "#" + OWN_SLOT["function"]
# Rounds of a sync while the master set keeps changing under it; each one lost to another writer, who writes too.
COPY_TRIES = 10


def master_key(prefix: str) -> str:
    """The registry's set of disabled refs on a cluster."""
    return template("functions_disabled", prefix, FUNCTIONS_SLOT)


def sync(conn: redis.Redis, prefix: str, queues: Sequence[str] | None = None) -> int:
    """Write the master set to the copies of `queues` (None: every queue of the cluster's queue registry, read after
    the caller's write to the master set) until the master set read again is the one written (module docstring).
    Returns how many refs left copies (their held jobs can run again: those queues' workers were woken).
    Conflict if the master set kept changing COPY_TRIES times: the other writers write the copies too."""
    master = master_key(prefix)
    for _ in range(COPY_TRIES):
        reads = [("SMEMBERS", master)] + ([] if queues is not None else
                                          [("SMEMBERS", cluster_name(prefix, "cluster_queues"))])
        replies = round_trip(conn, reads)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        refs = sorted(text(r) for r in replies[0])
        targets = sorted(queues if queues is not None else (text(q) for q in replies[1]))
        left = scripts.call_many(conn, [("functions_copy", scripts.scope_of(q),
                                         (prefix, q, defaults.WAKE_TOKENS_MAX, *refs)) for q in targets])
        if sorted(text(r) for r in conn.smembers(master)) == refs:
            return sum(int(n) for n in left)
    raise Conflict("the disabled functions keep changing: their copies in the queues' slots are written by "
                   "those changes; try again")


__all__ = ["COPY_TRIES", "FUNCTIONS_SLOT", "master_key", "sync"]
