"""The outbox of outcome notifications (jobs with a callback_url that ended; the Lua transitions put them there):
take one under a lease (`notify_claim.lua`), read its fields, record the attempt's outcome (`notify_settle.lua`).
Any number of senders drain it, each entry leased to one sender at a time (at-least-once: receivers dedupe on
the job id). Sending is the sender's business (workers/callbacks.py); this is the Redis side."""
from __future__ import annotations

import logging
import pickle
import secrets
from base64 import b64decode
from dataclasses import dataclass
from typing import Any

import redis

from ..engine import scripts
from ..engine.cluster import scopes
from ..engine.connection import TRANSIENT
from ..engine.job import DEFAULT_NAMESPACE
from ..errors import LeaseLost

log = logging.getLogger("jobsvc.notifications")

# The outcomes notify_settle.lua records.
DELIVERED, RETRY, GAVE_UP = "delivered", "retry", "gave_up"
UNREADABLE = "<result not readable by the sender>"


@dataclass(frozen=True)
class Notification:
    """One claimed notification: its job, the claim token that alone may settle it, and the entry's fields
    (read through the properties; `attempt` already counts this one). `queue`: on a Redis Cluster, the queue whose
    outbox it came from (the slot its settle goes to); None on a single Redis."""

    job_id: str
    claim: str
    fields: dict[str, str]
    queue: str | None = None

    @property
    def attempt(self) -> int:
        return int(self.fields.get("attempts", 1))

    @property
    def namespace(self) -> str:
        return self.fields.get("ns") or DEFAULT_NAMESPACE

    @property
    def url(self) -> str:
        return self.fields["url"]

    @property
    def state(self) -> str | None:
        return self.fields.get("state")

    @property
    def ended_ms(self) -> int:
        return int(self.fields["ended_ms"])

    @property
    def error(self) -> str | None:
        return self.fields.get("error")

    @property
    def result(self) -> Any:
        """The job's return value (None without one); UNREADABLE for a class this process cannot import."""
        b64 = self.fields.get("result_b64", "")
        if not b64:
            return None
        try:
            return pickle.loads(b64decode(b64))
        except Exception:  # noqa: BLE001 - a result class this process cannot import
            return UNREADABLE


class Outbox:
    """The notifications due for delivery, taken one at a time. On a Redis Cluster each queue has its own outbox
    (its slot, docs/cluster.md 2.2): a claim walks the queues of the cluster's registry, starting after the queue
    that gave the last one, so one busy queue does not hold back the others' notifications."""

    def __init__(self, conn: redis.Redis, prefix: str):
        self.redis, self.prefix = conn, prefix
        self._turn = 0  # on a cluster: where in the queues the next claim starts

    def claim(self, lease_ms: int) -> Notification | None:
        """Take the next due notification for `lease_ms` (then another sender may take it), its attempt counted;
        None when nothing is due. On a cluster a queue whose shard is away (a failover) is skipped, as the worker's
        claim walk does, so that one shard down does not stop every queue's notifications; the error is raised
        only when no queue could be asked (the caller retries, as on a single Redis)."""
        token = secrets.token_hex(16)
        queues = scopes(self.redis, self.prefix)  # [None] on a single Redis: one call, as before
        away: list[tuple[str | None, Exception]] = []
        for i in range(len(queues)):
            queue = queues[(self._turn + i) % len(queues)]
            try:
                reply = scripts.call(self.redis, "notify_claim", scripts.scope_of(queue),
                                     (self.prefix, 1, lease_ms, token))
            except TRANSIENT as exc:
                away.append((queue, exc))
                continue
            if reply:
                self._turn = (self._turn + i + 1) % len(queues)
                raw = reply[1]
                fields = {raw[k].decode(): raw[k + 1].decode() for k in range(0, len(raw), 2)}
                return Notification(reply[0].decode(), token, fields, queue)
        if away and len(away) == len(queues):
            raise away[-1][1]
        if away:
            log.warning("notifications: cannot claim from queue(s) %s (%s); going on",
                        ", ".join(str(q) for q, _ in away), away[-1][1])
        return None

    def settle(self, note: Notification, outcome: str, delay_ms: int, why: str) -> bool:
        """Record an attempt: DELIVERED or GAVE_UP (the entry leaves the outbox; the job keeps `why` in js_notify)
        or RETRY (due again in `delay_ms`). False when the claim no longer holds it (its lease ran out and
        another sender took it, or the job ended again and a newer notification replaced it): nothing changed."""
        settled = scripts.call(self.redis, "notify_settle", scripts.scope_of(note.queue), (
            self.prefix, note.job_id, note.claim, outcome, delay_ms, why))
        try:
            scripts.check(settled, what=f"notification of job {note.job_id}")
        except LeaseLost:
            return False
        return True
