"""JOBSVC_REPLICA_WAIT (docs/cluster.md, "Durability"): an enqueue and a job's outcome return once that many
replicas have them (Redis WAIT, in the same round trip on one Redis; on each master a call wrote to, on a
cluster), or after the timeout with a WARNING. And what a failover loses: a master SIGKILLed right after 2,000
acknowledged enqueues, its replica promoted by the cluster; with the wait none is lost."""
from __future__ import annotations

import logging

import pytest
import redis

from jobsvc import Client, Config
from jobsvc.embedded_cluster import LocalCluster, wait_until
from jobsvc.engine.keys import template
from jobsvc.engine.leases import Leases
from jobsvc.errors import ValidationError
from tests.conftest import ALLOWED_MODULES

PREFIX = "jobsvc:"


def test_the_wait_is_configured_in_replicas_and_milliseconds_within_bounds():
    assert Config().wait() is None
    c = Config.from_env({"JOBSVC_REPLICA_WAIT": "1", "JOBSVC_REPLICA_WAIT_TIMEOUT_MS": "250"})
    assert c.wait() == (1, 250)
    for bad in ({"replica_wait": -1}, {"replica_wait": 17}, {"replica_wait": 1, "replica_wait_timeout_ms": 0}):
        with pytest.raises(ValidationError, match="replica_wait"):
            Config(**bad)


def test_without_a_replica_the_call_returns_after_the_timeout_and_says_so(r, config, client, caplog):
    waiting = config.with_(replica_wait=1, replica_wait_timeout_ms=20)
    with caplog.at_level(logging.WARNING, logger="jobsvc.redis"):
        job_id = Client(r, waiting).enqueue("tests.jobfuncs.add", 1, 2).id
        lease = Leases(r, waiting).claim(["default"], "host.1.w")
        assert lease is not None
        Leases(r, waiting).complete(lease, 3, "host.1.w", 1.0, 2.0)
    assert r.hget(f"rq:job:{job_id}", "status") == b"finished"  # written all the same, on the master
    said = [rec.getMessage() for rec in caplog.records if "replica(s) acknowledged" in rec.getMessage()]
    assert len(said) == 2 and all("0 of 1 replica(s) acknowledged within 20 ms" in s for s in said)


def test_a_refused_wait_leaves_the_writes_and_says_why(r, redis_url, config, caplog):
    """A WAIT the server refuses (an ACL without it, a proxy) counts no replica; the call does not fail, since its
    writes went through and its caller would send them again."""
    r.execute_command("ACL", "SETUSER", "nowait", "on", "nopass", "~*", "&*", "+@all", "-wait")
    try:
        limited = redis.Redis.from_url(redis_url, username="nowait", password="")
        waiting = config.with_(replica_wait=1, replica_wait_timeout_ms=20)
        with caplog.at_level(logging.WARNING, logger="jobsvc.redis"):
            job_id = Client(limited, waiting).enqueue("tests.jobfuncs.add", 1, 2).id
        assert r.hget(f"rq:job:{job_id}", "status") == b"queued"
        assert any("WAIT failed" in rec.getMessage() for rec in caplog.records)
        limited.close()
    finally:
        r.execute_command("ACL", "DELUSER", "nowait")


@pytest.mark.cluster
def test_on_a_cluster_each_written_master_waits_for_its_replica(redis_cluster, caplog):
    rc = redis_cluster.client()
    try:
        config = Config(redis_url=redis_cluster.url, allowed_modules=ALLOWED_MODULES, replica_wait=1,
                        replica_wait_timeout_ms=5000)
        queues = [f"q{i}" for i in range(12)]
        with caplog.at_level(logging.WARNING, logger="jobsvc.redis"):
            ids = Client(rc, config).enqueue_many([Client.job("tests.jobfuncs.add", 1, 2, queue=q) for q in queues])
        assert not [rec for rec in caplog.records if "replica(s) acknowledged" in rec.getMessage()]
        # Acknowledged: each job is on its master's replica already (read there directly).
        by_port = {node.port: node for node in redis_cluster.nodes}
        for q, e in zip(queues, ids, strict=True):
            key = template("job", PREFIX, q) % e.id
            master = by_port[rc.get_node_from_key(key).port]
            replica = next(n for n in redis_cluster.replicas
                           if n.conn.info("replication")["master_port"] == master.port)
            replica.conn.execute_command("READONLY")
            assert replica.conn.hget(key, "status") == b"queued"
    finally:
        rc.close()


def _lost_in_a_failover(tmp_path, wait: int) -> int:
    """Enqueue 2,000 jobs over 12 queues, SIGKILL the first master at once, let the cluster promote its replica:
    how many acknowledged jobs are gone."""
    cluster = LocalCluster(tmp_path / f"wait{wait}", node_timeout_ms=1000).start()
    try:
        rc = cluster.client()
        config = Config(redis_url=cluster.url, allowed_modules=ALLOWED_MODULES, replica_wait=wait,
                        replica_wait_timeout_ms=5000)
        queues = [f"q{i}" for i in range(12)]
        specs = [Client.job("tests.jobfuncs.add", i, 1, queue=queues[i % 12]) for i in range(2000)]
        acked = Client(rc, config).enqueue_many(specs)
        victim, heir = cluster.masters[0], cluster.replicas[0]
        victim.stop()  # SIGKILL
        alive = [n for n in cluster.nodes if n is not victim]
        wait_until(lambda: heir.conn.info("replication")["role"] == "master"
                   and all(n.cluster_info().get("cluster_state") == "ok" for n in alive), 30,
                   "the replica to take over and every node to see the cluster ok")
        rc.close()
        survivor = redis.RedisCluster(host="127.0.0.1", port=heir.port)
        try:
            return sum(1 for spec, e in zip(specs, acked, strict=True)
                       if not survivor.exists(template("job", PREFIX, spec.queue) % e.id))
        finally:
            survivor.close()
    finally:
        cluster.stop()


@pytest.mark.cluster
@pytest.mark.slow
def test_with_the_wait_a_failover_loses_no_acknowledged_enqueue(tmp_path, record_property):
    lost_with = _lost_in_a_failover(tmp_path, wait=1)
    assert lost_with == 0
    # Without it: reported, not asserted (asynchronous replication usually keeps up on one machine).
    lost_without = _lost_in_a_failover(tmp_path, wait=0)
    record_property("lost_without_wait", lost_without)
    print(f"failover: lost with JOBSVC_REPLICA_WAIT=1: {lost_with}; without: {lost_without} of 2,000")


def test_a_workers_outcomes_wait_too(r, config, caplog):
    from workers.worker import LeasedWorker

    waiting = config.with_(replica_wait=1, replica_wait_timeout_ms=10)
    job_id = Client(r, config).enqueue("tests.jobfuncs.add", 1, 2).id  # the enqueue itself does not wait here
    with caplog.at_level(logging.WARNING, logger="jobsvc.redis"):
        LeasedWorker(["default"], r, waiting, name="host.1.w").work(burst=True)
    assert r.hget(f"rq:job:{job_id}", "status") == b"finished"
    assert any("0 of 1 replica(s) acknowledged within 10 ms" in rec.getMessage() for rec in caplog.records)
