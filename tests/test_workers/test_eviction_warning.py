"""Workers and the scheduler say at startup, in one WARNING line, when Redis may evict jobs
(jobsvc/redis_check.py; the API's side is in tests/test_admin_api/test_redis_eviction.py)."""
import logging
import signal

from tests.eviction import evicting_policy
from workers.scheduler import Scheduler


def _warnings(caplog):
    """The eviction warnings (a worker may also warn that no scheduler runs: tests/test_jobsvc/test_redis_check.py)."""
    return [rec.getMessage() for rec in caplog.records if rec.name == "jobsvc.redis" and rec.levelno == logging.WARNING
            and "scheduler` is running" not in rec.getMessage()]


def test_a_worker_warns_at_startup_on_an_evicting_redis(r, run_worker, caplog):
    with evicting_policy(r, "allkeys-lfu"), caplog.at_level(logging.WARNING, logger="jobsvc.redis"):
        worker = run_worker()
    [line] = _warnings(caplog)
    assert line.startswith(f"worker {worker.name}: Redis evicts keys (maxmemory-policy allkeys-lfu")


def test_a_worker_on_noeviction_says_nothing(r, run_worker, caplog):
    with caplog.at_level(logging.WARNING, logger="jobsvc.redis"):
        run_worker()
    assert not _warnings(caplog)


def test_the_scheduler_warns_at_startup_on_an_evicting_redis(r, config, caplog):
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    sched = Scheduler(r, config)
    sched.stopped.set()  # run() starts, checks, and stops at once
    try:
        with evicting_policy(r, "volatile-lru"), caplog.at_level(logging.WARNING, logger="jobsvc.redis"):
            sched.run()
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    [line] = _warnings(caplog)
    assert line.startswith("scheduler ") and "maxmemory-policy volatile-lru" in line
    assert "Set maxmemory-policy noeviction" in line
