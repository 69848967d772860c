"""The core's job scenarios on a single Redis and on the suite's Redis Cluster, through one parametrized fixture
(issue 15): enqueue, claim in the worker's queue order, complete, fail, retry after backoff and promotion, a
lease that expired (its worker killed) reaped and run again, quarantine, fencing of a stale holder, stats. On
the cluster the six queues sit two per shard and every transition is one script on its queue's shard; what still
differs is said where it does. The worker, scheduler and API processes do not run on a cluster yet
(docs/cluster.md)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from jobsvc import Client, Config
from jobsvc.embedded_cluster import queues_per_shard
from jobsvc.engine import scripts
from jobsvc.engine.connection import is_cluster, redis_ms
from jobsvc.engine.keys import template
from jobsvc.engine.leases import Completion, Leases
from jobsvc.engine.replies import Reply
from jobsvc.engine.stats import read_counts
from jobsvc.maintenance.reaper import Reaper
from jobsvc.scheduling.promotion import Promoter
from tests.conftest import ALLOWED_MODULES

PREFIX = "jobsvc:"
WORKER = "host.1.w"


@dataclass
class Backend:
    conn: Any  # redis.Redis or redis.RedisCluster
    config: Config
    queues: list[str]

    @property
    def cluster(self) -> bool:
        return is_cluster(self.conn)

    def key(self, family: str, queue: str, *names: object) -> str:
        """A key's name in this backend's layout."""
        return template(family, PREFIX, queue if self.cluster else None) % names

    def client(self) -> Client:
        return Client(self.conn, self.config)

    def leases(self) -> Leases:
        return Leases(self.conn, self.config)


@pytest.fixture(params=["single", "cluster"])
def backend(request, redis_server, redis_cluster_server):  # both named: the fast tier leaves these tests out
    if request.param == "single":
        r = request.getfixturevalue("r")
        yield Backend(r, request.getfixturevalue("config"), [f"q{i}" for i in range(6)])
        return
    request.applymarker(pytest.mark.cluster)
    cluster = request.getfixturevalue("redis_cluster")
    rc = cluster.client()
    try:
        yield Backend(rc, Config(redis_url=cluster.url, allowed_modules=ALLOWED_MODULES), queues_per_shard(rc, 2))
    finally:
        rc.close()


def test_jobs_are_enqueued_claimed_in_queue_order_completed_and_counted(backend):
    client, leases, queues = backend.client(), backend.leases(), backend.queues
    one = {q: client.enqueue("tests.jobfuncs.add", 1, 2, queue=q).id for q in queues}
    many = client.enqueue_many([Client.job("tests.jobfuncs.add", i, 1, queue=q) for i, q in enumerate(queues * 2)])
    for q, job_id in one.items():
        assert backend.conn.hget(backend.key("job", q, job_id), "status") == b"queued"
    got = leases.claim_many(queues, WORKER, count=100)
    assert [lease.queue for lease in got] == [q for q in queues for _ in range(3)]  # the worker's order
    assert {lease.job_id for lease in got} == set(one.values()) | {e.id for e in many}
    for q in queues:  # a worker on a cluster sends one complete call per queue
        done = [Completion(lease, lease.job_id, 1.0, 2.0) for lease in got if lease.queue == q]
        assert scripts.call(backend.conn, *leases.complete_many_call(WORKER, done)) == [[Reply.OK]] * 3
    for lease in got:
        assert backend.conn.hget(backend.key("job", lease.queue, lease.job_id), "status") == b"finished"
        assert backend.conn.zscore(backend.key("finished", lease.queue, lease.queue), lease.job_id) is not None
    assert leases.claim_many(queues, WORKER, count=10) == []
    counts = read_counts(backend.conn, client.keys)
    assert {q: counts.queues[q]["completed"] for q in queues} == dict.fromkeys(queues, 3)
    assert sum(c["completed"] for c in counts.groups.values()) == 18
    if backend.cluster:  # each queue's keys on its own shard
        for q in queues:
            assert (backend.conn.get_node_from_key(backend.key("leases", q)).port
                    == backend.conn.get_node_from_key(f"{{{q}}}").port)


def test_a_failed_job_waits_its_backoff_then_is_promoted_claimed_again_and_fails_for_good(backend):
    client, leases, q = backend.client(), backend.leases(), backend.queues[-1]
    job_id = client.enqueue("tests.jobfuncs.add", 1, 2, queue=q, max_attempts=2).id
    lease = leases.claim([q], WORKER)
    assert lease is not None and lease.job_id == job_id
    assert leases.fail(lease, RuntimeError("boom"), worker=WORKER) == "scheduled"
    assert leases.claim([q], WORKER) is None  # not before its backoff
    timeline = backend.key("scheduled", q)
    assert backend.conn.zscore(timeline, job_id) is not None
    backend.conn.zadd(timeline, {job_id: 0})  # its backoff is over
    assert Promoter(backend.conn, backend.config).run_once().promoted == 1
    again = leases.claim([q], WORKER)
    assert again is not None and again.job_id == job_id and again.attempt == 2
    assert leases.fail(again, RuntimeError("boom again"), worker=WORKER) == "failed"
    assert backend.conn.zscore(backend.key("failed", q, q), job_id) is not None
    assert read_counts(backend.conn, client.keys, q).queues[q]["failed"] == 1


def test_an_expired_lease_is_reaped_its_job_runs_again_and_the_stale_holder_is_fenced(backend):
    """A worker killed while it holds a job: its lease expires, the reaper takes the job back (attempt counted),
    another worker runs it; the first worker's late outcome is refused (its token is stale)."""
    client, leases, queues = backend.client(), backend.leases(), backend.queues[:3]
    for q in queues:
        client.enqueue("tests.jobfuncs.add", 1, 2, queue=q, max_attempts=3)
    held = leases.claim_many(queues, WORKER, count=3)
    assert leases.renew(held, holder=WORKER) == []  # a heartbeat, queue by queue on a cluster
    dead = held[1]
    backend.conn.zadd(backend.key("leases", dead.queue), {dead.job_id: 0})  # its worker died long ago
    result = Reaper(backend.conn, backend.config).run_once()
    assert (result.requeued, result.failed, result.quarantined) == (1, 0, 0)
    assert leases.renew(held, holder=WORKER) == [dead.job_id]  # the others' leases still hold
    again = leases.claim([dead.queue], "host.2.w")
    assert again is not None and again.job_id == dead.job_id and again.attempt == 2
    stale = scripts.call(backend.conn, *leases.complete_many_call(WORKER, [Completion(dead, "late", 1.0, 2.0)]))
    assert stale[0][0] == Reply.LEASE_LOST
    assert scripts.call(backend.conn, *leases.complete_many_call("host.2.w", [Completion(again, 3, 1.0, 2.0)])) == [
        [Reply.OK]]


def test_a_claim_takes_the_lease_time_it_asks_for(backend):
    client, leases, q = backend.client(), backend.leases(), backend.queues[2]
    client.enqueue("tests.jobfuncs.add", 1, 2, queue=q)
    lease = leases.claim([q], WORKER, lease_ttl=600)
    assert lease is not None
    assert lease.expires_ms - redis_ms(backend.conn) > 300_000  # 600 s asked, not the default 30 s


def test_a_job_whose_lease_is_lost_too_often_is_quarantined(backend):
    config = replace(backend.config, max_lease_losses=1)
    client, leases, q = Client(backend.conn, config), Leases(backend.conn, config), backend.queues[0]
    job_id = client.enqueue("tests.jobfuncs.add", 1, 2, queue=q).id
    lease = leases.claim([q], WORKER)
    assert lease is not None
    backend.conn.zadd(backend.key("leases", q), {job_id: 0})
    assert Reaper(backend.conn, config).run_once().quarantined == 1
    assert backend.conn.zscore(backend.key("quarantined", q, q), job_id) is not None
    assert read_counts(backend.conn, client.keys, q).queues[q]["quarantined"] == 1
