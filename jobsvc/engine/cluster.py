"""What the core does differently on a Redis Cluster (docs/cluster.md): each queue's keys are one slot, so a pass
over "every job" is a pass per queue, over the queues the cluster's registry names (`cluster_queues`, SADDed by
the client as it enqueues), and a blocking wait on several queues' lists is a wait per list (`SlotWait`). On a
single Redis there is one scope, None: the script's keys as they always were."""
from __future__ import annotations

import contextlib
import select
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from .connection import is_cluster, text
from .keys import RQ_WORKERS, cluster_name
from .serialization import utcnow_str

__all__ = ["SlotWait", "register_worker", "scopes", "unregister_worker"]

# Attempts at ending a BLPOP that Redis has not registered yet (CLIENT UNBLOCK answered 0), 1 ms apart.
UNBLOCK_TRIES = 50


def scopes(conn: redis.Redis, prefix: str) -> Sequence[str | None]:
    """The scopes a maintenance pass walks: [None] on a single Redis, each queue (sorted) on a cluster."""
    if not is_cluster(conn):
        return [None]
    return sorted(text(q) for q in conn.smembers(cluster_name(prefix, "cluster_queues")))


def register_worker(conn: redis.Redis, key: str, fields: Mapping[Any, Any], ttl: int) -> None:
    """A worker's registration on a cluster, under RQ's names (`rq:worker:<name>`, listed in `rq:workers`), which
    workers_info reads on either layout. RQ writes both in one MULTI, which a cluster refuses (two slots): here the
    hash comes first, so a crash in between leaves a hash that expires, never a listed name without one (and a
    listing skips those anyway)."""
    if conn.exists(key) and not conn.hexists(key, "death"):
        raise ValueError(f"There exists an active worker named {key.removeprefix('rq:worker:')!r} already")
    conn.delete(key)
    conn.hset(key, mapping=fields)
    conn.expire(key, ttl)
    conn.sadd(RQ_WORKERS, key)


def unregister_worker(conn: redis.Redis, key: str) -> None:
    """RQ's register_death, one key at a time: off the list, the hash marked dead and left to expire in 60 s."""
    conn.srem(RQ_WORKERS, key)
    conn.hset(key, "death", utcnow_str())
    conn.expire(key, 60)


class SlotWait:
    """Block until one of several lists has an item, the lists in any slots of a Redis Cluster.

    Why: BLPOP over several keys is refused when they are in different slots (CROSSSLOT), and each queue is its own
    slot. So each list gets its own connection to the node that serves it and its own BLPOP; the first reply wins
    and the other BLPOPs are ended with CLIENT UNBLOCK (an item one of them popped meanwhile goes back to the front
    of its list: a wake-up token is meant for some waiting process, not lost). Connections are kept from one wait
    to the next. Used from one thread; `close()` after a wait broken midway (a signal), since replies may be owed."""

    def __init__(self, conn: redis.RedisCluster, lists: Sequence[str]):
        self.cluster = conn
        self.lists = list(lists)
        self._conns: dict[str, tuple[Any, int, redis.Redis]] = {}  # list -> (connection, client id, its node)

    def _connection(self, name: str) -> tuple[Any, int, redis.Redis]:
        if name not in self._conns:
            node = self.cluster.get_redis_connection(self.cluster.get_node_from_key(name))
            pool = node.connection_pool
            # Its own connection, outside the pool: it stays blocked. No health-check PING in front of a blocked read.
            c = pool.connection_class(**{**pool.connection_kwargs, "health_check_interval": 0})
            try:
                c.connect()
                c.send_command("CLIENT", "ID")
                self._conns[name] = (c, int(c.read_response()), node)
            except BaseException:
                c.disconnect()
                raise
        return self._conns[name]

    def wait(self, timeout: float) -> str | None:
        """The list an item was popped from (the item is consumed: a wake-up token), None when `timeout` seconds
        passed first. A connection error closes every connection (the next wait connects afresh) and is raised."""
        if not self.lists:
            select.select([], [], [], timeout)
            return None
        try:
            return self._wait(timeout)
        except redis.ResponseError as exc:
            # A slot moved (MOVED), or Redis ended the BLPOP itself ("UNBLOCKED ... master -> replica": a failover
            # demoted the node), or the cluster is down for a moment: what a retry after relearning the slot map
            # cures, so it is raised as the connection error every caller already retries on.
            self.close()
            with contextlib.suppress(redis.RedisError, redis.exceptions.RedisClusterException):
                self.cluster.nodes_manager.initialize()
            raise redis.ConnectionError(f"a wait on the cluster was broken: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def _wait(self, timeout: float) -> str | None:
        waiting = {}
        for name in self.lists:
            c, _, _ = self._connection(name)
            c.send_command("BLPOP", name, timeout)
            waiting[name] = c
        woken: str | None = None
        deadline_reads = [c._sock for c in waiting.values()]
        while waiting and woken is None:
            ready = [n for n, c in waiting.items() if c.can_read(0)]
            if not ready:
                # Redis answers every BLPOP at its timeout; the extra second only guards against a lost reply.
                if not select.select(deadline_reads, [], [], timeout + 1.0)[0]:
                    raise redis.TimeoutError("no reply to BLPOP")
                continue
            for name in ready:
                reply = waiting.pop(name).read_response()
                if reply is None:
                    continue
                if woken is None:
                    woken = name
                else:  # two at once: the second item is some other waiter's
                    self._conns[name][2].lpush(name, reply[1])
        for name, c in waiting.items():
            self._end(name, c)
        return woken

    def _end(self, name: str, c: Any) -> None:
        """End a BLPOP still pending; an item it popped in the meantime goes back where it was."""
        _, client_id, node = self._conns[name]
        for _ in range(UNBLOCK_TRIES):
            if c.can_read(0) or node.client_unblock(client_id) or c.can_read(0.001):
                reply = c.read_response()
                if reply is not None:
                    node.lpush(name, reply[1])
                return
        # Redis never saw the BLPOP: drop the connection with it. Should Redis still read it before the close, the
        # token it pops is lost: a waiting process then sleeps its idle wait out, no job is lost.
        c.disconnect()
        del self._conns[name]

    def close(self) -> None:
        for c, _, _ in self._conns.values():
            c.disconnect()
        self._conns.clear()
