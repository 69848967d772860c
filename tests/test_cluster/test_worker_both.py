"""The worker on a single Redis and on the suite's Redis Cluster (issue 15, docs/cluster.md 2.3): a worker on
six queues, two per shard, runs their jobs in its queue order, records outcomes one call per queue, registers
under RQ's names; as a process (on a redis+cluster:// URL for the cluster) it wakes on an enqueue in any of its
queues, whatever their shard, and a job whose worker is SIGKILLed runs again on another worker."""
from __future__ import annotations

import os
import pickle
import signal
from pathlib import Path

import pytest
import redis

from jobsvc import Client, Config
from jobsvc.embedded_cluster import queues_per_shard
from jobsvc.engine import directory
from jobsvc.engine.keys import template
from tests.conftest import ALLOWED_MODULES, LEASE_ARGS, read_pid, wait_for
from tests.test_cluster import test_core_both
from tests.test_cluster.test_core_both import PREFIX
from workers.worker import LeasedWorker

backend = test_core_both.backend  # the parametrized fixture: a single Redis, the suite's cluster


@pytest.fixture
def restore_signals():
    """The worker installs signal handlers; they are put back afterwards."""
    sigs = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM)
    saved = {s: signal.getsignal(s) for s in sigs}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def test_a_burst_worker_runs_every_queue_in_its_order_and_records_each_outcome(backend, restore_signals, tmp_path):
    client, queues, log = backend.client(), backend.queues, tmp_path / "ran"
    jobs = [(q, client.enqueue("tests.jobfuncs.record", str(log), f"{q}-{i}", queue=q).id) for q in reversed(queues)
            for i in range(3)]
    failing = client.enqueue("tests.jobfuncs.boom", "no", queue=queues[2], max_attempts=1)
    config = Config(redis_url=backend.config.redis_url, allowed_modules=ALLOWED_MODULES, claim_batch=4)
    worker = LeasedWorker(queues, backend.conn, config, name="host.1.w")
    assert worker.work(burst=True)
    assert (worker.processed, worker.failed) == (18, 1)
    ran = [line.split()[0] for line in log.read_text().splitlines()]
    # Queue order, whatever order the jobs were enqueued in (within a queue: first in, first out).
    assert ran == [f"{q}-{i}" for q in queues for i in range(3)]
    for q, job_id in jobs:
        assert backend.conn.hget(backend.key("job", q, job_id), "status") == b"finished"
    assert backend.conn.hget(backend.key("job", queues[2], failing.id), "status") == b"failed"
    # Registered under RQ's names while it ran, marked dead when it stopped.
    assert backend.conn.smembers("rq:workers") == set()
    assert backend.conn.hget("rq:worker:host.1.w", "death")


def test_progress_of_a_running_job_is_recorded_in_its_queues_slot(backend, restore_signals, tmp_path):
    release = tmp_path / "release"
    release.write_text("go")
    q = backend.queues[4]
    job = backend.client().enqueue("tests.jobfuncs.report_progress", str(release), queue=q)
    config = Config(redis_url=backend.config.redis_url, allowed_modules=ALLOWED_MODULES)
    LeasedWorker(backend.queues, backend.conn, config, name="host.2.w").work(burst=True)
    fields = backend.conn.hgetall(backend.key("job", q, job.id))
    assert fields[b"status"] == b"finished"
    assert fields[b"js_progress"] == b"100"


def test_a_job_its_ttl_deletes_at_once_leaves_no_id_directory_entry(backend, restore_signals):
    """result_ttl / failure_ttl 0 delete the job with its outcome; on a cluster the worker removes its id directory
    entry too (the script cannot reach the directory's slot), so the directory does not grow with such jobs."""
    client, q = backend.client(), backend.queues[1]
    kept = client.enqueue("tests.jobfuncs.add", 1, 2, queue=q).id
    done = client.enqueue("tests.jobfuncs.add", 1, 2, queue=q, result_ttl=0).id
    failed = client.enqueue("tests.jobfuncs.boom", queue=q, max_attempts=1, failure_ttl=0).id
    config = Config(redis_url=backend.config.redis_url, allowed_modules=ALLOWED_MODULES)
    LeasedWorker([q], backend.conn, config, name="host.3.w").work(burst=True)
    assert [bool(backend.conn.exists(backend.key("job", q, i))) for i in (kept, done, failed)] == [True, False, False]
    if backend.cluster:
        assert directory.queues_of(backend.conn, PREFIX, [kept, done, failed]) == {kept: q}


def test_rqs_job_object_inside_a_job_reads_and_writes_the_jobs_own_hash(backend, restore_signals):
    """rq.get_current_job() in a job: its meta saved (job.save_meta()) lands in the job's hash, which on a cluster
    is named under the queue's tag, not RQ's `rq:job:<id>`."""
    q = backend.queues[5]
    job_id = backend.client().enqueue("tests.rqfuncs.with_meta", "stage", "resized", queue=q).id
    config = Config(redis_url=backend.config.redis_url, allowed_modules="tests")
    LeasedWorker([q], backend.conn, config, name="host.4.w").work(burst=True)
    fields = backend.conn.hgetall(backend.key("job", q, job_id))
    assert fields[b"status"] == b"finished"
    assert pickle.loads(fields[b"meta"]) == {"stage": "resized"}
    if backend.cluster:
        assert not backend.conn.exists(f"rq:job:{job_id}")  # nothing written under RQ's name


# -- worker processes, on a single Redis and on a redis+cluster:// URL ----------------------------------------

@pytest.fixture(params=["single", "cluster"])
def proc_backend(request, procs, redis_server, redis_cluster_server):
    """`procs` (tests/conftest.py) pointed at a single Redis or at the suite's cluster (a redis+cluster:// URL), a
    client of it, and six queues (two per shard on the cluster)."""
    if request.param == "single":
        r = request.getfixturevalue("r")
        yield procs, r, request.getfixturevalue("client"), [f"q{i}" for i in range(6)]
        return
    request.applymarker(pytest.mark.cluster)
    cluster = request.getfixturevalue("redis_cluster")
    url = cluster.url.replace("redis://", "redis+cluster://")
    procs.env = {**procs.env, "REDIS_URL": url}
    rc = cluster.client()
    try:
        yield procs, rc, Client(url, Config(redis_url=url, allowed_modules=ALLOWED_MODULES)), queues_per_shard(rc, 2)
    finally:
        rc.close()


def status(conn, queue: str, job_id: str) -> bytes | None:
    cluster = isinstance(conn, redis.RedisCluster)
    return conn.hget(template("job", PREFIX, queue if cluster else None) % job_id, "status")


@pytest.mark.slow
def test_an_idle_worker_process_wakes_for_a_job_in_any_of_its_queues(proc_backend):
    procs, conn, client, queues = proc_backend
    # An idle wait far longer than the test's deadline: only a wake-up can start these jobs in time.
    worker = procs.worker("w", "-q", ",".join(queues), env={"JOBSVC_IDLE_WAIT": "120"})
    wait_for(lambda: conn.scard("rq:workers") == 1, 20, "the worker to register")
    for q in reversed(queues):
        job = client.enqueue("tests.jobfuncs.add", 1, 2, queue=q)
        wait_for(lambda q=q, job=job: status(conn, q, job.id) == b"finished", 20, f"the job of {q} to run")
    assert worker.poll() is None


@pytest.mark.slow
def test_a_job_whose_worker_is_sigkilled_runs_again_on_another(proc_backend, tmp_path):
    procs, conn, client, queues = proc_backend
    workers = [procs.worker(f"w{i}", "-q", ",".join(queues), *LEASE_ARGS) for i in (1, 2)]
    wait_for(lambda: conn.scard("rq:workers") == 2, 20, "both workers to register")
    marker = Path(tmp_path / "started")
    job = client.enqueue("tests.jobfuncs.mark_first_run", str(marker), 60, queue=queues[3])
    victim = wait_for(lambda: read_pid(marker), 20, "the job to start")
    assert victim in {w.pid for w in workers}
    os.kill(victim, signal.SIGKILL)
    # The survivor's heartbeat reaps the expired lease (no scheduler runs here) and a worker runs the job again.
    wait_for(lambda: status(conn, queues[3], job.id) == b"finished", 30, "the job to run again and finish")
    survivor = read_pid(Path(f"{marker}.again"))
    assert survivor is not None and survivor != victim


@pytest.mark.cluster
def test_a_node_away_in_a_round_trip_keeps_what_the_other_nodes_ran(redis_cluster, restore_signals, monkeypatch):
    """On a cluster a worker's round trip goes to several masters; one that is away (a failover) must not make the
    worker lose what the others ran: the claim that ran leases its jobs to this worker, so it is kept, and only the
    failed outcome call goes again."""
    from jobsvc.engine import connection
    from jobsvc.engine.leases import Completion
    from jobsvc.engine.replies import Reply

    rc = redis_cluster.client()
    config = Config(redis_url=redis_cluster.url, allowed_modules=ALLOWED_MODULES)
    queues = queues_per_shard(rc, 2)  # queues[0], queues[1] on one master, the others elsewhere
    client = Client(rc, config)
    node = lambda q: rc.get_node_from_key(f"{{{q}}}").name  # noqa: E731
    other = next(q for q in queues if node(q) != node(queues[0]))
    worker = LeasedWorker([queues[1]], rc, config, name="host.5.w")
    for q in (queues[0], other):
        client.enqueue("tests.jobfuncs.add", 1, 2, queue=q)
    waiting = client.enqueue("tests.jobfuncs.add", 1, 2, queue=queues[1]).id
    done = [worker.leases.claim([queues[0]], "host.5.w"), worker.leases.claim([other], "host.5.w")]
    calls = [worker.leases.complete_many_call("host.5.w", [Completion(lease, 3, 1.0, 2.0)]) for lease in done]
    real, down = connection.round_trip, rc.get_redis_connection(rc.get_node_from_key(f"{{{other}}}"))
    failures = []

    def once_away(conn, commands):
        if conn is down and not failures:
            failures.append(1)
            raise redis.ConnectionError("master away (a failover)")
        return real(conn, commands)

    monkeypatch.setattr(connection, "round_trip", once_away)
    monkeypatch.setattr(worker, "_pause", lambda seconds: None)
    replies = worker._finish(calls, worker._claim_call())
    assert failures == [1]
    assert replies == [[[Reply.OK]], [[Reply.OK]]]  # the one that failed was sent again and recorded
    assert [lease.job_id for lease in worker._held] == [waiting]  # the claim that ran is held, at once
    rc.close()
