"""What the core does differently on a Redis Cluster (docs/cluster.md): each queue's keys are one slot, so a pass
over "every job" is a pass per queue, over the queues the cluster's registry names (`cluster_queues`, SADDed by
the client as it enqueues). On a single Redis there is one scope, None: the script's keys as they always were."""
from __future__ import annotations

from collections.abc import Sequence

import redis

from .connection import is_cluster, text
from .keys import cluster_name

__all__ = ["scopes"]


def scopes(conn: redis.Redis, prefix: str) -> Sequence[str | None]:
    """The scopes a maintenance pass walks: [None] on a single Redis, each queue (sorted) on a cluster."""
    if not is_cluster(conn):
        return [None]
    return sorted(text(q) for q in conn.smembers(cluster_name(prefix, "cluster_queues")))
