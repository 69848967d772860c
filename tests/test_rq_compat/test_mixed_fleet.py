"""issue 12, "mixed fleets": during a migration, RQ's own workers (the real `rq worker` command) and jobsvc's
(`jobsvc worker` processes) serve the same queue at once, a jobsvc scheduler runs, and jobs come in through both
APIs, some failing. Afterwards nothing ran twice, nothing was lost, and once at rest every count agrees --
`rq info`, jobsvc's gauges, `Client.stats`, the API and the dashboard (surfaces.py) -- repaired by the scheduler's
background integrity pass alone, no operator sweep.

A job jobsvc's API enqueued at priority 5 sits in RQ's own list, so an RQ worker may take it (the known hazard):
it then runs once under RQ's rules (no lease, no jobsvc retries), and the pass makes jobsvc's counts follow.
docs/rq.md, "Mixed fleets", says what operators should do."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import rq
from rq.job import Job

from admin_api import create_app
from tests import rqfuncs
from tests.conftest import wait_for
from tests.test_rq_compat.surfaces import ADMIN_KEY, RQ_CLI, assert_counts_agree

pytestmark = pytest.mark.slow

QUEUE = "mix"
JOBS_PER_API = 150  # 300 jobs in all
FAIL_EVERY = 10  # one job in ten raises


def start_rq_worker(env, directory: Path, name: str) -> subprocess.Popen:
    """RQ's own worker, as an RQ user runs it (it forks a work horse per job)."""
    log = open(directory / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([RQ_CLI, "worker", QUEUE, "--url", env["REDIS_URL"], "--name", name],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=directory, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (RQ's and jobsvc's warm shutdown: the running job finishes), SIGKILL if it hangs."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def enqueue_both_ways(client, r) -> dict[str, str]:
    """Jobs of both APIs, interleaved; each records a tag of its own when it runs. Returns id -> tag."""
    queue = rq.Queue(QUEUE, connection=r)
    tags = {}
    for i in range(JOBS_PER_API):
        fails = i % FAIL_EVERY == 0
        func = "tests.rqfuncs.boom" if fails else "tests.rqfuncs.say"
        tag = f"js-{i}"
        # max_attempts=1: a failing job runs once whichever worker takes it (RQ's worker would not retry it).
        tags[client.enqueue(func, tag, queue=QUEUE, max_attempts=1).id] = tag
        tag = f"rq-{i}"
        tags[queue.enqueue(func, tag).id] = tag
    return tags


def test_rq_and_jobsvc_workers_on_one_queue(r, redis_url, client, config, procs, subprocess_env, calls_dir,
                                            tmp_path):
    env = {**subprocess_env, rqfuncs.CALLS_DIR_ENV: str(calls_dir), "JOBSVC_INTEGRITY_INTERVAL": "0.2"}
    rq_workers = [start_rq_worker(env, tmp_path, f"rq-worker-{n}") for n in range(2)]
    try:
        procs.worker("jobsvc-worker", "-q", QUEUE, "--concurrency", "2", env=env)
        procs.scheduler(env=env)
        wait_for(lambda: r.scard("rq:workers") >= 4, 30, "two RQ workers and two jobsvc workers registered")
        tags = enqueue_both_ways(client, r)
        ended = ("finished", "failed")
        wait_for(lambda: all(Job.fetch(i, connection=r).get_status() in ended for i in tags), 120, "every job ended")
    finally:
        for proc in rq_workers:
            stop(proc)
        for n in range(2):
            print(f"----- rq-worker-{n}.log\n" + (tmp_path / f"rq-worker-{n}.log").read_text(errors="replace"))

    # Nothing ran twice, nothing was lost.
    calls = rqfuncs.calls()
    assert sorted(calls) == sorted(tags.values())
    statuses = {i: Job.fetch(i, connection=r).get_status() for i in tags}
    failing = {i for i, tag in tags.items() if int(tag.split("-")[1]) % FAIL_EVERY == 0}
    assert {i for i, s in statuses.items() if s == "failed"} == failing
    ran_by = {Job.fetch(i, connection=r).worker_name or "" for i in tags}
    assert any(w.startswith("rq-worker") for w in ran_by) and any(not w.startswith("rq-worker") for w in ran_by)

    # Every count agrees once the scheduler's background pass has caught up with what RQ's workers did.
    app = create_app(config, r, admin_key=ADMIN_KEY)
    expected = {"completed": len(tags) - len(failing), "failed": len(failing)}

    def agreed():
        try:
            counts = assert_counts_agree(r, redis_url, client, app)
        except AssertionError:
            return False
        return {s: n for s, n in counts[QUEUE].items() if n} == expected

    wait_for(agreed, 60, "the background integrity pass to repair the gauges", interval=0.2)
    assert_counts_agree(r, redis_url, client, app)
