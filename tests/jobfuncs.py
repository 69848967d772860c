"""Job functions the tests enqueue; importable by worker child processes."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from jobsvc import NonRetryableError


def add(a, b):
    return a + b


def noop():
    return None


def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


def boom(message="boom"):
    raise RuntimeError(message)


def fatal(message="fatal"):
    raise NonRetryableError(message)


def sleep_for(seconds):
    time.sleep(seconds)
    return seconds


def record(path, tag):
    """Append `tag` and this pid to a file: lets tests see which process ran what, in what order."""
    with open(path, "a") as f:
        f.write(f"{tag} {os.getpid()}\n")
    return tag


def touch_then_sleep(path, seconds, result="done"):
    """Mark the start (so a test knows the job is running), then sleep."""
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)
    return result


def kill_self_first_time(marker):
    """SIGKILL our own worker the first time; succeed when run again."""
    p = Path(marker)
    if not p.exists():
        p.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


def poison():
    """Kills whichever worker runs it, every time."""
    os.kill(os.getpid(), signal.SIGKILL)


def fail_times(counter_path, times):
    """Fail the first `times` runs, then succeed."""
    p = Path(counter_path)
    n = int(p.read_text()) if p.exists() else 0
    p.write_text(str(n + 1))
    if n < times:
        raise RuntimeError(f"attempt {n + 1} fails")
    return n + 1
