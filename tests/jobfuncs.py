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


# -- helpers for the multi-process tests (tests/test_workers) ------------------------------------


def _write_atomic(path, text):
    """Write a marker so that a reader never sees it half-written."""
    tmp = f"{path}.{os.getpid()}.tmp"
    Path(tmp).write_text(text)
    os.replace(tmp, path)


def mark_first_run(marker, first_hold, later_hold=0.0):
    """First run (no `marker` yet): write this pid to `marker`, then sleep `first_hold`.
    Any later run: write this pid to `marker`.again, sleep `later_hold`. Returns this pid, so the
    result tells which process ran the attempt that counted."""
    if not Path(marker).exists():
        _write_atomic(marker, str(os.getpid()))
        time.sleep(first_hold)
    else:
        _write_atomic(f"{marker}.again", str(os.getpid()))
        time.sleep(later_hold)
    return os.getpid()


def mark_and_wait(marker, release, limit=60.0):
    """Write this pid to `marker`, then wait until the file `release` exists (at most `limit` s)."""
    _write_atomic(marker, str(os.getpid()))
    deadline = time.monotonic() + limit
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


def hang_first_run(marker, seconds=60.0):
    """First run: write this pid to `marker` and hang where no timeout can reach (SIGALRM blocked,
    like a call stuck in C code). Later runs return this pid at once."""
    if Path(marker).exists():
        return os.getpid()
    _write_atomic(marker, str(os.getpid()))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(seconds)
    return os.getpid()


def report_progress(release_path):
    """Report 50%, then wait (bounded) until the test creates `release_path`; report 100%."""
    from jobsvc import set_progress

    set_progress(50, "half way")
    deadline = time.monotonic() + 30
    while not Path(release_path).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    set_progress(100, "done")
    return "reported"
