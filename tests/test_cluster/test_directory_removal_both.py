"""The id directory entries of jobs deleted at once by an outcome (a result / failure TTL of 0) on a Redis Cluster
(issue 15, review): pull acks (and handler callbacks, which ack the same way), the reaper, RQ's stop. The scripts
cannot reach the directory (another slot): their callers remove the entries, one round trip per master, by the
incarnation the job held (jobsvc/engine/directory.py). On a single Redis no directory exists."""
from __future__ import annotations

import pytest

from jobsvc.engine import directory
from jobsvc.engine.keys import id_directory
from jobsvc.errors import NotFound
from jobsvc.http import pull
from jobsvc.maintenance.reaper import Reaper
from tests.test_cluster import test_core_both
from tests.test_cluster.test_core_both import PREFIX, WORKER, Backend

backend = test_core_both.backend  # the parametrized fixture: a single Redis, the suite's cluster


def _entry(backend: Backend, job_id: str) -> bytes | None:
    return backend.conn.hget(id_directory(PREFIX, directory.shard_of(job_id)), job_id)


def _gone(backend: Backend, job_id: str) -> None:
    with pytest.raises(NotFound):
        backend.client().get(job_id)
    assert _entry(backend, job_id) is None


def test_pull_acks_that_delete_their_jobs_remove_their_entries(backend):
    client, q = backend.client(), backend.queues[0]
    ids = [client.enqueue_pull("tests.jobfuncs.add", 1, 2, queue=q, result_ttl=0, failure_ttl=0).id,
           client.enqueue_pull("tests.jobfuncs.add", 1, 2, queue=q, result_ttl=0, failure_ttl=0, max_attempts=1,
                               job_id="given-pull").id,
           client.enqueue_pull("tests.jobfuncs.add", 1, 2, queue=q, max_attempts=1).id]
    leases = {lease.job_id: lease for lease in pull.claim(backend.conn, backend.config, q, count=3)}
    done = pull.ack_many(backend.conn, backend.config, [
        pull.Ack(ids[0], leases[ids[0]].token, "completed", result=3),
        pull.Ack(ids[1], leases[ids[1]].token, "failed", error="boom", retryable=False),
        pull.Ack(ids[2], leases[ids[2]].token, "completed", result=3)])
    assert [d.state for d in done] == ["completed", "failed", "completed"]  # type: ignore[union-attr]
    for job_id in ids[:2]:
        _gone(backend, job_id)
    assert client.result(ids[2]) == 3  # kept for its result TTL, with its entry
    if backend.cluster:
        assert _entry(backend, ids[2]) == q.encode()


def test_a_single_pull_ack_removes_the_entry_of_the_job_it_deleted(backend):
    client, q = backend.client(), backend.queues[3]
    job_id = client.enqueue_pull("tests.jobfuncs.add", 1, 2, queue=q, result_ttl=0, job_id="one-pull").id
    (lease,) = pull.claim(backend.conn, backend.config, q)
    assert pull.ack(backend.conn, backend.config, job_id, lease.token, "completed", result=3).state == "completed"
    _gone(backend, job_id)


def test_the_reaper_removes_the_entries_of_jobs_a_failure_ttl_of_0_deleted(backend):
    client, leases, queues = backend.client(), backend.leases(), backend.queues[:3]
    ids = [client.enqueue("tests.jobfuncs.add", 1, 2, queue=q, max_attempts=1, failure_ttl=0, job_id=f"reaped-{q}").id
           for q in queues[:2]]
    ids.append(client.enqueue("tests.jobfuncs.add", 1, 2, queue=queues[2], max_attempts=1, failure_ttl=0).id)
    kept = client.enqueue("tests.jobfuncs.add", 1, 2, queue=queues[0], max_attempts=1, failure_ttl=60).id
    for lease in leases.claim_many(queues, WORKER, count=4):
        backend.conn.zadd(backend.key("leases", lease.queue), {lease.job_id: 0})  # its worker died long ago
    assert Reaper(backend.conn, backend.config).run_once().failed == 4
    for job_id in ids:
        _gone(backend, job_id)
    assert client.get(kept).state.value == "failed"
    if backend.cluster:
        assert _entry(backend, kept) == queues[0].encode()


def test_a_stop_with_a_failure_ttl_of_0_removes_the_entry_of_the_job_it_deleted(backend):
    client, leases, q = backend.client(), backend.leases(), backend.queues[4]
    client.enqueue("tests.jobfuncs.add", 1, 2, queue=q, failure_ttl=0, job_id="stopped")
    assert leases.claim([q], WORKER) is not None
    assert client.terminate("stopped", mode="stop") == WORKER
    _gone(backend, "stopped")
