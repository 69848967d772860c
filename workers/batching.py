"""A worker's batches (defaults.CLAIM_BATCH): how many jobs its next claim asks for, and the completions it has
not recorded yet. Both exist so that Redis pays one call per batch rather than per job; both are bounded by
defaults.BATCH_WINDOW, so batching never holds a job or an outcome back for longer than that (unless one job
of the batch runs long: then the heartbeat keeps every held lease renewed)."""
from __future__ import annotations

import time

from jobsvc import defaults
from jobsvc.engine.leases import Completion


class ClaimSize:
    """How many jobs the next claim asks for: as many as this worker runs in `window` seconds by its recent mean
    run time, between 1 and `limit`. It starts at 1 (nothing known yet), and one slow run brings it back to 1 at
    once: a batch of slow jobs would keep jobs waiting in this worker that an idle one could run."""

    def __init__(self, limit: int, window: float = defaults.BATCH_WINDOW):
        self.limit = limit
        self.window = window
        self._mean: float | None = None  # seconds per job; recent runs weigh most

    def observe(self, seconds: float) -> None:
        if self._mean is None or seconds > self.window:
            self._mean = seconds
        else:
            self._mean = 0.8 * self._mean + 0.2 * seconds

    def next(self) -> int:
        if self._mean is None or self.limit == 1:
            return 1
        return max(1, min(self.limit, int(self.window / max(self._mean, 1e-6))))


class Completions:
    """Jobs that ran to their end and wait to be recorded with complete.lua, oldest first. They are sent with
    the next claim, or on their own once the oldest has waited `window` seconds or `limit` have gathered."""

    def __init__(self, limit: int, window: float = defaults.BATCH_WINDOW):
        self.limit = limit
        self.window = window
        self.items: list[Completion] = []
        self._since = 0.0

    def add(self, done: Completion) -> None:
        if not self.items:
            self._since = time.monotonic()
        self.items.append(done)

    def due(self) -> bool:
        return bool(self.items) and (len(self.items) >= self.limit or time.monotonic() - self._since >= self.window)

    def take(self) -> list[Completion]:
        items, self.items = self.items, []
        return items
