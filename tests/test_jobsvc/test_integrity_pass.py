"""The scheduler's background integrity pass (jobsvc/maintenance/integrity.py): bounded work per run_once, a
walk resumed from pass to pass that repairs what it finds, the scheduler running it every integrity_interval, and the
integrity sweep's handling of jobs RQ's own code moved (sweep_orphans.lua: rq_moved)."""
from __future__ import annotations

import pytest
import rq
from rq.job import Job

from jobsvc import Config
from jobsvc.admin.bulk import integrity_sweep
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases
from jobsvc.errors import ValidationError
from jobsvc.maintenance.integrity import IntegrityPass
from tests.conftest import wait_for
from workers.scheduler import Scheduler

KEYS = Keys()
NOOP = "tests.jobfuncs.noop"
GROUP = f"default|default|{NOOP}"


def gauge(r, state):
    return int(r.hget(KEYS.count(GROUP), state) or 0)


def test_a_pass_looks_at_a_bounded_number_of_jobs_and_the_walk_resumes(client, r, config):
    client.enqueue_many([client.job(NOOP) for _ in range(1200)])
    r.hincrby(KEYS.count(GROUP), "queued", 7)  # drift, found at the end of the walk (the recount)
    background = IntegrityPass(r, config, max_jobs=300, chunk=100)
    results = []
    while not results or not results[-1].walk_done:
        results.append(background.run_once())
        assert len(results) < 50
    # A pass ends within one step past its bound; a step is one script call of at most `chunk` ids, or one
    # queue's whole recount (sweep_recount.lua) when the queue is small enough for that.
    big = [res.looked_at for res in results if res.looked_at > 300 + 100]
    assert len(big) == 1 and big[0] < 300 + 1200
    assert len(results) >= 4  # 1,200 hashes to scan, then 1,200 lane entries and 1,200 created ids: many passes
    assert {c: n for c, n in results[-1].report.counts.items() if n} == {"gauge_drift": 1}
    assert [res.repaired for res in results if res.repaired] == [{"gauge_drift": 1}]  # the pass that found it
    assert gauge(r, "queued") == 1200
    assert background.walks == 1
    assert background.run_once().walk_done is False  # the next pass starts a new walk


def test_a_walk_finds_what_changed_while_it_was_under_way(client, r, config):
    ids = [e.id for e in client.enqueue_many([client.job(NOOP) for _ in range(600)])]
    background = IntegrityPass(r, config, max_jobs=100, chunk=100)
    background.run_once()
    r.zrem(KEYS.created("default"), ids[0])  # a job the SCAN may already have passed
    report = background.run_walk()
    if report.counts["unindexed"] == 0:  # the scan had passed it: the next walk finds it
        report = background.run_walk()
    assert report.counts["unindexed"] == 1
    assert r.zscore(KEYS.created("default"), ids[0]) is not None
    assert background.run_walk().clean


def test_a_pass_never_reads_a_lane_per_queued_job(client, r, config):
    """The background pass trusts a queued job's lane (reading it costs O(lane) per job); `jobsvc sweep` checks."""
    job_id = client.enqueue(NOOP, priority=3).id
    r.delete(KEYS.lane("default", 3))
    assert IntegrityPass(r, config).run_walk().counts["orphan"] == 0
    assert integrity_sweep(r, config, fix=True).samples["orphan"] == [job_id]


def test_the_scheduler_runs_a_pass_every_integrity_interval(client, r, config):
    client.enqueue(NOOP)
    r.hincrby(KEYS.count(GROUP), "failed", 2)
    sched = Scheduler(r, Config(redis_url=config.redis_url, integrity_interval=0.01))
    wait_for(lambda: sched.run_once() is not None and sched.integrity.walks >= 1, 10, "a whole background walk")
    assert gauge(r, "failed") == 0 and gauge(r, "queued") == 1


def test_integrity_interval_zero_turns_the_pass_off(client, r, config):
    r.hincrby(KEYS.count(GROUP), "failed", 2)
    sched = Scheduler(r, Config(redis_url=config.redis_url, integrity_interval=0))
    for _ in range(3):
        sched.run_once()
    assert sched.integrity.walks == 0 and gauge(r, "failed") == 2


def test_integrity_interval_from_the_environment():
    assert Config.from_env({"JOBSVC_INTEGRITY_INTERVAL": "2.5"}).integrity_interval == 2.5
    assert Config().integrity_interval == 5.0
    with pytest.raises(ValidationError, match="integrity_interval"):
        Config(integrity_interval=-1)


# -- jobs RQ's own code moved ------------------------------------------------------------------------------


def failed_job(client, r, config, **opts):
    job_id = client.enqueue(NOOP, max_attempts=1, **opts).id
    leases = Leases(r, config)
    leases.fail(leases.claim(["default"], "w"), RuntimeError("boom"), retryable=False)
    return job_id


def test_a_job_rq_requeued_is_not_taken_off_rq_queue_nor_put_back_in_failed(client, r, config):
    """Before: the sweep removed a failed jobsvc job `rq requeue` had put on rq:queue (wrong structure) and put
    it back into FailedJobRegistry (orphan): RQ's requeue was undone."""
    job_id = failed_job(client, r, config)
    rq.registry.FailedJobRegistry("default", connection=r).requeue(job_id)
    report = integrity_sweep(r, config, fix=True)
    assert {c: n for c, n in report.counts.items() if n} == {"rq_moved": 1}
    assert r.lrange(KEYS.lane("default", 5), 0, -1) == [job_id.encode()]
    assert r.zscore(KEYS.failed("default"), job_id) is None
    info = client.get(job_id)
    assert (info.state.value, info.attempts) == ("queued", 0)
    assert (gauge(r, "failed"), gauge(r, "queued")) == (0, 1)
    assert integrity_sweep(r, config).clean


def test_a_job_an_rq_worker_runs_is_left_to_it(client, r, config):
    """An RQ worker of a mixed fleet popped a jobsvc job (status started): the sweep must not push it back onto
    its lane (it would run twice); once RQ's worker finished it, jobsvc counts it completed."""
    job_id = client.enqueue(NOOP).id
    job, _ = rq.Queue.dequeue_any([rq.Queue("default", connection=r)], None, connection=r)
    job.set_status("started")
    report = integrity_sweep(r, config, fix=True)
    assert report.clean and r.llen(KEYS.lane("default", 5)) == 0
    Job.fetch(job_id, connection=r).set_status("finished")
    r.zadd(KEYS.finished("default"), {job_id: 10**10})
    assert integrity_sweep(r, config, fix=True).samples["rq_moved"] == [job_id]
    assert client.get(job_id).state.value == "completed"
    assert (gauge(r, "queued"), gauge(r, "completed")) == (0, 1)
    assert integrity_sweep(r, config).clean


def test_a_report_only_sweep_reports_rq_moves_and_writes_nothing(client, r, config):
    job_id = failed_job(client, r, config)
    rq.registry.FailedJobRegistry("default", connection=r).requeue(job_id)
    before = {k: r.dump(k) for k in r.keys("*")}
    assert integrity_sweep(r, config).samples["rq_moved"] == [job_id]
    assert {k: r.dump(k) for k in r.keys("*")} == before


def test_a_failing_step_does_not_stop_the_scheduler_and_the_next_pass_walks_anew(client, r, config, caplog):
    client.enqueue(NOOP)
    r.set(KEYS.scheduled_in("default"), "not a sorted set")  # damaged: the walk's script on it fails
    sched = Scheduler(r, Config(redis_url=config.redis_url, integrity_interval=0.01))
    wait_for(lambda: sched.run_once() is not None and "integrity pass failed" in caplog.text, 10, "a failed pass")
    assert sched.integrity._walk is None
    r.delete(KEYS.scheduled_in("default"))
    assert sched.integrity.run_walk().clean
