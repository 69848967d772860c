"""RQ's worker commands (rq.command) for jobsvc workers: RQ publishes them as JSON on the pub/sub channel
`rq:pubsub:<worker name>`, and the worker running the job is the one RQ finds in the job's `worker_name`.

- `stop-job` (`send_stop_job_command(connection, job_id)`): the job is terminated as `jobsvc terminate` does it
  (terminate.lua: lease revoked, the worker told through its terminate list), so its code stops within a
  heartbeat tick and its `on_stopped` callback runs; recorded as RQ records a stop (mode 'stop': status
  stopped, FailedJobRegistry, a failed result).
- `shutdown` (`send_shutdown_command`): SIGINT to this process, as RQ's worker does: a warm stop.
- `kill-horse`: ignored (a jobsvc worker runs jobs in its own process; there is no horse to kill).

The heartbeat thread reads the channel without blocking on each tick: a subscribed connection costs Redis
nothing while no command comes. A command published while the worker was not yet subscribed is lost, as
with RQ."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

import redis
from rq.command import PUBSUB_CHANNEL_TEMPLATE

log = logging.getLogger("jobsvc.worker")


class CommandListener:
    def __init__(self, conn: redis.Redis, worker_name: str, current_job_id: Callable[[], str | None],
                 stop_job: Callable[[str], None], shutdown: Callable[[], None] | None = None):
        self.redis = conn
        self.channel = PUBSUB_CHANNEL_TEMPLATE % worker_name
        self.current_job_id = current_job_id
        self.stop_job = stop_job
        self.shutdown = shutdown or (lambda: os.kill(os.getpid(), signal.SIGINT))
        self._pubsub: Any = None

    def subscribe(self, timeout: float = 5.0) -> None:
        """Subscribe and wait for Redis to confirm it, so that a command sent once the worker runs is not lost."""
        self._pubsub = self.redis.pubsub()
        self._pubsub.subscribe(self.channel)
        message = self._pubsub.get_message(timeout=timeout)
        if message is None or message.get("type") != "subscribe":
            log.warning("no confirmation of the subscription to %s yet (%r): RQ commands may be missed until it "
                        "comes", self.channel, message)

    def poll(self) -> None:
        """Handle every command that has arrived; returns at once when none has."""
        if self._pubsub is None:
            return
        while (message := self._pubsub.get_message(timeout=0)) is not None:
            if message.get("type") == "message":
                self.handle(message["data"])

    def handle(self, data: bytes | str) -> None:
        try:
            payload = json.loads(data)
            command = payload["command"]
        except (ValueError, TypeError, KeyError):
            log.warning("ignoring a malformed command on %s: %r", self.channel, data)
            return
        if command == "stop-job":
            job_id = payload.get("job_id")
            if job_id and job_id == self.current_job_id():
                log.info("job %s: stop requested (RQ stop-job command)", job_id)
                self.stop_job(job_id)
            else:
                log.info("not running job %s: stop-job command ignored", job_id)
        elif command == "shutdown":
            log.info("shutdown requested (RQ shutdown command)")
            self.shutdown()
        else:
            log.info("RQ command %r not supported by jobsvc workers: ignored", command)

    def close(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(redis.RedisError):
                self._pubsub.close()
            self._pubsub = None
