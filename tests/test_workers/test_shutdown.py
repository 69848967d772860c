"""Stopping workers with jobs in flight: what finishes in the grace period completes, the rest is
handed back (attempt not counted) and run later; no job is lost.

Real processes (`python -m jobsvc_cli worker --concurrency 2`, a supervisor and its children)."""
from __future__ import annotations

import signal

import pytest

from jobsvc import State
from tests import jobfuncs
from tests.conftest import LEASE_ARGS, read_pid, registered_workers, wait_for

pytestmark = pytest.mark.slow


def outcomes(client, job_id):
    return [run["outcome"] for run in client.runs(job_id)]


def test_sigterm_with_jobs_in_flight_loses_none(procs, client, r, tmp_path):
    supervisor = procs.worker("workers", "--concurrency", "2", "--grace", "1.5", *LEASE_ARGS)
    wait_for(lambda: registered_workers(r) == 2, 10, "both worker processes to register")
    release = tmp_path / "release"
    quick_marker, slow_marker = tmp_path / "quick", tmp_path / "slow"
    quick = client.enqueue(jobfuncs.mark_and_wait, str(quick_marker), str(release)).id  # ends in the grace
    slow = client.enqueue(jobfuncs.mark_first_run, str(slow_marker), 60).id  # outlasts the grace
    waiting = [e.id for e in client.enqueue_many([client.job(jobfuncs.add, i, 1) for i in range(3)])]
    wait_for(lambda: read_pid(quick_marker) and read_pid(slow_marker), 10, "both jobs to be running")

    supervisor.send_signal(signal.SIGTERM)
    wait_for(lambda: procs.log(supervisor).count("stopping (signal 15)") == 2, 10,
             "both workers to get the stop signal")
    release.touch()
    assert supervisor.wait(timeout=15) == 0

    # In the grace period: completed. Past it: handed back, attempt not counted. Not started: queued.
    assert client.state(quick) == State.COMPLETED
    assert outcomes(client, quick) == ["completed"]
    slow_info = client.get(slow)
    assert slow_info.state == State.QUEUED
    assert slow_info.attempts == 0
    assert outcomes(client, slow) == ["handed_back"]
    assert all(client.state(j) == State.QUEUED for j in waiting)

    # A new worker runs everything that was left.
    assert procs.worker("worker-after", "--burst", *LEASE_ARGS).wait(timeout=15) == 0
    for job in [quick, slow, *waiting]:
        assert client.state(job) == State.COMPLETED, job
    runs = client.runs(slow)
    assert [run["outcome"] for run in runs] == ["handed_back", "completed"]
    assert runs[1]["attempt"] == 1
    assert [client.result(j) for j in waiting] == [1, 2, 3]


def test_second_sigterm_hands_back_at_once(procs, client, r, tmp_path):
    # A grace far longer than the test's deadlines: only the second signal can end the job's run.
    supervisor = procs.worker("workers", "--concurrency", "2", "--grace", "120", *LEASE_ARGS)
    wait_for(lambda: registered_workers(r) == 2, 10, "both worker processes to register")
    marker = tmp_path / "started"
    job = client.enqueue(jobfuncs.mark_first_run, str(marker), 60).id
    wait_for(lambda: read_pid(marker), 10, "the job to start")

    supervisor.send_signal(signal.SIGTERM)
    wait_for(lambda: procs.log(supervisor).count("stopping (signal 15)") == 2, 10,
             "both workers to get the stop signal")

    # A worker takes a signal within 1 s of the first as the same Ctrl+C: keep signalling until
    # the second stop is taken, as an operator pressing Ctrl+C again would.
    # The log is read before each signal: one more signal while the supervisor's interpreter shuts down (its
    # handlers reset) would kill it with SIGTERM instead.
    def signal_again_and_check():
        if "second stop signal: handing back at once" in procs.log(supervisor):
            return True
        if supervisor.poll() is None:
            supervisor.send_signal(signal.SIGTERM)
        return False

    wait_for(signal_again_and_check, 5, "a second stop signal to be taken", interval=0.2)
    assert supervisor.wait(timeout=5) == 0
    info = client.get(job)
    assert info.state == State.QUEUED
    assert info.attempts == 0
    assert outcomes(client, job) == ["handed_back"]
    assert f"job {job} handed back to queue default" in procs.log(supervisor)
