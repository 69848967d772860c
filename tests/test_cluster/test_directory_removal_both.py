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


def test_the_reaper_and_a_stop_answer_as_they_always_did_on_a_single_redis(backend, monkeypatch):
    """reap_expired.lua and terminate.lua list the jobs they deleted at once only when told to (a cluster's callers
    remove their entries): a single Redis's replies stay byte for byte what they were (review 2 of issue 15)."""
    from jobsvc.engine import scripts

    replies: dict[str, list] = {}
    real = scripts.call

    def recorded(conn, name, *args, **kwargs):
        reply = real(conn, name, *args, **kwargs)
        replies.setdefault(name, []).append(reply)
        return reply

    monkeypatch.setattr(scripts, "call", recorded)
    client, leases, q = backend.client(), backend.leases(), backend.queues[5]
    client.enqueue("tests.jobfuncs.add", 1, 2, queue=q, max_attempts=1, failure_ttl=0, job_id="shape-reaped")
    lease = leases.claim([q], WORKER)
    backend.conn.zadd(backend.key("leases", q), {lease.job_id: 0})
    Reaper(backend.conn, backend.config).run_once()
    client.enqueue("tests.jobfuncs.add", 1, 2, queue=q, failure_ttl=0, job_id="shape-stopped")
    leases.claim([q], WORKER)
    client.terminate("shape-stopped", mode="stop")
    (reaped,) = [r for r in replies["reap_expired"] if r[1]]  # the one queue where a job failed
    (stopped,) = replies["terminate"]
    if backend.cluster:
        inc = str(lease.fields.get(directory.INCARNATION, "")).encode()
        assert reaped[5] == [b"shape-reaped", inc] and len(stopped) == 3
    else:
        assert len(reaped) == 5 and reaped[:4] == [0, 1, 0, -1] and stopped == [0, WORKER.encode()]
    for job_id in ("shape-reaped", "shape-stopped"):
        _gone(backend, job_id)

