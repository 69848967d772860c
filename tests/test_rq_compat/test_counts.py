"""issue 12, "one truth for counts": jobs enqueued with RQ's own API are counted when enqueued, and `rq info`,
`jobsvc stats`, `jobsvc info`, `Client.stats`, the API and the dashboard agree on every queue (surfaces.py), also
after RQ's own tools moved jobs behind jobsvc's back (`rq empty`, `rq requeue`, registry cleaning, Job.cancel):
the queue counts at once, the per-group figures (the gauges) once the scheduler's background integrity pass has
run (jobsvc/maintenance/integrity.py), driven here with run_walk()."""
from __future__ import annotations

from datetime import timedelta

import pytest
import rq
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from admin_api import create_app
from jobsvc.engine.keys import Keys
from jobsvc.engine.stats import UNCOUNTED, Group, group_counts, read_counts
from jobsvc.maintenance.integrity import IntegrityPass
from jobsvc.maintenance.ttl_sweeper import TtlSweeper
from tests import rqfuncs
from tests.conftest import redis_ms, wait_for
from tests.test_rq_compat.surfaces import ADMIN_KEY, assert_counts_agree, rq_cli

KEYS = Keys()
SAY = "tests.rqfuncs.say"
BOOM = "tests.rqfuncs.boom"


@pytest.fixture
def app(r, config):
    return create_app(config, r, admin_key=ADMIN_KEY)


@pytest.fixture
def agree(r, redis_url, client, app):
    """agree(breakdowns=True) -> the counts every surface shows (asserting they are the same everywhere)."""
    return lambda breakdowns=True: assert_counts_agree(r, redis_url, client, app, breakdowns=breakdowns)


@pytest.fixture
def repair(r, config):
    """What the scheduler does by itself: a whole walk of the background integrity pass, then a TTL sweep."""

    def run():
        report = IntegrityPass(r, config).run_walk()
        TtlSweeper(r, config).run_once()
        return report

    return run


@pytest.fixture
def jobsvc_burst(burst_worker):
    return lambda queues=("q",): burst_worker("jobsvc", queues)


def mixed_queue(client, r, jobsvc_jobs=5, rq_jobs=2, func=SAY):
    """A queue "q" holding jobs of both APIs; returns (jobsvc ids, RQ ids)."""
    own = [client.enqueue(func, f"js{i}", queue="q").id for i in range(jobsvc_jobs)]
    plain = [rq.Queue("q", connection=r).enqueue(func, f"rq{i}").id for i in range(rq_jobs)]
    return own, plain


def nonzero(row):
    return {s: n for s, n in row.items() if n}


def test_plain_rq_jobs_are_counted_when_enqueued(client, r, agree):
    """The issue's queue: 5 jobs of jobsvc's API and 2 of RQ's read 7 everywhere (it read 7, 5 and 8), with RQ's
    delayed and deferred jobs counted too, before any jobsvc script or pass touched them."""
    mixed_queue(client, r)
    queue = rq.Queue("q", connection=r)
    parent = queue.enqueue(SAY, "parent")
    queue.enqueue(SAY, "child", depends_on=parent)
    queue.enqueue_in(timedelta(minutes=10), SAY, "later")
    client.enqueue(SAY, "own-later", queue="q", delay=600)
    counts = agree()
    assert nonzero(counts["q"]) == {"queued": 8, "scheduled": 2, "deferred": 1}
    by_function = read_counts(r, KEYS).by("function")
    assert nonzero(by_function[UNCOUNTED]) == {"queued": 3, "scheduled": 1, "deferred": 1}
    assert nonzero(by_function[SAY]) == {"queued": 5, "scheduled": 1}


def test_plain_rq_jobs_counted_on_a_queue_only_rq_has_used(r, agree):
    rq.Queue("legacy", connection=r).enqueue(SAY, "x")
    assert nonzero(agree()["legacy"]) == {"queued": 1}


def test_counts_follow_the_jobs_once_jobsvc_runs_them(client, r, agree, jobsvc_burst):
    mixed_queue(client, r, func=SAY)
    rq.Queue("q", connection=r).enqueue(BOOM, "bad")
    jobsvc_burst()
    assert nonzero(agree()["q"]) == {"completed": 7, "failed": 1}
    assert UNCOUNTED not in read_counts(r, KEYS).by("function")  # every job was adopted when claimed


def test_rq_empty_counts_at_once_and_gauges_converge(client, r, redis_url, agree, repair):
    """After `rq empty` the gauge stayed at 5: the queue counts read 0 at once, the gauges after a pass."""
    own, _ = mixed_queue(client, r)
    client.enqueue(SAY, "high", queue="q", priority=1)  # in a lane of jobsvc's: RQ does not see it
    assert "7 jobs removed from q queue" in rq_cli(redis_url, "empty", "q")
    assert nonzero(agree(breakdowns=False)["q"]) == {"queued": 1}
    assert group_counts(r, KEYS)[Group("q", "default", SAY)]["queued"] == 6  # the gauge, until the pass
    report = repair()
    assert (report.counts["missing_hash"], report.counts["gauge_drift"]) == (len(own), 1)
    assert nonzero(agree()["q"]) == {"queued": 1}
    assert IntegrityPass(r, client.config).run_walk().clean


def test_rq_requeue_all_counts_at_once_and_restarts_attempts(client, r, redis_url, agree, repair, jobsvc_burst):
    """After `rq requeue --all` the queued gauge went to -2. Now the queue counts follow at once, the pass moves
    the gauges and gives jobsvc's jobs fresh attempts, and each job runs exactly once more."""
    own = [client.enqueue(BOOM, f"js{i}", queue="q", max_attempts=1).id for i in range(2)]
    plain = [rq.Queue("q", connection=r).enqueue(BOOM, f"rq{i}").id for i in range(2)]
    jobsvc_burst()
    assert nonzero(agree()["q"]) == {"failed": 4}
    rq_cli(redis_url, "requeue", "--queue", "q", "--all")
    assert nonzero(agree(breakdowns=False)["q"]) == {"queued": 4}
    report = repair()
    assert sorted(report.samples["rq_moved"]) == sorted(own + plain)
    assert [(client.get(i).state.value, client.get(i).attempts) for i in own] == [("queued", 0)] * 2
    assert nonzero(agree()["q"]) == {"queued": 4}
    jobsvc_burst()
    assert sorted(rqfuncs.calls()) == sorted(["js0", "js1", "rq0", "rq1"] * 2)
    assert [client.get(i).attempts for i in own] == [1, 1]
    assert nonzero(agree()["q"]) == {"failed": 4}


def test_requeued_jobs_claimed_before_any_pass_keep_the_counts_exact(client, r, redis_url, agree, jobsvc_burst):
    """claim.lua counts a job RQ put back out of the state it left: no pass needed when a worker gets there
    first."""
    [client.enqueue(BOOM, f"js{i}", queue="q", max_attempts=1) for i in range(2)]
    jobsvc_burst()
    rq_cli(redis_url, "requeue", "--queue", "q", "--all")
    jobsvc_burst()
    assert nonzero(agree()["q"]) == {"failed": 2}


def test_expired_registry_entries_rq_cleaned_are_not_counted(client, r, config, redis_url, agree, repair,
                                                            jobsvc_burst):
    """RQ's own registry cleaning (`rq info` runs it) drops finished and failed entries past their TTL: they are
    counted nowhere at once, and the pass and TTL sweep delete jobsvc's record of them."""
    client.enqueue(SAY, "done", queue="q", result_ttl=1)
    client.enqueue(BOOM, "bad", queue="q", failure_ttl=1, max_attempts=1)
    rq.Queue("q", connection=r).enqueue(SAY, "rq-done", result_ttl=1)
    client.enqueue(SAY, "kept", queue="q")
    jobsvc_burst()
    assert nonzero(read_counts(r, KEYS).queues["q"]) == {"completed": 3, "failed": 1}
    wait_for(lambda: nonzero(read_counts(r, KEYS).queues["q"]) == {"completed": 1}, 10, "the TTLs to end")
    assert nonzero(agree(breakdowns=False)["q"]) == {"completed": 1}  # rq info cleaned: the TTL sweep cannot find them
    assert r.zcard(KEYS.finished("q")) == 1 and r.zcard(KEYS.failed("q")) == 0
    repair()
    assert nonzero(agree()["q"]) == {"completed": 1}
    assert r.zcard(KEYS.created("q")) == 1


def abandon_on_an_rq_worker(r, queue: str) -> Job:
    """What an RQ worker that died while running the job at the front of `queue` leaves: the job popped, status
    started, an entry in StartedJobRegistry that is already due (its heartbeat stopped)."""
    job, _ = rq.Queue.dequeue_any([rq.Queue(queue, connection=r)], None, connection=r)
    with r.pipeline() as pipe:
        job.set_status(JobStatus.STARTED, pipeline=pipe)
        Execution.create(job, ttl=0, pipeline=pipe)
        pipe.execute()
    return job


def test_started_registry_cleanup_of_jobs_rq_workers_abandoned(client, r, config, agree, repair):
    """An RQ worker of a mixed fleet died running a jobsvc job and a plain one: running while RQ says so, failed
    once StartedJobRegistry.cleanup says so; the pass never puts the jobsvc one back on its lane meanwhile."""
    own = client.enqueue(SAY, "own", queue="q").id
    rq.Queue("q", connection=r).enqueue(SAY, "plain")
    jobs = [abandon_on_an_rq_worker(r, "q"), abandon_on_an_rq_worker(r, "q")]
    assert jobs[0].id == own
    assert nonzero(read_counts(r, KEYS).queues["q"]) == {"running": 2}
    assert IntegrityPass(r, config).run_walk().counts["orphan"] == 0  # RQ holds it: not pushed back, run twice
    assert r.llen(KEYS.lane("q", 5)) == 0
    StartedJobRegistry("q", connection=r).cleanup()
    assert nonzero(agree(breakdowns=False)["q"]) == {"failed": 2}
    assert repair().samples["rq_moved"] == [own]
    assert nonzero(agree()["q"]) == {"failed": 2}


def test_rq_job_cancel_of_a_jobsvc_job(client, r, agree, repair):
    """RQ's Job.cancel() of a job jobsvc enqueued at another priority: RQ takes it off its own list only; the
    pass takes it off jobsvc's lane too (it was counted queued there) and counts it cancelled."""
    job_id = client.enqueue(SAY, "x", queue="q", priority=2).id
    Job.fetch(job_id, connection=r).cancel()
    repair()
    assert r.llen(KEYS.lane("q", 2)) == 0
    assert nonzero(agree()["q"]) == {"cancelled": 1}  # kept for its failure TTL, as jobsvc's cancel keeps it
    assert r.zscore(KEYS.canceled("q"), job_id) > redis_ms(r) / 1000 + client.config.failure_ttl - 60


@pytest.mark.parametrize("kind", ["rq", "jobsvc"])
def test_counts_agree_whichever_worker_ran_the_jobs(client, r, agree, repair, burst_worker, kind):
    """Jobs of both APIs, some failing, run by RQ's worker or jobsvc's: once done (and, after RQ's worker moved
    jobsvc's jobs, once the pass ran), every surface agrees, and each job ran once."""
    mixed_queue(client, r, jobsvc_jobs=4, rq_jobs=4)
    client.enqueue(BOOM, "js-bad", queue="q", max_attempts=1)
    rq.Queue("q", connection=r).enqueue(BOOM, "rq-bad")
    burst_worker(kind, ("q",))
    counts = agree(breakdowns=kind == "jobsvc")
    assert nonzero(counts["q"]) == {"completed": 8, "failed": 2}
    report = repair()
    assert report.counts["rq_moved"] == (5 if kind == "rq" else 0)
    assert nonzero(agree()["q"]) == {"completed": 8, "failed": 2}
    assert sorted(rqfuncs.calls()) == sorted([f"js{i}" for i in range(4)] + [f"rq{i}" for i in range(4)]
                                             + ["js-bad", "rq-bad"])
