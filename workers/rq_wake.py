"""Instant start for jobs pushed by plain RQ (`rq.Queue.enqueue`) onto an idle jobsvc worker's queues.

RQ pushes a job id onto `rq:queue:<q>` and sends no wake-up; an idle jobsvc worker blocks on its own wake lists
(`BLPOP <prefix>wake:<q>`, pushed by jobsvc's scripts), so without help such a job waits up to `idle_wait`.

How: while it is idle, and only then, the worker has Redis tell it about writes to its RQ queue lists through
client-side-caching invalidations in broadcasting mode (`CLIENT TRACKING on BCAST PREFIX rq:queue:<q> ...`,
Redis >= 6.0), read on a connection of its own subscribed to `__redis__:invalidate` (RESP2). No server
setting is needed (keyspace notifications would need `notify-keyspace-events` set on the server, and would cost
every list command of every client all the time). On a message it waits a few ms (a worker that a jobsvc
wake-up token woke takes its job first; idle peers spread out), looks whether an RQ list of its queues that is
not paused holds anything (LLEN), and if so ends its own BLPOP at once (`CLIENT UNBLOCK`) and claims.

Cost (measured on the 2-core dev machine, Redis 6.2): nothing while every worker is busy (a busy worker tracks
nothing). While at least one worker idles, Redis spends ~0.08 us more per written key on the prefix check, and
each idle worker gets at most one message per write to its RQ lists (Redis sends one per event-loop round).
Each idle period costs 5 commands: CLIENT TRACKING + SUBSCRIBE when it starts, one more claim (closing the gap
between the claim that found nothing and the subscription), UNSUBSCRIBE + CLIENT TRACKING off when work comes.
Each message costs one check (1 + number of queues commands) per idle worker, and a claim only when the check
sees a job. jobsvc's own wake-ups (wake lists, one worker per job) are unchanged.

Loops that cannot stop by themselves are avoided: a claim that finds nothing although an unpaused RQ list holds
ids (jobs of a disabled registry function, which claim.lua cycles through the list, so it writes the list
itself) makes the worker wait before its next check (10 ms, doubling up to idle_wait), reset once its lists are
seen empty or it claims a job.

Without tracking (Redis < 6.0, CLIENT refused by an ACL or a proxy, or JOBSVC_RQ_WAKE=0) the worker logs so at
start and waits as before: a plain-RQ job starts within idle_wait (1 s)."""
from __future__ import annotations

import logging
import random
import select
import time
from collections.abc import Sequence
from typing import Any

import redis

from jobsvc.engine.keys import Keys

log = logging.getLogger("jobsvc.worker")

INVALIDATE = b"__redis__:invalidate"
# Seconds a worker waits after a message before it checks the lists: long enough for the worker that a jobsvc
# wake-up token woke to claim a job jobsvc enqueued (well under 1 ms on a LAN), short against the 50 ms start
# target; the jitter spreads idle peers so that usually the first one's claim empties the list before the
# others look.
GRACE = 0.002
JITTER = 0.003
# First wait after a claim that found nothing although a list held ids (see the module docstring).
BACKOFF_MIN = 0.01
# Attempts at ending our own BLPOP when Redis has not registered it yet (CLIENT UNBLOCK answered 0), 1 ms apart.
UNBLOCK_TRIES = 50

REDIS_ERRORS = (redis.RedisError, OSError)


def bcast_prefixes(names: Sequence[str]) -> list[str]:
    """The names as tracking prefixes: Redis refuses two prefixes of one client where one starts the other
    (`rq:queue:a`, `rq:queue:ab`), and the shorter one already covers the longer."""
    out: list[str] = []
    for name in sorted(set(names), key=len):
        if not any(name.startswith(p) for p in out):
            out.append(name)
    return sorted(out)


class RqWake:
    """The idle-time tracking of one worker's RQ queue lists. Used from the worker's main thread only."""

    def __init__(self, conn: redis.Redis, queues: Sequence[str], keys: Keys, idle_wait: float):
        self.redis = conn
        self.keys = keys
        self.queues = list(queues)
        self.lists = [keys.rq_queue(q) for q in self.queues]
        self.prefixes = bcast_prefixes(self.lists)
        self.idle_wait = idle_wait
        pool = conn.connection_pool
        # Own connections, outside the pool: one holds the tracking state and the subscription, one the BLPOP.
        # RESP2, whatever the URL asks: invalidations then come as pub/sub messages of a subscribed connection (in
        # RESP3 they would be push frames, which redis-py hands to a push handler, not to read_response). No
        # health-check PING: it would be sent into a subscribed connection, or in front of a blocked read.
        self._kwargs = {**pool.connection_kwargs, "health_check_interval": 0, "protocol": 2}
        self._connection_class = pool.connection_class
        self._tracker: Any = None
        self._tracker_id = 0
        self._waiter: Any = None
        self._waiter_id = 0
        self.armed = False
        self._unread_disarm = False  # replies of a disarm not read yet (read at the next arm)
        self._backoff = 0.0
        self._quiet_until = 0.0
        self._failing = False  # the last arm failed (logged once)

    # -- setup -------------------------------------------------------------------------------------------------

    def _connect(self) -> tuple[Any, int]:
        conn = self._connection_class(**self._kwargs)
        conn.connect()
        conn.send_command("CLIENT", "ID")
        return conn, int(conn.read_response())

    def probe(self) -> str | None:
        """Whether this Redis lets a worker track its lists and end its own BLPOP: None if so, else why not.
        Leaves tracking off."""
        try:
            conn, own_id = self._connect()
            try:
                conn.send_command("CLIENT", "TRACKING", "on", "REDIRECT", own_id, "BCAST",
                                  *self._prefix_args())
                conn.read_response()
                conn.send_command("CLIENT", "TRACKING", "off")
                conn.read_response()
                conn.send_command("CLIENT", "UNBLOCK", own_id)  # not blocked: 0; refused: an error
                conn.read_response()
            finally:
                conn.disconnect()
        except redis.ResponseError as exc:
            return f"Redis refused CLIENT TRACKING / UNBLOCK ({exc})"
        except REDIS_ERRORS as exc:
            return f"could not check CLIENT TRACKING ({exc})"
        return None

    def _prefix_args(self) -> list[str]:
        args: list[str] = []
        for p in self.prefixes:
            args += ["PREFIX", p]
        return args

    # -- arming around an idle period --------------------------------------------------------------------------

    def arm(self) -> bool:
        """Start tracking, if not already. True when it just did: the caller claims once more before waiting,
        since a job pushed between its last claim and now sent no message."""
        if self.armed:
            return False
        try:
            try:
                self._track()
            except REDIS_ERRORS:
                self.reset()  # a connection that died while the worker was busy (Redis restarted): once more, afresh
                self._track()
        except REDIS_ERRORS as exc:
            if not self._failing:  # once, not at every idle period while it lasts
                log.warning("RQ list tracking unavailable for now (%s): plain-RQ jobs wait up to %.1fs", exc,
                            self.idle_wait)
            self._failing = True
            self.reset()
            return False
        self._failing = False
        self.armed = True
        return True

    def _track(self) -> None:
        if self._tracker is None:
            self._tracker, self._tracker_id = self._connect()
        tracker = self._tracker
        if self._unread_disarm:
            self._read_disarm(tracker)
            self._unread_disarm = False
        tracker.send_packed_command(tracker.pack_commands([
            ("CLIENT", "TRACKING", "on", "REDIRECT", self._tracker_id, "BCAST", *self._prefix_args()),
            ("SUBSCRIBE", INVALIDATE)]))
        tracker.read_response()  # OK
        while not _is(tracker.read_response(), b"subscribe"):
            pass

    def disarm(self) -> None:
        """Stop tracking (the worker has work): sent without waiting for the replies, read at the next arm."""
        if not self.armed:
            return
        self.armed = False
        try:
            tracker = self._tracker
            tracker.send_packed_command(tracker.pack_commands([("UNSUBSCRIBE", INVALIDATE),
                                                               ("CLIENT", "TRACKING", "off")]))
            self._unread_disarm = True
        except REDIS_ERRORS:
            self.reset()

    @staticmethod
    def _read_disarm(tracker: Any) -> None:
        # Messages may still precede the unsubscribe confirmation; then comes CLIENT TRACKING off's OK.
        while not _is(tracker.read_response(), b"unsubscribe"):
            pass
        tracker.read_response()

    def reset(self) -> None:
        """Drop both connections (a broken read, a stop signal in the middle of a wait): the next arm starts
        afresh; a pending BLPOP dies with its connection."""
        for conn in (self._tracker, self._waiter):
            if conn is not None:
                conn.disconnect()
        self._tracker = self._waiter = None
        self.armed = self._unread_disarm = False

    # -- waiting ---------------------------------------------------------------------------------------------

    def wait(self, wake_keys: Sequence[str], timeout: float) -> str:
        """Block (armed) until a jobsvc wake-up token ('wake'), an RQ job ('rq') or the timeout ('timeout')."""
        try:
            if self._waiter is None:
                self._waiter, self._waiter_id = self._connect()
            self._waiter.send_command("BLPOP", *wake_keys, timeout)
            return self._select(wake_keys, time.monotonic() + timeout + 1.0)
        except REDIS_ERRORS as exc:
            log.warning("RQ list tracking: wait broken (%s); claiming", exc)
            self.reset()
            return "timeout"

    def _select(self, wake_keys: Sequence[str], deadline: float) -> str:
        waiter, tracker = self._waiter, self._tracker
        check_at: float | None = None
        while True:
            if waiter.can_read(0):
                return "wake" if waiter.read_response() else "timeout"
            while tracker.can_read(0):
                if _is(tracker.read_response(), b"message") and check_at is None:
                    check_at = max(time.monotonic() + GRACE + random.uniform(0, JITTER), self._quiet_until)
            now = time.monotonic()
            if check_at is not None and now >= check_at:
                check_at = None
                if self._rq_job_waiting():
                    return self._unblock(wake_keys)
                self._backoff = 0.0  # nothing there: no job is stuck in a list either
                continue
            if now >= deadline:  # BLPOP should have answered by now: the connection is not to be trusted
                raise redis.TimeoutError("no reply to BLPOP")
            until = check_at if check_at is not None else deadline
            select.select([waiter._sock, tracker._sock], [], [], max(until - now, 0))

    def _rq_job_waiting(self) -> bool:
        """Whether one of the worker's RQ lists whose queue is not paused holds an id (one round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for name in self.lists:
            pipe.llen(name)
        pipe.smembers(self.keys.paused)
        *sizes, paused = pipe.execute()
        paused = {p.decode() for p in paused}
        return any(n for q, n in zip(self.queues, sizes, strict=True) if q not in paused)

    def _unblock(self, wake_keys: Sequence[str]) -> str:
        """End our BLPOP so that the worker claims now."""
        waiter = self._waiter
        for _ in range(UNBLOCK_TRIES):
            if self.redis.client_unblock(self._waiter_id) or waiter.can_read(0.001):
                reply = waiter.read_response()
                if reply:  # a jobsvc wake-up token came first: give it back to a worker still waiting
                    self.redis.lpush(reply[0], reply[1])
                return "rq"
        # Redis never saw the BLPOP: drop the connection with it.
        self._waiter.disconnect()
        self._waiter = None
        return "rq"

    def claimed(self, found: bool) -> None:
        """The outcome of the claim after a wait: a claim that found nothing although a list held an id waits
        before the next check (see the module docstring)."""
        if found:
            self._backoff = 0.0
            return
        self._backoff = min(max(self._backoff * 2, BACKOFF_MIN), self.idle_wait)
        self._quiet_until = time.monotonic() + self._backoff


def _is(reply: Any, kind: bytes) -> bool:
    """Whether a reply read from the tracking connection is a pub/sub frame of this kind."""
    return isinstance(reply, list) and bool(reply) and reply[0] == kind
