"""Key names, script scopes and queues in either layout (docs/cluster.md 2.1): what the client, leases, the worker
and the admin reads and bulk operations name keys with.

On a single Redis the names are those `Keys` renders and a script call takes no scope: nothing changes. On a Redis
Cluster each queue's keys share its hash tag (one slot), so a listing or a bulk operation walks the cluster's
queue registry, names each queue's keys under its tag (`keys.template`) and scopes each script call to that
queue's slot (`scripts.scope_of`): no call spans two slots."""
from __future__ import annotations

from dataclasses import dataclass

import redis

from .. import defaults
from . import scripts
from .cluster import scopes
from .connection import is_cluster
from .keys import cluster_name, template
from .states import State

# The family of the sorted set that holds a queue's jobs in each ended (or deferred) state (Keys.registry's).
REGISTRY_FAMILY = {State.COMPLETED: "finished", State.FAILED: "failed", State.QUARANTINED: "quarantined",
                   State.CANCELLED: "canceled", State.DEFERRED: "deferred"}


@dataclass(frozen=True)
class Layout:
    prefix: str
    cluster: bool

    @classmethod
    def of(cls, conn: redis.Redis, prefix: str) -> Layout:
        return cls(prefix, is_cluster(conn))

    def key(self, family: str, queue: str | None, *names: object) -> str:
        """A key of `family` with `names` filled in; on a cluster under `queue`'s tag (ignored on one Redis)."""
        return template(family, self.prefix, queue if self.cluster else None) % names

    def job(self, queue: str | None, job_id: str) -> str:
        return self.key("job", queue, job_id)

    def registry(self, state: State, queue: str) -> str:
        if state not in REGISTRY_FAMILY:
            raise ValueError(f"{state.value} has no registry")
        return self.key(REGISTRY_FAMILY[state], queue, queue)

    def lane(self, queue: str, priority: int) -> str:
        """A queue's ready list of one priority; priority 5 is RQ's queue list (Keys.lane)."""
        if priority == defaults.PRIORITY:
            return self.key("rq_queue", queue, queue)
        return self.key("lane", queue, queue, priority)

    def scope(self, queue: str | None) -> tuple[str, ...]:
        """A script call's `keys`: its queue's slot on a cluster, () on one Redis."""
        return scripts.scope_of(queue if self.cluster else None)

    def cluster_queues(self, conn: redis.Redis) -> list[str]:
        """Every queue of the cluster (its registry), in name order; [] on one Redis (which has its own sets)."""
        return [q for q in scopes(conn, self.prefix) if q is not None]

    def has_queue(self, conn: redis.Redis, queue: str) -> bool:
        """Is `queue` in the cluster's queue registry (a cluster only)."""
        return bool(conn.sismember(cluster_name(self.prefix, "cluster_queues"), queue))
