"""Redis connections from a URL or an existing client."""
from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import redis

from ..config import Config
from ..errors import ValidationError


def connect(url_or_conn: str | redis.Redis | None = None, config: Config | None = None) -> redis.Redis:
    """A Redis client (bytes replies, as RQ expects) from a URL, a client, or REDIS_URL."""
    if isinstance(url_or_conn, (redis.Redis, redis.RedisCluster)):
        return url_or_conn  # a cluster client too: the core scopes its calls (is_cluster)
    url = url_or_conn or (config or Config.from_env()).redis_url
    if not url:
        raise ValidationError("no Redis URL: set REDIS_URL or pass --url (or run `jobsvc up`, whose embedded Redis "
                              "the other commands find through .jobsvc/redis_url in the same directory)")
    scheme, rest = url.split("://", 1) if "://" in url else (url, "")
    if scheme.lower() in CLUSTER_SCHEMES:
        # A cluster (any node's address): redis-py's client learns the others; the core scopes its calls.
        plain = "rediss" if scheme.lower().startswith("rediss") else "redis"
        return redis.RedisCluster.from_url(f"{plain}://{rest}", health_check_interval=30)  # type: ignore[return-value]
    return redis.Redis.from_url(url, health_check_interval=30)


# The schemes that name a Redis Cluster (docs/cluster.md).
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")

# Errors after which the same call may succeed later: Redis away, or a cluster in the middle of a failover (the slot's
# master gone or moved, the cluster down for a moment). A caller that retries (the worker) retries on these.
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterDownError,
             redis.exceptions.AskError, redis.exceptions.TryAgainError)


def address(conn: redis.Redis) -> str:
    """Where the connection goes: `host:port/db`, or `unix:<path>/db`, or `cluster:host:port` (the node a cluster
    client asks first; it learns the others); never its password."""
    if isinstance(conn, redis.RedisCluster):
        node = conn.get_default_node()
        return f"cluster:{node.host}:{node.port}"
    kw = conn.connection_pool.connection_kwargs
    if kw.get("path"):
        return f"unix:{kw['path']}/{kw.get('db', 0)}"
    return f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"


def is_cluster(conn: object) -> bool:
    """A Redis Cluster client: the core scopes each script call to one queue's slot (docs/cluster.md)."""
    return isinstance(conn, redis.RedisCluster)


def text(value: object) -> str:
    """A Redis reply as text: a name or id (jobsvc's connections answer bytes; redis-py types every reply
    `bytes | str`, and a connection made with decode_responses answers str), or a script's integer."""
    return value.decode() if isinstance(value, bytes) else str(value)


def redis_ms(conn: redis.Redis) -> int:
    """Redis's clock in epoch milliseconds (TIME): the one clock every process and script agrees on."""
    sec, usec = conn.time()
    return int(sec) * 1000 + int(usec) // 1000


def round_trip(conn: redis.Redis, commands: Iterable[tuple[Any, ...]]) -> list[Any]:
    """Send commands on one pooled connection and read every reply (error replies returned, not raised).

    This is a pipeline without redis-py's Pipeline object, whose bookkeeping costs about as much as the
    round trip itself on the worker's hot path. Each command goes out as soon as `commands` yields it, so a
    caller that builds them lazily (a big enqueue_many) builds the next while Redis runs the last. A
    connection that fails on the first send (a stale one after a Redis restart) is replaced once; a failure
    after a command went out is raised, never retried, since it may have run."""
    if isinstance(conn, redis.RedisCluster):
        return per_node(conn, commands)[0]
    pool = conn.connection_pool
    pending = iter(commands)
    first = next(pending, None)
    if first is None:
        return []
    for attempt in (1, 2):
        c = pool.get_connection()
        try:
            try:
                c.send_packed_command(c.pack_commands([first]))
            except (redis.ConnectionError, redis.TimeoutError):
                c.disconnect()
                if attempt == 2:
                    raise
                continue
            sent = 1
            for command in pending:
                c.send_packed_command(c.pack_commands([command]))
                sent += 1
            return [_reply(c) for _ in range(sent)]
        except BaseException:
            c.disconnect()
            raise
        finally:
            pool.release(c)
    raise AssertionError("unreachable")


def per_node(conn: redis.RedisCluster, commands: Iterable[tuple[Any, ...]],
             last: tuple[Any, ...] | None = None) -> tuple[list[Any], dict[str, Any]]:
    """On a Redis Cluster (docs/cluster.md): the commands grouped by the node that serves their first key's slot,
    each group sent as one round trip on one connection of that node (round_trip: never retried once sent, as
    redis-py's cluster client would), `last` (a WAIT) at the end of each group, on that same connection. The
    replies in the order of `commands`, and each node's reply to `last`. A group refused with MOVED or ASK (a
    slot that moved) did not run: it is sent again once, after the client relearns the slots. A node that cannot
    be reached (a failover) gives its connection error as the reply of each of its commands, and the other nodes'
    commands still go: a caller must not take what ran elsewhere for undone (a claim that ran leases jobs)."""
    pending = list(commands)
    out: list[Any] = [None] * len(pending)
    lasts: dict[str, Any] = {}
    todo = list(range(len(pending)))
    for attempt in (1, 2):
        groups: dict[str, tuple[Any, list[int]]] = {}
        for i in todo:
            node = conn.get_node_from_key(_first_key(pending[i]))
            groups.setdefault(node.name, (node, []))[1].append(i)
        moved = []
        for name, (node, idx) in groups.items():
            sent = [pending[i] for i in idx] + ([last] if last else [])
            try:
                replies = round_trip(conn.get_redis_connection(node), sent)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                _relearn(conn)  # the node may be gone for good (a failover): the caller's retry goes to its heir
                replies = [exc] * len(sent)
            if last:
                lasts[name] = replies.pop()
            for i, reply in zip(idx, replies, strict=True):
                out[i] = reply
                if isinstance(reply, redis.exceptions.AskError):  # MOVED too (a subclass): redis-py drops the word
                    moved.append(i)
        if not moved or attempt == 2:
            return out, lasts
        _relearn(conn)
        todo = moved
    raise AssertionError("unreachable")


def _relearn(conn: redis.RedisCluster) -> None:
    """Read the slot map again (CLUSTER SLOTS from a node that answers). When none answers, the caller's error
    stands and the next call tries again."""
    with contextlib.suppress(redis.RedisError, redis.exceptions.RedisClusterException):
        conn.nodes_manager.initialize()


def _first_key(command: tuple[Any, ...]) -> Any:
    """The key a command's node is chosen by: an EVALSHA's first KEYS entry, any other command's first argument."""
    if str(command[0]).upper() in ("EVALSHA", "EVAL"):
        return command[3] if int(command[2]) else ""
    return command[1]


def _reply(c: Any) -> Any:
    try:
        return c.read_response()
    except redis.ResponseError as exc:
        return exc
