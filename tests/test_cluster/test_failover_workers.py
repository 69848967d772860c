"""Failover while workers run (issue 15, docs/cluster.md "Durability"): 2,000 jobs over six queues of a 3-master
cluster, three worker processes on a redis+cluster:// URL; once some hundreds have run, the master of the first
queue is replaced, gracefully (`CLUSTER FAILOVER` on its replica) or not (SIGKILL: the cluster promotes the
replica after cluster-node-timeout, 1 s here). Counted with JOBSVC_REPLICA_WAIT=1 and without: jobs lost (never
finished) and jobs run twice. Asserted: with the wait nothing is lost; in every case each job ends finished
once (its hash), whatever ran twice. The figures are printed for docs/cluster.md."""
from __future__ import annotations

import collections
import os
import time
from pathlib import Path

import pytest
import redis

from jobsvc import Client, Config
from jobsvc.embedded_cluster import LocalCluster, queues_per_shard, wait_until
from jobsvc.engine.keys import template
from tests.conftest import ALLOWED_MODULES, LEASE_ARGS, Processes, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PREFIX = "jobsvc:"
JOBS = 2000


def _run(tmp_path: Path, subprocess_env: dict[str, str], kind: str, wait: int) -> tuple[int, int]:
    """(lost, ran twice) for one failover of `kind` ('failover' or 'kill') with JOBSVC_REPLICA_WAIT=`wait`."""
    cluster = LocalCluster(tmp_path / f"{kind}{wait}", node_timeout_ms=1000).start()
    procs = Processes({**subprocess_env, "REDIS_URL": cluster.url.replace("redis://", "redis+cluster://"),
                       "JOBSVC_REPLICA_WAIT": str(wait)}, tmp_path)
    rc = cluster.client()
    try:
        queues = queues_per_shard(rc, 2)
        log = tmp_path / f"ran-{kind}{wait}"
        config = Config(redis_url=cluster.url, allowed_modules=ALLOWED_MODULES, replica_wait=wait)
        specs = [Client.job("tests.jobfuncs.record", str(log), str(i), queue=queues[i % 6]) for i in range(JOBS)]
        jobs = [(spec.queue, e.id) for spec, e in zip(specs, Client(rc, config).enqueue_many(specs), strict=True)]
        for i in range(3):
            procs.worker(f"{kind}{wait}-w{i}", "-q", ",".join(queues), *LEASE_ARGS)
        wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 300, 60, "300 jobs to run")
        victim = next(m for m in cluster.masters if rc.get_node_from_key(f"{{{queues[0]}}}").port == m.port)
        heir = cluster.replicas[cluster.masters.index(victim)]
        if kind == "failover":
            heir.conn.execute_command("CLUSTER", "FAILOVER")
        else:
            victim.stop()  # SIGKILL
        alive = [n for n in cluster.nodes if n.process is not None]
        wait_until(lambda: heir.conn.info("replication")["role"] == "master"
                   and all(n.cluster_info().get("cluster_state") == "ok" for n in alive), 30,
                   "the replica to take over and every live node to see the cluster ok")
        rc.close()
        rc = redis.RedisCluster(host="127.0.0.1", port=heir.port)
        finished = lambda: sum(rc.zcard(template("finished", PREFIX, q) % q) for q in queues)  # noqa: E731
        deadline = time.monotonic() + 60  # a lost job never finishes: count, do not wait forever
        while finished() < JOBS and time.monotonic() < deadline:
            time.sleep(0.1)
        lost = sum(1 for q, job_id in jobs if rc.hget(template("job", PREFIX, q) % job_id, "status") != b"finished")
        runs = collections.Counter(line.split()[0] for line in log.read_text().splitlines())
        assert set(runs) == {str(i) for i in range(JOBS)} - _never_ran(rc, jobs)
        return lost, sum(1 for n in runs.values() if n > 1)
    finally:
        rc.close()
        procs.kill_all()
        cluster.stop()


def _never_ran(rc: redis.RedisCluster, jobs: list[tuple[str, str]]) -> set[str]:
    """Jobs with no run at all (lost before any worker claimed them): their index as their tag."""
    return {str(i) for i, (q, job_id) in enumerate(jobs)
            if rc.hget(template("job", PREFIX, q) % job_id, "status") in (None, b"queued")}


@pytest.mark.parametrize("kind", ["failover", "kill"])
def test_a_failover_under_running_workers_loses_nothing_with_the_wait(kind, tmp_path, subprocess_env,
                                                                      record_property):
    lost_with, twice_with = _run(tmp_path, subprocess_env, kind, wait=1)
    lost_without, twice_without = _run(tmp_path, subprocess_env, kind, wait=0)
    for name, value in (("lost_with", lost_with), ("twice_with", twice_with), ("lost_without", lost_without),
                        ("twice_without", twice_without)):
        record_property(name, value)
    print(f"{kind} of {JOBS} jobs under 3 workers: JOBSVC_REPLICA_WAIT=1: {lost_with} lost, {twice_with} ran "
          f"twice; without: {lost_without} lost, {twice_without} ran twice")
    assert lost_with == 0
    assert os.environ.get("JOBSVC_REPLICA_WAIT") is None  # the setting came from the workers' env only
