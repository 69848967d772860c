"""Scheduler processes: one leads, a standby takes over when the leader dies.

Real processes (`python -m jobsvc_cli scheduler`, twice, and a worker) with a 1 s leader lock."""
from __future__ import annotations

import signal
import threading

import pytest

from jobsvc import State, defaults
from tests import jobfuncs
from tests.conftest import LEASE_ARGS, registered_workers, wait_for
from workers.scheduler import Scheduler

pytestmark = pytest.mark.slow

LEADER_TTL = 1.0
LEADER_KEY = "jobsvc:scheduler:leader"


def test_scheduler_leader_failover(procs, client, r):
    env = {"JOBSVC_LEADER_TTL": str(LEADER_TTL)}
    schedulers = [procs.scheduler(f"scheduler{i}", env=env) for i in (1, 2)]
    procs.worker("worker", *LEASE_ARGS)
    wait_for(lambda: registered_workers(r) == 1, 10, "the worker to register")
    for s in schedulers:
        wait_for(lambda s=s: ": started" in procs.log(s), 10, "both schedulers to start")

    token = wait_for(lambda: r.get(LEADER_KEY), 10, "a scheduler to lead").decode()
    leader = wait_for(lambda: next((s for s in schedulers if f"scheduler {token[:8]}: leading" in procs.log(s)),
                                   None), 10, "the leader to log that it leads")
    (standby,) = [s for s in schedulers if s is not leader]
    assert "leading" not in procs.log(standby)

    leader.send_signal(signal.SIGKILL)
    leader.wait(timeout=5)
    job = client.enqueue(jobfuncs.add, 20, 22, delay=0.2).id

    # The dead leader's lock runs out within its TTL; the standby retries every TTL/3.
    new_token = wait_for(lambda: (t := r.get(LEADER_KEY)) and t.decode() != token and t.decode(),
                         LEADER_TTL + 1.0, "the standby to take the leader lock")
    assert f"scheduler {new_token[:8]}: leading" in wait_for(
        lambda: "leading" in procs.log(standby) and procs.log(standby), 5, "the standby to log that it leads")

    wait_for(lambda: client.state(job) == State.COMPLETED, 10, "the delayed job to be promoted and run")
    assert client.result(job) == 42


def test_leader_sleep_just_over_the_spin_threshold_returns(r, config):
    # Regression: a wait a hair over SCHEDULER_SPIN_BELOW became a BLPOP timeout under 1 ms, which
    # Redis reads as 0, "block forever": the leader stopped promoting and reaping (and lost its lock)
    # until a delayed job happened to wake it.
    sched = Scheduler(r, config)
    sched.leading = True
    sleeper = threading.Thread(target=sched.sleep, args=(defaults.SCHEDULER_SPIN_BELOW + 0.0005,), daemon=True)
    sleeper.start()
    sleeper.join(timeout=5)
    try:
        assert not sleeper.is_alive(), "Scheduler.sleep blocked in Redis past its timeout"
    finally:
        r.rpush("jobsvc:scheduler:wake", "1")  # frees a blocked sleeper either way
        sleeper.join(timeout=5)
