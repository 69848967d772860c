"""Workers that die, freeze, hang or are killed by their job: no job is lost, none finishes twice.

Real processes (`python -m jobsvc_cli worker|scheduler`) with 1 s leases, really signalled."""
from __future__ import annotations

import os
import signal

import pytest

from jobsvc import State
from tests import jobfuncs
from tests.conftest import LEASE_ARGS, pid_of_worker, read_pid, redis_ms, registered_workers, wait_for

pytestmark = pytest.mark.slow

LEASE_TTL = 1.0


def outcomes(client, job_id):
    return [run["outcome"] for run in client.runs(job_id)]


def test_sigkilled_worker_job_is_completed_by_another_within_lease(procs, client, r, tmp_path):
    workers = [procs.worker(f"worker{i}", *LEASE_ARGS) for i in (1, 2)]
    procs.scheduler()
    wait_for(lambda: registered_workers(r) == 2, 10, "both workers to register")
    wait_for(lambda: r.exists("jobsvc:scheduler:leader"), 10, "a scheduler to lead")
    marker = tmp_path / "started"
    job = client.enqueue(jobfuncs.mark_first_run, str(marker), 60).id

    victim = wait_for(lambda: read_pid(marker), 10, "the job to start")
    assert victim in {w.pid for w in workers}
    killed_ms = redis_ms(r)
    os.kill(victim, signal.SIGKILL)

    wait_for(lambda: client.state(job) == State.COMPLETED, 15, "another worker to complete the job")
    info = client.get(job)
    assert info.ended_ms - killed_ms <= (LEASE_TTL + 2) * 1000
    runs = client.runs(job)
    assert [run["outcome"] for run in runs] == ["lease_lost", "completed"]
    assert pid_of_worker(runs[0]["worker"]) == victim
    survivor = pid_of_worker(runs[1]["worker"])
    assert survivor != victim and survivor in {w.pid for w in workers}
    assert client.result(job) == survivor


def test_stale_outcome_of_stopped_worker_is_rejected(procs, client, r, tmp_path):
    workers = {w.pid: w for w in (procs.worker(f"worker{i}", *LEASE_ARGS) for i in (1, 2))}
    procs.scheduler()
    wait_for(lambda: registered_workers(r) == 2, 10, "both workers to register")
    marker = tmp_path / "started"
    # The first run outlives its lease (frozen), so the second run is the one that counts.
    job = client.enqueue(jobfuncs.mark_first_run, str(marker), 2).id

    frozen_pid = wait_for(lambda: read_pid(marker), 10, "the job to start")
    frozen = workers[frozen_pid]
    os.kill(frozen_pid, signal.SIGSTOP)
    try:
        wait_for(lambda: client.state(job) == State.COMPLETED, 15, "the other worker to finish the job")
        assert outcomes(client, job) == ["lease_lost", "completed"]
    finally:
        os.kill(frozen_pid, signal.SIGCONT)

    # Woken, the stale worker either finds its lease gone at its next beat and stops the job's code, or the
    # job ends first and its outcome is refused by the lease token: either way nothing it did is written.
    stale = (f"job {job}: outcome rejected", f"job {job} stopped: its lease was lost")
    wait_for(lambda: any(line in procs.log(frozen) for line in stale), 10, "the stale worker to give the job up")
    results = r.xrange(f"rq:results:{job}")
    assert len(results) == 1
    assert results[0][1][b"type"] == b"1"
    (other_pid,) = set(workers) - {frozen_pid}
    assert client.result(job) == other_pid
    assert client.state(job) == State.COMPLETED
    assert outcomes(client, job) == ["lease_lost", "completed"]


def test_poison_job_is_quarantined_while_others_keep_running(procs, client, r):
    procs.worker("workers", "--concurrency", "2", *LEASE_ARGS)
    procs.scheduler()
    wait_for(lambda: registered_workers(r) == 2, 10, "both worker processes to register")
    poison = client.enqueue(jobfuncs.poison).id
    normal = [e.id for e in client.enqueue_many([client.job(jobfuncs.add, i, i) for i in range(8)])]

    wait_for(lambda: client.state(poison) == State.QUARANTINED, 30, "the poison job to be quarantined")
    info = client.get(poison)
    assert info.lease_losses == client.config.max_lease_losses == 3
    assert outcomes(client, poison) == ["lease_lost"] * 3
    assert r.zscore("jobsvc:quarantined:default", poison) is not None

    wait_for(lambda: all(client.state(j) == State.COMPLETED for j in normal), 15, "the normal jobs to complete")
    assert [client.result(j) for j in normal] == [2 * i for i in range(8)]


def test_hung_job_past_timeout_loses_its_lease(procs, client, r, tmp_path):
    # The job ignores its 1 s timeout; 0.5 s past it, the heartbeat stops renewing the lease.
    env = {"JOBSVC_HUNG_GRACE": "0.5"}
    workers = {w.pid: w for w in (procs.worker(f"worker{i}", *LEASE_ARGS, env=env) for i in (1, 2))}
    procs.scheduler()
    wait_for(lambda: registered_workers(r) == 2, 10, "both workers to register")
    marker = tmp_path / "started"
    job = client.enqueue(jobfuncs.hang_first_run, str(marker), timeout=1).id

    hung_pid = wait_for(lambda: read_pid(marker), 10, "the job to start")
    wait_for(lambda: client.state(job) == State.COMPLETED, 15, "a healthy worker to run the job")
    runs = client.runs(job)
    assert [run["outcome"] for run in runs] == ["lease_lost", "completed"]
    assert pid_of_worker(runs[0]["worker"]) == hung_pid
    assert pid_of_worker(runs[1]["worker"]) != hung_pid
    assert f"job {job} hung past its timeout" in procs.log(workers[hung_pid])
    assert workers[hung_pid].poll() is None  # the hung worker is left alone, only its lease is taken


def test_worker_timeout_enforced(procs, client):
    job = client.enqueue(jobfuncs.sleep_for, 5, timeout=1, max_attempts=1).id
    worker = procs.worker("worker", "--burst", *LEASE_ARGS)
    assert worker.wait(timeout=15) == 0

    assert client.state(job) == State.FAILED
    (run,) = client.runs(job)
    assert run["outcome"] == "failed"
    assert run["exc_type"] == "JobTimeout"
    assert "JobTimeout" in run["traceback"]


def test_a_sigkilled_worker_holding_a_batch_loses_no_job(procs, client, r, tmp_path):
    """The victim claimed a batch (after one fast job its claim size grows), started one job of it and held the
    rest, unstarted, and some completions unrecorded: every job of the batch runs again elsewhere and completes."""
    marker = tmp_path / "started"
    first = client.enqueue(jobfuncs.noop).id
    blocker = client.enqueue(jobfuncs.mark_first_run, str(marker), 60).id
    rest = [e.id for e in client.enqueue_many([client.job(jobfuncs.noop) for _ in range(30)])]
    victim = procs.worker("victim", *LEASE_ARGS)
    wait_for(lambda: read_pid(marker), 10, "the blocking job to start")
    held = [i for i in rest if client.state(i) == State.RUNNING]
    assert held, "the victim claimed the jobs after the blocker in the same batch"
    os.kill(victim.pid, signal.SIGKILL)
    procs.scheduler()
    procs.worker("survivor", *LEASE_ARGS)
    for job in (first, blocker, *rest):
        wait_for(lambda job=job: client.state(job) == State.COMPLETED, 20, f"job {job} to complete")
    assert outcomes(client, held[0]) == ["lease_lost", "completed"]  # charged a lost lease, run once
