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


# Job state from inside a job (tests/test_rq_compat/test_job_state.py).
def current_job_facts(*args):
    job = get_current_job()
    return {"id": job.id, "origin": job.origin, "description": job.description, "func_name": job.func_name,
            "args": list(job.args), "meta": dict(job.meta), "status": job.get_status(refresh=False).value}


def meta_then_boom(key, value):
    job = get_current_job()
    job.meta[key] = value
    job.save_meta()
    raise ValueError("after saving meta")


def positions(job_ids):
    """Where the given jobs stand in their queue, seen from inside a running job (None: not queued)."""
    from rq.job import Job

    connection = get_current_job().connection
    return [Job.fetch(job_id, connection=connection).get_position() for job_id in job_ids]


def sleep_then_say(tag, seconds):
    """Records `tag:start`, then `tag:end` unless stopped or timed out before `seconds` passed."""
    import time

    record(f"{tag}:start")
    time.sleep(seconds)
    record(f"{tag}:end")
    return tag


# More callbacks, with RQ's signatures.
def on_success_raises(job, connection, result, *args, **kwargs):
    record(f"success-raises:{job.id}")
    raise RuntimeError("success callback broke")


def on_failure_raises(job, connection, type, value, traceback):
    record(f"failure-raises:{job.id}:{type.__name__}")
    raise RuntimeError("failure callback broke")


def on_success_slow(job, connection, result, *args, **kwargs):
    import time

    record(f"success-slow:{job.id}")
    time.sleep(30)
    record(f"success-slow-end:{job.id}")


def on_success_inspects(job, connection, result, *args, **kwargs):
    """What a success callback sees: the job (status finished, not yet saved), the current job (None, as in RQ)."""
    record(f"inspect:{job.id}:{job.get_status(refresh=False).value}:{job.func_name}:{get_current_job() is None}:"
           f"{connection.ping()}")


def on_failure_message(job, connection, type, value, traceback):
    record(f"failure-message:{job.id}:{type.__name__}:{str(value).replace(' ', '_')}:{traceback is not None}")


def outlive_own_ttl(tag):
    """Runs until its own job hash's TTL would have run out (at once if the hash has no TTL), then records."""
    import time

    job = get_current_job()
    record(f"{tag}:start")
    left_ms = job.connection.pttl(job.key)
    time.sleep(max(left_ms, 0) / 1000 + 0.2)
    record(f"{tag}:end")
    return tag
