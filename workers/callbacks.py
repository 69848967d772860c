"""Delivering outcome notifications: when a job with a callback_url ends, its outcome is POSTed there,
signed, with a few retries. The outbox, its leases and what each attempt recorded are the core's
(jobsvc/http/notifications.py); this module sends the HTTP requests and runs the loop."""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

import redis

from jobsvc import defaults
from jobsvc.config import Config
from jobsvc.http import signing, urlguard
from jobsvc.http.notifications import DELIVERED, GAVE_UP, RETRY, Notification, Outbox

log = logging.getLogger("jobsvc.callbacks")


@dataclass
class NotifyResult:
    delivered: int = 0
    retried: int = 0
    gave_up: int = 0

    @property
    def total(self) -> int:
        return self.delivered + self.retried + self.gave_up


class Notifier:
    """One pass: take due notifications one at a time, POST each, settle each. Tests call run_once directly.

    One at a time, each under its own lease and within NOTIFY_DEADLINE: a notification is never held past its
    lease while others wait behind a slow receiver, so no two senders deliver it at once."""

    def __init__(self, conn: redis.Redis, config: Config, batch: int = defaults.NOTIFY_BATCH,
                 attempts: int = defaults.NOTIFY_ATTEMPTS, retry_base: float = defaults.NOTIFY_RETRY_BASE,
                 lease: float = defaults.NOTIFY_LEASE, deadline: float = defaults.NOTIFY_DEADLINE):
        self.redis, self.config = conn, config
        self.outbox = Outbox(conn, config.key_prefix)
        self.batch, self.attempts, self.retry_base, self.lease, self.deadline = (batch, attempts, retry_base, lease,
                                                                                 deadline)
        self.session = urlguard.safe_session(allow_private=config.allow_private_urls)

    def run_once(self) -> NotifyResult:
        result = NotifyResult()
        for _ in range(self.batch):
            note = self.outbox.claim(int(self.lease * 1000))
            if note is None:
                break
            outcome, delay_ms, why = self._deliver(note)
            if not self.outbox.settle(note, outcome, delay_ms, why):
                log.info("job %s: notification %s meanwhile (taken over or replaced); this attempt not recorded",
                         note.job_id, outcome)
                continue
            field = "retried" if outcome == RETRY else outcome
            setattr(result, field, getattr(result, field) + 1)
        return result

    def _deliver(self, note: Notification) -> tuple[str, int, str]:
        job_id, attempt, namespace = note.job_id, note.attempt, note.namespace
        secret = self.config.secret_for(namespace)
        if not secret:
            return self._failed(job_id, attempt, "no JOBSVC_HANDLER_SECRET: notifications are never sent unsigned")
        body = notification_body(note)
        headers = signing.headers(secret, body, job_id=job_id, attempt=attempt, idempotency_key=None)
        headers["X-Jobsvc-Event"] = "job.ended"
        headers["X-Jobsvc-Namespace"] = namespace
        try:
            resp = urlguard.post(self.session, note.url, body=body, headers=headers, timeout=self.deadline,
                                 max_body=1024, deadline=self.deadline)
        except Exception as exc:  # noqa: BLE001 - refused address, connection error, timeout
            if urlguard.is_blocked(exc):
                return GAVE_UP, 0, f"not sent: {exc}"
            return self._failed(job_id, attempt, f"{type(exc).__name__}: {exc}")
        if 200 <= resp.status_code < 300:
            return DELIVERED, 0, f"delivered (HTTP {resp.status_code}, attempt {attempt})"
        return self._failed(job_id, attempt, f"HTTP {resp.status_code}")

    def _failed(self, job_id: str, attempt: int, why: str) -> tuple[str, int, str]:
        if attempt >= self.attempts:
            log.warning("job %s: outcome notification dropped after %d attempt(s): %s", job_id, attempt, why)
            return GAVE_UP, 0, f"gave up after {attempt} attempt(s): {why}"
        return RETRY, int(self.retry_base * 2 ** (attempt - 1) * 1000), why

    def run_forever(self, stopped: threading.Event, idle: float = 1.0) -> None:
        """Repeat run_once until `stopped`; waits `idle` seconds when there was nothing to send."""
        while not stopped.is_set():
            try:
                did = self.run_once().total
            except redis.RedisError as exc:
                log.error("notifications: redis unavailable (%s); retrying", exc)
                did = 0
            except Exception:  # a bug must not stop notifications for good (logged below)
                log.exception("notifications: pass failed; retrying")
                did = 0
            if not did:
                stopped.wait(idle)


def notification_body(note: Notification) -> bytes:
    """{job_id, namespace, state, ended_at (epoch ms), result | error}: what a callback_url receives."""
    out: dict[str, Any] = {"job_id": note.job_id, "namespace": note.namespace, "state": note.state,
                           "ended_at": note.ended_ms}
    if note.state == "completed":
        out["result"] = note.result
    else:
        out["error"] = note.error
    return json.dumps(out, separators=(",", ":"), default=repr).encode()
