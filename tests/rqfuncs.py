"""Job functions and callbacks written the way RQ's documentation writes them: they know nothing of jobsvc.
Importable by RQ's own worker and by jobsvc workers alike (tests/test_rq_compat)."""
from __future__ import annotations

import os
from pathlib import Path

from rq import get_current_job

CALLS_DIR_ENV = "RQFUNCS_CALLS_DIR"


def _calls_dir() -> Path:
    return Path(os.environ[CALLS_DIR_ENV])


def record(tag: str) -> None:
    """Append `tag` to the calls file: what ran, in order, across processes."""
    with open(_calls_dir() / "calls", "a") as out:
        out.write(tag + "\n")


def calls() -> list[str]:
    path = _calls_dir() / "calls"
    return path.read_text().split() if path.exists() else []


def add(a, b):
    record(f"add:{a}+{b}")
    return a + b


def say(tag):
    record(tag)
    return tag


def boom(tag="boom"):
    record(tag)
    raise ValueError(f"{tag} failed")


def with_meta(key, value):
    job = get_current_job()
    job.meta[key] = value
    job.save_meta()
    return job.id


def position_probe():
    return get_current_job().id


# Callbacks, with RQ's signatures.
def on_success(job, connection, result, *args, **kwargs):
    record(f"success:{job.id}:{result}")


def on_failure(job, connection, type, value, traceback):
    record(f"failure:{job.id}:{type.__name__}")


def on_stopped(job, connection):
    record(f"stopped:{job.id}")
