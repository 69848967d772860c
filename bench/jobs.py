"""Job functions the benchmark enqueues. Worker processes import them by path (`bench.jobs.noop`),
so the repo root is on their PYTHONPATH."""
from __future__ import annotations

import os
import time


def noop():
    return None


def stamp(enqueued_at: float | None = None) -> float:
    """Return the wall-clock time this job started; the caller compares it with `enqueued_at`
    (the time.time() it read just before enqueueing) or with the job's due time."""
    return time.time()


def mark_and_sleep(path: str, seconds: float) -> None:
    """Append '<pid> <start time>' to `path`, then sleep: a job long enough to kill its worker mid-run.
    One line per run, so a second line means the job ran again."""
    line = f"{os.getpid()} {time.time():.6f}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    time.sleep(seconds)
