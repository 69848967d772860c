"""A Redis Cluster's id directory (docs/cluster.md 2.5): job id -> queue, so that an operation given only a job id
finds the job's keys, which carry its queue's hash tag. On a single Redis a job's key is found from its id alone and
none of this runs.

The directory is ID_SHARDS hashes (jobsvc/engine/keys.py: `ids`), crc16(id) % ID_SHARDS, each in a slot of its own,
so the entries spread over the masters. The rules that keep it true:
  * An entry is written before its job's enqueue script (a drawn id's by `plan`: ahead of the script in the same
    round trip when the hash is on the queue's master, else in a round trip before): a job never exists without
    its entry. An id the client draws is drawn with its hash on its queue's master (`local_ids`), so only ids
    given cost a round trip.
  * An id given is claimed instead (`claim`, id_claim.lua, one script per directory hash and master, in the round
    trip before): its entry is '<queue>|<incarnation>' and its job hash holds the incarnation (INCARNATION), so
    that of two enqueues of one id into two queues only one writes its job, and an entry is told from the entry
    of the same id enqueued again. A drawn id is new: its entry is '<queue>' (one incarnation, nothing to tell).
  * An entry is removed after its job is deleted (`forget`), and only while it holds that job's value (`value`):
    the id may have been enqueued again since, into that queue or another. A remover that knows only the job's
    queue removes a drawn id's entry; a given id's is then left to `LeftoverSweep`.
  * So an entry may outlive its job (a client that died between the two writes, a forget that failed or did not
    know the incarnation): it reads as "not found", since every by-id operation reads the job's own keys in the
    queue the entry names. `LeftoverSweep` removes them, once found jobless for CLAIM_GRACE_MS."""
from __future__ import annotations

import logging
import os
from binascii import crc_hqx
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis

from . import scripts
from .connection import TRANSIENT, redis_ms, round_trip, text
from .keys import ID_SHARDS, id_directory, template

__all__ = ["CLAIM_GRACE_MS", "INCARNATION", "Claim", "LeftoverSweep", "claim", "deleted", "entries_of", "existing",
           "forget", "forget_deleted", "local_ids", "plan", "queue_in", "queues_of", "restore", "shard_of",
           "ttl_is_zero", "value"]

log = logging.getLogger(__name__)
Command = tuple[Any, ...]
MAX_DRAWS = 100  # local_ids: far more than the masters a cluster has, in practice
INCARNATION = "js_inc"  # the job hash field of an id given on a cluster: the incarnation its entry names
# An entry claimed less than this ago whose job is not there yet is an enqueue in flight, not a leftover (`claim`):
# its claim and its enqueue script are consecutive round trips. LeftoverSweep removes no entry younger (`step`).
CLAIM_GRACE_MS = 60_000


def value(queue: str, incarnation: str | None = None) -> str:
    """The entry of a job of `queue`: with its incarnation (js_inc, an id given) when it has one."""
    return f"{queue}|{incarnation}" if incarnation else queue


def queue_in(entry: str) -> str:
    """The queue an entry names (a queue name holds no '|': validation.QUEUE_NAME)."""
    return entry.split("|", 1)[0]


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
    """The HSETs that write the entries of `jobs` ((id, queue) pairs of drawn ids: `value` without an incarnation;
    an id given is claimed instead), one per directory hash and master of the
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
    return {job_id: queue_in(entry) for job_id, entry in entries_of(conn, prefix, job_ids).items()}


def entries_of(conn: redis.Redis, prefix: str, job_ids: Iterable[str]) -> dict[str, str]:
    """Each id's entry as stored (`queue_in` reads its queue), ids without one left out; one round trip per master."""
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
    """Remove the entries of deleted jobs ((id, `value`) pairs), each only while it holds that value (id_forget.lua:
    the id may have been enqueued again since). One round trip per master; how many were removed."""
    return _swap(conn, prefix, [(job_id, entry, "") for job_id, entry in jobs])


def deleted(queue: str, listed: Sequence[Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """A deleting script's list of the jobs of `queue` it deleted: their ids, and their entries' (id, `value`) for
    `forget`. The ids, then, when some had an incarnation (ids given on a cluster), a list of (id, js_inc) pairs
    (sweep_ttl.lua, prune.lua)."""
    incarnations: dict[str, str] = {}
    if listed and isinstance(listed[-1], list):
        pairs, listed = listed[-1], listed[:-1]
        incarnations = {text(pairs[k]): text(pairs[k + 1]) for k in range(0, len(pairs), 2)}
    ids = [text(v) for v in listed]
    return ids, [(job_id, value(queue, incarnations.get(job_id))) for job_id in ids]


def ttl_is_zero(fields: Mapping[str, Any], field: str, default: int) -> bool:
    """Whether a job's `field` TTL (result_ttl, failure_ttl: its own, else `default`) is 0, as the scripts read it
    (tonumber, else the default): an outcome that files it then deletes it at once (file_ended in _lib.lua)."""
    raw = fields.get(field)
    try:
        return (default if raw in (None, "") else int(float(raw))) == 0
    except ValueError:
        return default == 0


def forget_deleted(conn: redis.Redis, prefix: str, jobs: Sequence[tuple[str, str]], who: str) -> None:
    """`forget` for a caller whose own work is done (an outcome recorded, jobs reaped): the entries of the jobs it
    deleted, when there are some; a Redis away is logged, and the integrity pass's `LeftoverSweep` removes them."""
    if not jobs:
        return
    try:
        forget(conn, prefix, jobs)
    except TRANSIENT as exc:
        log.warning("%s: %d id directory entries not removed (%s); the integrity pass will", who, len(jobs), exc)


def restore(conn: redis.Redis, prefix: str, claimed: Iterable[tuple[str, str, str]]) -> int:
    """Undo claims whose enqueue wrote no job ((id, value claimed, value it replaced or '' for none)): each entry
    still holding its claim gets back what it held. One round trip per master."""
    return _swap(conn, prefix, claimed)


def _swap(conn: redis.Redis, prefix: str, swaps: Iterable[tuple[str, str, str]]) -> int:
    shards: dict[int, list[str]] = {}
    for job_id, held, replacement in swaps:
        shards.setdefault(shard_of(job_id), []).extend((job_id, held, replacement))
    calls = [("id_forget", (id_directory(prefix, shard),), args) for shard, args in shards.items()]
    return sum(int(n) for n in scripts.call_many(conn, calls)) if calls else 0


@dataclass(frozen=True)
class Claim:
    """What `claim` found for one id: claimed (`entry` written, `replaced` what it held: None when absent), or not
    (`entry` names another queue, `fresh`: claimed less than CLAIM_GRACE_MS ago)."""

    claimed: bool
    entry: str
    replaced: str | None = None
    fresh: bool = False

    @property
    def incarnation(self) -> str:
        return self.entry.split("|", 1)[1] if "|" in self.entry else ""


def claim(conn: redis.Redis, prefix: str, jobs: Sequence[tuple[str, str, str]]) -> list[Claim]:
    """Claim the entries of ids given ((id, queue, entry expected or '')), in order, one round trip per master
    (id_claim.lua): each is written when absent, naming `queue` already, or holding what is expected."""
    shards: dict[int, list[int]] = {}
    for i, (job_id, _, _) in enumerate(jobs):
        shards.setdefault(shard_of(job_id), []).append(i)
    calls = [("id_claim", (id_directory(prefix, shard),),
              [CLAIM_GRACE_MS, *(v for i in idx for v in (jobs[i][0], jobs[i][1], os.urandom(8).hex(), jobs[i][2]))])
             for shard, idx in shards.items()]
    out: list[Claim] = [Claim(False, "")] * len(jobs)
    for idx, reply in zip(shards.values(), scripts.call_many(conn, calls), strict=True):
        for k, i in enumerate(idx):
            done, entry, extra = reply[3 * k:3 * k + 3]
            out[i] = (Claim(True, text(entry), None if extra is None else text(extra)) if int(done)
                      else Claim(False, text(entry), fresh=bool(int(extra))))
    return out


class LeftoverSweep:
    """Removes the entries whose job does not exist, a bounded step at a time: HSCAN over one directory hash after
    another, an entry removed only when found jobless with the same value on two looks a whole cycle over the hashes
    and at least CLAIM_GRACE_MS apart (Redis's clock), and, for an id given, claimed at least that long ago. Why: an
    entry is written before its job, so a job being enqueued has an entry and no job for a moment (consecutive
    round trips); an enqueue whose entry got half that old before its script writes it again or starts over
    (jobsvc/engine/enqueueing.py), so a cycle that runs fast (a small integrity interval, `run_walk`) cannot take
    it for a leftover. The integrity pass steps it on a cluster (jobsvc/maintenance/integrity.py); its state is in
    memory, so a new leader starts over (removing nothing in its first cycle)."""

    def __init__(self, conn: redis.Redis, prefix: str):
        self.conn, self.prefix = conn, prefix
        self.shard, self.cursor = 0, 0
        # per hash: the entries found jobless on its previous look, id -> (value, when first seen so: Redis ms)
        self.suspects: dict[int, dict[str, tuple[str, int]]] = {}
        self._found: dict[str, tuple[str, int]] = {}  # those found so far on this look at the current hash

    def step(self, count: int = 500) -> tuple[int, int]:
        """About `count` entries of the current hash looked at: (looked at, removed)."""
        self.cursor, raw = self.conn.hscan(id_directory(self.prefix, self.shard), self.cursor, count=count)
        # HSCAN answers field -> value pairs; redis-py's return type also covers its no_values form (a list).
        entries = [(text(k), text(v)) for k, v in cast("dict[bytes, bytes]", raw).items()]
        alive = existing(self.conn, self.prefix, [(i, queue_in(v)) for i, v in entries]) if entries else set()
        dead = [(job_id, entry) for job_id, entry in entries if job_id not in alive]
        now = redis_ms(self.conn) if dead else 0
        before = self.suspects.get(self.shard, {})
        # The same value on both looks: an entry claimed again in between is another incarnation's, maybe in flight.
        seen = {i: before[i] if before.get(i, ("", 0))[0] == v else (v, now) for i, v in dead}
        ripe = [(i, v) for i, v in dead if now - seen[i][1] >= CLAIM_GRACE_MS and not _claimed_lately(v, now)]
        removed = forget(self.conn, self.prefix, ripe) if ripe else 0
        gone = {i for i, _ in ripe}
        self._found.update((i, s) for i, s in seen.items() if i not in gone)
        if self.cursor == 0:  # this hash is done: the next one's turn
            self.suspects[self.shard], self._found = self._found, {}
            self.shard = (self.shard + 1) % ID_SHARDS
        return len(entries), removed


def _claimed_lately(entry: str, now: int) -> bool:
    """Whether an id given's entry ('<queue>|<ms>.<nonce>', `claim`) was claimed less than CLAIM_GRACE_MS ago."""
    stamp = entry.partition("|")[2].partition(".")[0]
    return stamp.isdigit() and now - int(stamp) < CLAIM_GRACE_MS
