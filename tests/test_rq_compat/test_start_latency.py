"""Start latency of a job plain RQ enqueues onto an idle jobsvc worker (issue 12: within 50 ms, p99). RQ sends no
jobsvc wake-up; the idle worker tracks its RQ queue lists (workers/rq_wake.py). A real worker process, idle on
its queue; each job is enqueued with RQ's API once the worker is blocked again, and measures from the job's
`enqueued_at` (RQ's own stamp) to the moment its code runs. The bound is the issue's latency target, so this is
the one test with a timed assertion; the suite's Redis is the embedded one, on loopback."""
from __future__ import annotations

import math

import pytest
import rq
from rq.job import Job

from tests.conftest import LEASE_ARGS, registered_workers, wait_for
from tests.test_rq_compat import latencyfuncs

pytestmark = pytest.mark.slow

N = 50
P99_BOUND_S = 0.050


def blocked_in_blpop(r) -> bool:
    """Whether some client is blocked in BLPOP: the worker is idle, past its claims, tracking RQ's lists."""
    return any(c.get("cmd") == "blpop" and "b" in c.get("flags", "") for c in r.client_list())


def finished(r, job_id: str) -> Job | None:
    job = Job.fetch(job_id, connection=r)
    return job if job.get_status() == "finished" else None


def p99(samples: list[float]) -> float:
    """Nearest-rank 99th percentile (of 50 samples: the largest)."""
    ordered = sorted(samples)
    return ordered[math.ceil(0.99 * len(ordered)) - 1]


def test_a_plain_rq_job_starts_within_50_ms_on_an_idle_worker(procs, r):
    worker = procs.worker("worker", *LEASE_ARGS)
    wait_for(lambda: registered_workers(r) == 1, 15, "the worker to register")
    queue = rq.Queue("default", connection=r)
    latencies = []
    for _ in range(N):
        wait_for(lambda: blocked_in_blpop(r), 10, "the worker to be idle")
        job_id = queue.enqueue(latencyfuncs.started_at).id
        job = wait_for(lambda job_id=job_id: finished(r, job_id), 10, "the job to finish")
        latencies.append(job.return_value() - job.enqueued_at.timestamp())
    assert "idle waits track RQ's queue lists" in procs.log(worker)
    print(f"enqueue -> start: median {sorted(latencies)[N // 2] * 1000:.1f} ms, p99 {p99(latencies) * 1000:.1f} ms")
    assert p99(latencies) <= P99_BOUND_S, sorted(latencies)


@pytest.fixture
def limited_url(r, redis_url):
    """A Redis user that may not use CLIENT (as ACLs of managed Redis services or proxies may have it)."""
    r.execute_command("ACL", "SETUSER", "limited", "on", ">pw", "~*", "allchannels", "+@all", "-client")
    yield redis_url.replace("redis://", "redis://limited:pw@")
    r.execute_command("ACL", "DELUSER", "limited")


@pytest.mark.parametrize("without", ["refused", "switched off"])
def test_without_tracking_a_worker_still_runs_plain_rq_jobs(procs, r, limited_url, without):
    """The fallback: the worker says at start that such jobs wait up to the idle wait, and runs them."""
    env = {"REDIS_URL": limited_url} if without == "refused" else {"JOBSVC_RQ_WAKE": "0"}
    worker = procs.worker("worker", *LEASE_ARGS, env=env)
    wait_for(lambda: registered_workers(r) == 1, 15, "the worker to register")
    job_id = rq.Queue("default", connection=r).enqueue(latencyfuncs.started_at).id
    wait_for(lambda: finished(r, job_id), 15, "the job to finish")
    said = "Redis refused CLIENT TRACKING" if without == "refused" else "JOBSVC_RQ_WAKE is off"
    assert said in procs.log(worker)
    assert "starts within 1s (the idle wait), not at once" in procs.log(worker)
