"""Leases: claim a job with a token, renew it, and finish it with that token (fenced).

Each method returns a script call so a worker can pipeline "finish this job" with "claim the
next" in one round trip; the plain methods run a single call."""
from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from .. import defaults
from ..config import Config
from . import directory, scripts
from .backoff import Backoff
from .connection import round_trip
from .job import decode_hash
from .keys import Keys
from .layout import Layout
from .serialization import dump_exc_string, dump_result, utcnow_str


@dataclass
class Lease:
    """A claimed job: its id, queue, token and hash as it stood at claim time."""

    job_id: str
    queue: str
    token: str
    expires_ms: int
    fields: dict[str, Any]

    @property
    def attempt(self) -> int:
        return int(self.fields.get("js_attempts", 1))

    @property
    def timeout(self) -> int | None:
        raw = self.fields.get("timeout")
        if raw in (None, ""):
            return None
        t = int(float(raw))
        return None if t < 0 else t


@dataclass
class Completion:
    """A job that ran to its end, waiting to be recorded (a worker sends several in one complete.lua call)."""

    lease: Lease
    result: Any
    started: float
    ended: float
    run: dict[str, Any] | None = None


def _extras(run: dict[str, Any] | None) -> str:
    return json.dumps(run, separators=(",", ":")) if run else ""


def new_token() -> str:
    return secrets.token_hex(16)


class Leases:
    def __init__(self, conn: redis.Redis, config: Config):
        self.redis = conn
        self.config = config
        self.prefix = Keys(config.key_prefix).prefix
        self.layout = Layout.of(conn, self.prefix)  # on a cluster every call scoped to its queue's slot
        self._lease_ms = int(config.lease_ttl * 1000)
        self._default_backoff = Backoff(config.backoff, config.backoff_base, config.backoff_cap)

    @property
    def cluster(self) -> bool:
        return self.layout.cluster

    # claim
    def claim_call(self, queues: Sequence[str], worker: str, lease_ttl: float | None = None, count: int = 1,
                   pull: bool = False) -> scripts.Call:
        """Claim up to `count` jobs, each under its own lease and fresh token (claim.lua)."""
        lease_ms = int(lease_ttl * 1000) if lease_ttl else self._lease_ms
        if self.cluster and len(queues) != 1:
            raise ValueError("on a Redis Cluster a claim call takes one queue (claim_many walks them in order)")
        return ("claim", self._scope(queues[0]), (self.prefix, lease_ms, worker, utcnow_str(), len(queues), *queues,
                              "pull" if pull else "", *(new_token() for _ in range(count))))

    def _scope(self, queue: str) -> tuple[str, ...]:
        return self.layout.scope(queue)

    def slot(self, lease: Lease) -> str:
        """What the leases one script call may hold share: their queue on a cluster (one slot), nothing on one
        Redis ('')."""
        return lease.queue if self.cluster else ""

    def parse_claims(self, reply: list[Any]) -> list[Lease]:
        """The leases of a claim's reply, in the order claimed, each with its job's hash as the claim left it,
        read here in one round trip of HGETALLs (claim.lua leaves that to the caller: cheaper for Redis outside a
        script). The jobs are leased: nothing but their holder changes them meanwhile."""
        if not reply:
            return []
        jobs = reply[1:]
        hashes = round_trip(self.redis, [("HGETALL", self._job_key(job[0].decode(), job[1].decode())) for job in jobs])
        expires = int(reply[0])
        leases = []
        for job, flat in zip(jobs, hashes, strict=True):
            if isinstance(flat, Exception):
                raise flat
            # RESP3 answers HGETALL with a map, RESP2 with a flat list
            raw = flat if isinstance(flat, dict) else {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
            fields = decode_hash(raw)
            leases.append(Lease(job[0].decode(), job[1].decode(), job[2].decode(), expires, fields))
        return leases

    def _job_key(self, job_id: str, queue: str) -> str:
        return self.layout.job(queue, job_id)

    def parse_claim(self, reply: list[Any]) -> Lease | None:
        """The one lease of a claim of one job, None when there was none."""
        leases = self.parse_claims(reply)
        return leases[0] if leases else None

    def claim(self, queues: Sequence[str], worker: str, lease_ttl: float | None = None) -> Lease | None:
        if self.cluster:
            found = self.claim_many(queues, worker, 1, lease_ttl)
            return found[0] if found else None
        return self.parse_claim(scripts.call(self.redis, *self.claim_call(queues, worker, lease_ttl=lease_ttl)))

    def claim_many(self, queues: Sequence[str], worker: str, count: int, lease_ttl: float | None = None) -> list[Lease]:
        if not self.cluster:
            return self.parse_claims(scripts.call(self.redis, *self.claim_call(queues, worker, lease_ttl, count)))
        # A cluster: one queue (one slot) per call, in the worker's order; a later queue is asked only for what
        # the earlier ones did not have.
        out: list[Lease] = []
        for queue in queues:
            out += self.parse_claims(scripts.call(self.redis, *self.claim_call([queue], worker, lease_ttl,
                                                                               count - len(out))))
            if len(out) == count:
                break
        return out

    # finish
    def complete_call(self, lease: Lease, result: Any, worker: str, started: float, ended: float,
                      run: dict[str, Any] | None = None) -> scripts.Call:
        """One job's completion; its reply is a list of one reply (complete.lua). `run`: extra facts for the run
        history (an HTTP handler's status and duration)."""
        return self.complete_many_call(worker, [Completion(lease, result, started, ended, run)])

    def complete_many_call(self, worker: str, done: Sequence[Completion]) -> scripts.Call:
        """Several jobs' completions in one script call; its reply holds one reply per job, in order."""
        if self.cluster and len({c.lease.queue for c in done}) > 1:
            raise ValueError("on a Redis Cluster a complete call takes jobs of one queue")
        args: list[Any] = [self.prefix, worker, self.config.result_ttl, defaults.WAKE_TOKENS_MAX]
        for c in done:
            args += [c.lease.job_id, c.lease.token, utcnow_str(), dump_result(c.result), repr(c.started),
                     repr(c.ended), _extras(c.run)]
        return ("complete", self._scope(done[0].lease.queue), args)

    def fail_call(self, lease: Lease, exc_type: str, message: str, traceback: str, retryable: bool,
                  worker: str, started: float, ended: float, run: dict[str, Any] | None = None,
                  min_delay: float | None = None) -> scripts.Call:
        """`min_delay`: seconds the retry waits at least (a handler's Retry-After). The delay is jobsvc's backoff;
        fail.lua decides whether it applies (a job enqueued with RQ's own API follows RQ's Retry instead)."""
        backoff = Backoff.from_fields(lease.fields, self._default_backoff)
        delay = backoff.delay(lease.attempt)
        if min_delay is not None:
            delay = max(delay, min_delay)
        return ("fail", self._scope(lease.queue), (self.prefix, lease.job_id, lease.token, utcnow_str(),
                             "1" if retryable else "0", int(delay * 1000), exc_type, message[:4096], traceback[-16384:],
                             dump_exc_string(traceback), worker, repr(started), repr(ended), self.config.failure_ttl,
                             defaults.WAKE_TOKENS_MAX, _extras(run)))

    def await_callback_call(self, lease: Lease, worker: str, run: dict[str, Any]) -> scripts.Call:
        """Hand the lease to the HTTP service that answered 202 (it finishes the job with /callback)."""
        return ("await_callback", self._scope(lease.queue), (self.prefix, lease.job_id, lease.token, worker,
                                                             _extras(run), defaults.CALLBACK_TIMEOUT))

    def complete(self, lease: Lease, result: Any, worker: str, started: float, ended: float) -> None:
        scripts.check(scripts.call(self.redis, *self.complete_call(lease, result, worker, started, ended),
                                   wait=self.config.wait())[0], lease.job_id)
        self._forget_if_deleted(lease, "result_ttl", self.config.result_ttl)

    def fail(self, lease: Lease, exc: BaseException | str, traceback: str = "", retryable: bool = True,
             worker: str = "", started: float = 0.0, ended: float = 0.0) -> str:
        """Record a failed attempt; returns the new state: 'scheduled' (a retry after a wait), 'queued' (RQ's Retry
        without an interval: back on its queue now) or 'failed'."""
        exc_type = exc if isinstance(exc, str) else type(exc).__name__
        call = self.fail_call(lease, exc_type, str(exc), traceback, retryable, worker, started, ended)
        reply = scripts.check(scripts.call(self.redis, *call, wait=self.config.wait()), lease.job_id)
        if reply[1] == b"failed":
            self._forget_if_deleted(lease, "failure_ttl", self.config.failure_ttl)
        return reply[1].decode()

    def _forget_if_deleted(self, lease: Lease, field: str, default: int) -> None:
        """On a cluster, the id directory entry of a job its outcome deleted at once (its `field` TTL 0: complete.lua
        and fail.lua cannot reach the directory, another slot), as the worker does for its own outcomes. Nothing on
        a single Redis."""
        if self.cluster and directory.ttl_is_zero(lease.fields, field, default):
            entry = directory.value(lease.queue, lease.fields.get(directory.INCARNATION))
            directory.forget_deleted(self.redis, self.prefix, [(lease.job_id, entry)], "leases")

    # keep / give back
    def renew(self, leases: Sequence[Lease], lease_ttl: float | None = None, holder: str = "") -> list[str]:
        """Extend the given leases; returns the ids whose lease was lost (reaped, revoked, or, with `holder`,
        no longer held by that worker: handed to an HTTP handler service)."""
        if not leases:
            return []
        lease_ms = int(lease_ttl * 1000) if lease_ttl else self._lease_ms
        groups: dict[str, list[Lease]] = {}
        for lease in leases:  # one call on a single Redis; one per queue (slot) on a cluster
            groups.setdefault(self.slot(lease), []).append(lease)
        lost: list[str] = []
        for group in groups.values():
            args: list[Any] = [self.prefix, lease_ms, holder]
            for lease in group:
                args += [lease.job_id, lease.token]
            reply = scripts.call(self.redis, "heartbeat", self._scope(group[0].queue), args)
            for lease in group:
                lease.expires_ms = int(reply[0])
            lost += [r.decode() for r in reply[1:]]
        return lost

    def handback_call(self, lease: Lease, worker: str) -> scripts.Call:
        return ("handback", self._scope(lease.queue), (self.prefix, lease.job_id, lease.token, worker, utcnow_str(),
                                 defaults.WAKE_TOKENS_MAX))

    def handback(self, lease: Lease, worker: str) -> None:
        scripts.check(scripts.call(self.redis, *self.handback_call(lease, worker)), lease.job_id)
