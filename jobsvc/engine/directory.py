"""A Redis Cluster's id directory (docs/cluster.md 2.2): job id -> queue, so that an operation given only a job id
finds the job's keys, which carry its queue's hash tag. On a single Redis a job's key is found from its id alone and
none of this runs.

The directory is ID_SHARDS hashes (jobsvc/engine/keys.py: `ids`), crc16(id) % ID_SHARDS, each in a slot of its own,
so the entries spread over the masters. The rules that keep it true:
  * An entry is written before its job's enqueue script (`plan`: ahead of the script in the same round trip when
    the hash is on the queue's master, else in a round trip before): a job never exists without its entry. An id
    the client draws is drawn with its hash on its queue's master (`local_ids`), so only ids given can cost a
    round trip.
  * An entry is removed after its job is deleted (`forget`), and only while it still names that job's queue.
  * So an entry may outlive its job (a client that died between the two writes, a job deleted where nobody removes
    the entry: result_ttl 0, the TTL sweep and prune until they call `forget`): it reads as "not found", since
    every by-id operation reads the job's own keys in the queue the entry names. `LeftoverSweep` removes them."""
from __future__ import annotations

from binascii import crc_hqx
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import redis

from . import scripts
from .connection import round_trip, text
from .keys import ID_SHARDS, id_directory, template

__all__ = ["LeftoverSweep", "existing", "forget", "local_ids", "plan", "queues_of", "shard_of"]

Command = tuple[Any, ...]
MAX_DRAWS = 100  # local_ids: far more than the masters a cluster has, in practice


def shard_of(job_id: str) -> int:
    """The number of the directory hash that holds `job_id`'s entry (crc16, as Redis Cluster hashes keys)."""
    return crc_hqx(job_id.encode(), 0) % ID_SHARDS


def _by_shard(job_ids: Iterable[str]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for job_id in dict.fromkeys(job_ids):
        out.setdefault(shard_of(job_id), []).append(job_id)
    return out


def _node(conn: redis.RedisCluster, key: str) -> str:
    return str(conn.get_node_from_key(key).name)


def plan(conn: redis.RedisCluster, prefix: str, jobs: Iterable[tuple[str, str]]) -> tuple[list[Command],
                                                                                          list[Command]]:
    """The HSETs that write the entries of `jobs` ((id, queue) pairs), one per directory hash and master of the
    queues: (first, alongside). `first` go in a round trip before the enqueue scripts; `alongside` are on the master
    of their jobs' queue, so they go ahead of those scripts in the scripts' own round trip (a connection runs its
    commands in order: the entry is written first all the same)."""
    groups: dict[tuple[int, str], list[str]] = {}
    queue_node: dict[str, str] = {}
    for job_id, queue in jobs:
        if queue not in queue_node:
            queue_node[queue] = _node(conn, template("job", prefix, queue))
        groups.setdefault((shard_of(job_id), queue_node[queue]), []).extend((job_id, queue))
    first: list[Command] = []
    alongside: list[Command] = []
    for (shard, node), pairs in groups.items():
        key = id_directory(prefix, shard)
        (alongside if _node(conn, key) == node else first).append(("HSET", key, *pairs))
    return first, alongside


def local_ids(conn: redis.RedisCluster, prefix: str, queues: Sequence[str], new_id: Callable[[], str]) -> list[str]:
    """A new id for a job of each of `queues`, drawn (from `new_id`) until its directory hash is on the master of
    its queue, so that `plan` puts its entry alongside its enqueue script: no round trip of its own. The ids stay
    new_id's (random), a few draws each (as many as masters, on average); after MAX_DRAWS the last is kept."""
    shard_node: dict[int, str] = {}  # filled as drawn: a single enqueue looks up a few, a batch all 64
    queue_node = {q: _node(conn, template("job", prefix, q)) for q in set(queues)}
    out = []
    for queue in queues:
        job_id = new_id()
        for _ in range(MAX_DRAWS - 1):
            shard = shard_of(job_id)
            if shard not in shard_node:
                shard_node[shard] = _node(conn, id_directory(prefix, shard))
            if shard_node[shard] == queue_node[queue]:
                break
            job_id = new_id()
        out.append(job_id)
    return out


def queues_of(conn: redis.Redis, prefix: str, job_ids: Iterable[str]) -> dict[str, str]:
    """The queue each id's entry names (ids without one left out), one round trip per master: the directory as it
    reads, not whether the job still exists (`existing` tells)."""
    shards = _by_shard(job_ids)
    replies = round_trip(conn, [("HMGET", id_directory(prefix, s), *ids) for s, ids in shards.items()])
    out: dict[str, str] = {}
    for ids, values in zip(shards.values(), replies, strict=True):  # one HMGET reply per shard asked
        if isinstance(values, Exception):
            raise values
        out.update((job_id, text(q)) for job_id, q in zip(ids, values, strict=True) if q is not None)
    return out


def existing(conn: redis.Redis, prefix: str, jobs: Sequence[tuple[str, str]]) -> set[str]:
    """The ids of `jobs` ((id, queue) pairs) whose job hash exists in that queue's slot, one round trip per master."""
    replies = round_trip(conn, [("EXISTS", template("job", prefix, queue) % job_id) for job_id, queue in jobs])
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return {job_id for (job_id, _), n in zip(jobs, replies, strict=True) if int(n)}


def forget(conn: redis.Redis, prefix: str, jobs: Iterable[tuple[str, str]]) -> int:
    """Remove the entries of deleted jobs ((id, queue) pairs), each only while it names that queue (id_forget.lua:
    the id may have been enqueued again elsewhere since). One round trip per master; how many were removed."""
    queue_of = dict(jobs)
    calls = [("id_forget", (id_directory(prefix, shard),), [v for job_id in ids for v in (job_id, queue_of[job_id])])
             for shard, ids in _by_shard(queue_of).items()]
    return sum(int(n) for n in scripts.call_many(conn, calls)) if calls else 0


class LeftoverSweep:
    """Removes the entries whose job does not exist, a bounded step at a time: HSCAN over one directory hash after
    another, an entry removed only when found jobless on two looks a whole cycle over the hashes apart. Why two: an
    entry is written before its job, so a job being enqueued has an entry and no job for a moment, never for a
    cycle. The integrity pass steps it on a cluster (jobsvc/maintenance/integrity.py); its state is in memory, so a
    new leader starts over (removing nothing in its first cycle)."""

    def __init__(self, conn: redis.Redis, prefix: str):
        self.conn, self.prefix = conn, prefix
        self.shard, self.cursor = 0, 0
        self.suspects: dict[int, set[str]] = {}  # per hash: the ids found jobless on its previous look
        self._found: set[str] = set()  # the ids found jobless so far on this look at the current hash

    def step(self, count: int = 500) -> tuple[int, int]:
        """About `count` entries of the current hash looked at: (looked at, removed)."""
        self.cursor, raw = self.conn.hscan(id_directory(self.prefix, self.shard), self.cursor, count=count)
        # HSCAN answers field -> value pairs; redis-py's return type also covers its no_values form (a list).
        entries = [(text(k), text(v)) for k, v in cast("dict[bytes, bytes]", raw).items()]
        alive = existing(self.conn, self.prefix, entries) if entries else set()
        dead = [(job_id, queue) for job_id, queue in entries if job_id not in alive]
        before = self.suspects.get(self.shard, set())
        removed = forget(self.conn, self.prefix, [(i, q) for i, q in dead if i in before]) if dead else 0
        self._found.update(i for i, _ in dead if i not in before)
        if self.cursor == 0:  # this hash is done: the next one's turn
            self.suspects[self.shard], self._found = self._found, set()
            self.shard = (self.shard + 1) % ID_SHARDS
        return len(entries), removed
