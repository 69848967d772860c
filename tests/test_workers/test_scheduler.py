"""The scheduler's passes in-process: leadership, promotion, and waking early."""
from __future__ import annotations

import threading
import time

from jobsvc import State
from jobsvc.config import Config
from jobsvc.scheduling.leader import LeaderLock
from workers.scheduler import Scheduler


def test_leader_promotes_due_jobs(client, r, config):
    e = client.enqueue("tests.jobfuncs.noop", delay=0.01)
    sched = Scheduler(r, config)
    deadline = time.monotonic() + 5
    while client.state(e.id) != State.QUEUED:
        assert time.monotonic() < deadline
        sched.sleep(sched.run_once())
    assert sched.leading


def test_standby_promotes_nothing(client, r, config):
    LeaderLock(r, config).run_once()  # someone else leads
    e = client.enqueue("tests.jobfuncs.noop", delay=0.01)
    due = client.get(e.id).due_ms
    standby = Scheduler(r, config)
    deadline = time.monotonic() + 5
    while True:  # keep passing until the job is overdue in Redis time
        standby.run_once()
        seconds, micros = r.time()
        if seconds * 1000 + micros // 1000 > due:
            break
        assert time.monotonic() < deadline
    assert not standby.leading
    assert client.state(e.id) == State.SCHEDULED


def test_sleep_is_the_time_to_the_next_due_job(client, r, config):
    client.enqueue("tests.jobfuncs.noop", delay=0.5)
    wait = Scheduler(r, config).run_once()
    assert 0.3 < wait <= 0.5


def test_sleep_is_bounded_when_nothing_is_due(r, config):
    assert Scheduler(r, config).run_once() <= config.scheduler_max_sleep


def test_an_earlier_job_wakes_a_sleeping_scheduler(client, r, config):
    cfg = Config(redis_url=config.redis_url, scheduler_max_sleep=30, leader_ttl=90)
    client.enqueue("tests.jobfuncs.noop", delay=60)
    sched = Scheduler(r, cfg)
    wait = sched.run_once()
    assert wait > 20
    sleeper = threading.Thread(target=sched.sleep, args=(wait,))
    sleeper.start()
    client.enqueue("tests.jobfuncs.noop", delay=0.2)
    sleeper.join(timeout=10)
    assert not sleeper.is_alive()


def test_leader_lock_is_exclusive_until_released(r, config):
    a, b = LeaderLock(r, config), LeaderLock(r, config)
    assert a.run_once() and not b.run_once()
    assert a.run_once()  # renewal by the holder
    assert not b.release()  # only the holder may release
    assert a.release() and b.run_once()


def test_expired_leader_lock_is_taken_over(r, config):
    short = Config(redis_url=config.redis_url, leader_ttl=0.05)
    a, b = LeaderLock(r, short), LeaderLock(r, short)
    assert a.run_once()
    deadline = time.monotonic() + 5
    while not b.run_once():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not a.run_once()
