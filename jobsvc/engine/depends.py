"""`depends_on` on a Redis Cluster (docs/cluster.md 2.5), where each queue is a slot of its own. On a single Redis,
and on a cluster when every dependency of a job is in the job's own queue, enqueue.lua defers the job and the script
that ends its last dependency releases it (release_dependents in _lib.lua): one slot, nothing of this module runs.

A job with a dependency in another queue waits across slots, in three atomic steps, each a script in one slot:
  1. `register` (before the job's enqueue): depend_register.lua, in the slot of each dependency queue, records the
     job in each dependency's remote_dependents (flagging the dependency js_dependents 'r') and answers, in the
     same step, which it waits on: those not done for it (done: finished, failed with allow_failure, or gone).
     Every dependency is registered so, its own queue's too, and the job's js_waits field lists those it waits on;
     enqueue.lua then defers it without any dependents set of its queue (those are the single-slot path's).
  2. A dependency that ends (complete.lua; fail.lua and reap_expired.lua when it fails for good) with the flag
     notes its RQ status in its queue's release outbox, in the script that ends it (_lib.lua: note_release).
  3. `ReleaseDrain` (the scheduler's leader pass) carries each outbox entry to the dependents' queues
     (depend_release.lua: the dependency leaves the job's js_waits; the last one releases it, as RQ would), then
     acknowledges it in the dependency's slot (depend_ack.lua).
Crashes: each step is atomic and step 3 is idempotent (a dependency told twice is no longer in js_waits), so a crash
between two steps is taken up by the next pass. A dependency that ends between steps 1 and the enqueue is in the
outbox before its dependent exists: that telling answers MISSING and stays until the job is written, for
GRACE_MS after its registration (a client that died between its two steps never writes it). The enqueue registers
again if GRACE_MS / 2 passed since (it never should: the two are consecutive round trips)."""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from .. import defaults
from ..config import Config
from . import directory, scripts
from .cluster import scopes
from .connection import is_cluster, round_trip, text
from .job import JobSpec
from .keys import template
from .serialization import utcnow_str

__all__ = ["GRACE_MS", "ReleaseDrain", "register", "waves"]

GRACE_MS = 600_000  # how long a telling waits for its dependent to be written (see above)
SETTLED, WAITING, MISSING = 0, 1, 2  # depend_release.lua's outcomes


def waves(specs: Sequence[JobSpec]) -> list[tuple[int, int]]:
    """`specs` cut into consecutive (start, end) slices to enqueue one after the other: a job that depends on a job of
    its own slice (an id given there) goes to the next, unless all its dependencies are there in its own queue
    (enqueue.lua handles those in order). So a dependency is written before it is looked up or registered."""
    out: list[tuple[int, int]] = []
    start, here = 0, dict[str, str]()  # here: the ids given in the current slice -> queue
    for i, spec in enumerate(specs):
        deps = spec.depends_on or ()
        inside = [d for d in deps if d in here]
        if inside and not (len(inside) == len(deps) and all(here[d] == spec.queue for d in deps)):
            out.append((start, i))
            start, here = i, dict[str, str]()
        if spec.job_id:
            here[spec.job_id] = spec.queue
    out.append((start, len(specs)))
    return out


@dataclass(frozen=True)
class Waiting:
    """The js_waits fields of the jobs of an enqueue that wait across queues (job id -> JSON list), and when their
    registration was made (time.monotonic())."""

    fields: dict[str, str]
    at: float

    def stale(self) -> bool:
        return time.monotonic() - self.at > GRACE_MS / 2000


def register(conn: redis.Redis, prefix: str, jobs: Sequence[tuple[str, JobSpec]],
             known: dict[str, str]) -> Waiting:
    """Step 1 for the jobs ((id, spec) pairs with depends_on) that have a dependency in another queue; `known`: the
    ids of this enqueue's own jobs -> their queue (not in the id directory yet). One round trip per master to find
    the dependencies' queues, one to register."""
    at = time.monotonic()
    asked = {d for _, spec in jobs for d in spec.depends_on or () if d not in known}
    where = {**directory.queues_of(conn, prefix, asked), **known} if asked else dict(known)
    pairs: dict[str, list[tuple[str, str]]] = {}  # dependency queue -> (dependency, dependent) in call order
    args: dict[str, list[Any]] = {}
    for job_id, spec in jobs:
        deps = spec.depends_on or ()
        if all(where.get(d, spec.queue) == spec.queue for d in deps):
            continue  # one slot: enqueue.lua and the finishing scripts (an id without an entry is gone: done)
        for d in deps:
            if d in where:  # else gone, done as in RQ
                pairs.setdefault(where[d], []).append((d, job_id))
                args.setdefault(where[d], [prefix]).extend((d, job_id, spec.queue, 1 if spec.allow_failure else 0))
    calls = [("depend_register", scripts.scope_of(q), a) for q, a in args.items()]
    waits: dict[str, list[str]] = {}
    for q, reply in zip(args, scripts.call_many(conn, calls) if calls else [], strict=True):
        for (d, job_id), w in zip(pairs[q], reply, strict=True):
            waits.setdefault(job_id, [])
            if int(w):
                waits[job_id].append(d)
    return Waiting({job_id: json.dumps(w) for job_id, w in waits.items() if w}, at)


def _pairs(reply: Any) -> list[tuple[str, str]]:
    """A hash's fields and values as a reply gives them: a flat list, or a dict where the client parsed it."""
    items = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
    return [(text(k), text(v)) for k, v in items]


class ReleaseDrain:
    """Step 3: carries every queue's release outbox to the dependents' queues, a bounded number of entries per queue
    and pass (`run_once`, which the scheduler's leader pass calls; a single Redis has no outbox: it returns at once).
    Three round trips per node and pass while there is something to carry, one (the outboxes' read) otherwise."""

    def __init__(self, conn: redis.Redis, config: Config, batch: int = 100):
        self.conn, self.prefix, self.batch = conn, config.key_prefix, batch
        self.cluster = is_cluster(conn)
        # Where each queue's outbox read goes on: entries left there (a dependent not written yet) are not read
        # again before the others. In memory: a new leader starts from the top.
        self.cursors: dict[str, int] = {}

    def run_once(self) -> int:
        """One pass; how many outbox entries were carried for good."""
        if not self.cluster:
            return 0
        queues = [q for q in scopes(self.conn, self.prefix) if q is not None]
        ended = self._ended(queues)
        if not ended:
            return 0
        replies = round_trip(self.conn, [("HGETALL", self._key("remote_dependents", q, job_id))
                                         for q, job_id, _ in ended])
        told: list[dict[str, str]] = []  # per ended job: dependent -> its queue
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
            told.append({k: v.rsplit("|", 1)[0] for k, v in _pairs(reply)})
        outcomes = self._tell(ended, told)
        acks: dict[str, list[Any]] = {}
        for (q, job_id, status), dependents in zip(ended, told, strict=True):
            args = acks.setdefault(q, [self.prefix, q, GRACE_MS])
            args += (job_id, status, len(dependents))
            for dependent in dependents:
                args += (dependent, outcomes[(dependent, job_id)])
        return sum(int(n) for n in scripts.call_many(
            self.conn, [("depend_ack", scripts.scope_of(q), a) for q, a in acks.items()]))

    def _key(self, family: str, queue: str, name: str) -> str:
        return template(family, self.prefix, queue) % name

    def _ended(self, queues: list[str]) -> list[tuple[str, str, str]]:
        """Up to `batch` entries of each queue's outbox: (queue, ended job, its RQ status)."""
        replies = round_trip(self.conn, [("HSCAN", self._key("release", q, q), self.cursors.get(q, 0), "COUNT",
                                          self.batch) for q in queues])
        out = []
        for q, reply in zip(queues, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            self.cursors[q] = int(reply[0])
            out += [(q, job_id, status) for job_id, status in _pairs(reply[1])]
        return out

    def _tell(self, ended: list[tuple[str, str, str]], told: list[dict[str, str]]) -> dict[tuple[str, str], int]:
        """depend_release.lua in each dependent queue's slot, one round trip per node: (dependent, dependency) ->
        its outcome."""
        by_queue: dict[str, list[tuple[str, str, str]]] = {}
        for (_, job_id, status), dependents in zip(ended, told, strict=True):
            for dependent, queue in dependents.items():
                by_queue.setdefault(queue, []).append((dependent, job_id, status))
        now = utcnow_str()
        calls = [("depend_release", scripts.scope_of(q),
                  [self.prefix, defaults.WAKE_TOKENS_MAX, now, *(v for t in tells for v in t)])
                 for q, tells in by_queue.items()]
        out: dict[tuple[str, str], int] = {}
        for tells, reply in zip(by_queue.values(), scripts.call_many(self.conn, calls) if calls else [], strict=True):
            for (dependent, job_id, _), outcome in zip(tells, reply, strict=True):
                out[(dependent, job_id)] = int(outcome)
        return out
