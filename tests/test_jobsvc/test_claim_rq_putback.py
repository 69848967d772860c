"""Jobs put back on their queue by RQ's own tools (FailedJobRegistry.requeue, `rq requeue`) after they ended:
claim.lua keeps them whole (no leftover expiry) and a pull job goes back to its pull lane, never to a
Python worker."""
from __future__ import annotations

from rq.registry import FailedJobRegistry

from jobsvc.engine.leases import Leases
from jobsvc.engine.states import State
from jobsvc.http import pull


def failed(client, r, config, queue, **options):
    job = client.enqueue("tests.jobfuncs.noop", queue=queue, max_attempts=1, failure_ttl=60, **options)
    leases = Leases(r, config)
    leases.fail(leases.claim([queue], "w"), RuntimeError("x"), "", False)
    return job.id


def test_a_job_rq_requeued_after_it_failed_is_kept_for_good_once_claimed(client, r, config):
    job_id = failed(client, r, config, "putback")
    r.expire(f"rq:job:{job_id}", 60)  # the failure TTL an RQ worker gives the key of a job that failed
    FailedJobRegistry("putback", connection=r).requeue(job_id)
    lease = Leases(r, config).claim(["putback"], "w")
    assert lease.job_id == job_id
    assert r.ttl(f"rq:job:{job_id}") == -1 and r.ttl(f"rq:results:{job_id}") in (-1, -2)
    Leases(r, config).complete(lease, 7, "w", 1.0, 2.0)
    assert client.state(job_id) == State.COMPLETED


def test_a_pull_job_rq_requeued_goes_back_to_pull_workers_only(client, r, config):
    job = client.enqueue_pull("external.work", 1, queue="pq", max_attempts=1)
    [lease] = pull.claim(r, config, "pq", worker="pw")
    Leases(r, config).fail(lease, RuntimeError("x"), "", False)
    FailedJobRegistry("pq", connection=r).requeue(job.id)  # onto rq:queue:pq, the Python lane
    assert Leases(r, config).claim(["pq"], "python-worker") is None
    [again] = pull.claim(r, config, "pq", worker="pw")
    assert again.job_id == job.id


def test_the_reaper_drops_a_stale_lease_entry_of_a_job_that_is_not_running(client, r, config):
    from jobsvc.engine.keys import Keys
    from jobsvc.maintenance.reaper import Reaper

    job = client.enqueue("tests.jobfuncs.noop", queue="stale")
    r.zadd(Keys(config.key_prefix).leases, {job.id: 1})  # an entry no script would leave; the job is queued
    before = r.hgetall(f"rq:job:{job.id}")
    assert Reaper(r, config).run_once().total == 0
    assert r.hgetall(f"rq:job:{job.id}") == before and client.state(job.id) == State.QUEUED
    assert r.zscore(Keys(config.key_prefix).leases, job.id) is None
