"""`depends_on` on a single Redis and on the suite's Redis Cluster (issue 15, docs/cluster.md 2.5), through
test_core_both's parametrized `backend` (six queues, two per shard on the cluster): a chain within one queue released
in order (the finishing script releases it, on both); a dependent in another queue released once its dependency ends
(on the cluster by the release outbox's drain, `ReleaseDrain.run_once` or the scheduler's pass); the dependents of a
failed dependency, with and without allow_failure, and after that dependency is retried; a job waiting on one job of
its own queue and one of another. On the cluster alone: a dependency that ends between the two steps of its
dependent's enqueue, a client dead between them, a drain dead between telling and acknowledging."""
from __future__ import annotations

from typing import Any

import pytest

from jobsvc import Client
from jobsvc.engine import depends, scripts
from jobsvc.engine.depends import ReleaseDrain
from tests.test_cluster import test_core_both
from tests.test_cluster.test_core_both import PREFIX, WORKER, Backend
from workers.scheduler import Scheduler

backend = test_core_both.backend  # the parametrized fixture: a single Redis, the suite's cluster

ADD = "tests.jobfuncs.add"


def state(backend: Backend, queue: str, job_id: str) -> str:
    return (backend.conn.hget(backend.key("job", queue, job_id), "js_state") or b"").decode()


def run(backend: Backend, queue: str, job_id: str, outcome: str = "completed") -> None:
    """Claim `job_id`, the one ready job of `queue`, and end it `outcome` ('completed', or 'failed' for good)."""
    leases = backend.leases()
    lease = leases.claim([queue], WORKER)
    assert lease is not None and lease.job_id == job_id
    if outcome == "failed":
        assert leases.fail(lease, RuntimeError("boom"), worker=WORKER) == "failed"
    else:
        leases.complete(lease, None, WORKER, 1.0, 2.0)


def drain(backend: Backend) -> int:
    return ReleaseDrain(backend.conn, backend.config).run_once()


def enqueue(backend: Backend, queue: str, **options: Any) -> str:
    return backend.client().enqueue(ADD, 1, 2, queue=queue, max_attempts=1, **options).id


def left_behind(backend: Backend, queue: str, job_id: str) -> list[str]:
    """The cross-queue records that remain for dependency `job_id` of `queue` (none once all is carried)."""
    if not backend.cluster:
        return []
    return [k for k in (backend.key("release", queue, queue), backend.key("remote_dependents", queue, job_id))
            if backend.conn.exists(k) and (k.endswith(job_id) or backend.conn.hexists(k, job_id))]


@pytest.mark.parametrize("one_call", [False, True])
def test_a_chain_in_one_queue_is_released_in_order(backend, one_call):
    q = backend.queues[0]
    if one_call:  # ids given: enqueue.lua defers each on the one before, in the call's order
        a, b, c = (e.id for e in backend.client().enqueue_many([
            Client.job(ADD, 1, 2, queue=q, job_id="a"), Client.job(ADD, 1, 2, queue=q, job_id="b", depends_on="a"),
            Client.job(ADD, 1, 2, queue=q, job_id="c", depends_on="b")]))
    else:
        a = enqueue(backend, q)
        b = enqueue(backend, q, depends_on=a)
        c = enqueue(backend, q, depends_on=b)
    assert [state(backend, q, j) for j in (a, b, c)] == ["queued", "deferred", "deferred"]
    run(backend, q, a)
    assert [state(backend, q, j) for j in (b, c)] == ["queued", "deferred"]
    run(backend, q, b)
    assert state(backend, q, c) == "queued"
    run(backend, q, c)
    if backend.cluster:  # the single-slot path: nothing went through the outbox
        assert not backend.conn.exists(backend.key("release", q, q))


def test_a_dependent_in_another_queue_is_released_once_its_dependency_completes(backend):
    qp, qd = backend.queues[0], backend.queues[3]  # two shards on the cluster
    p = enqueue(backend, qp)
    d = enqueue(backend, qd, depends_on=p)
    assert state(backend, qd, d) == "deferred"
    assert drain(backend) == 0 and state(backend, qd, d) == "deferred"  # not before it ends
    run(backend, qp, p)
    if backend.cluster:  # its outcome is in its queue's outbox until the drain carries it
        assert state(backend, qd, d) == "deferred"
        assert backend.conn.hget(backend.key("release", qp, qp), p) == b"finished"
        assert drain(backend) == 1
    assert state(backend, qd, d) == "queued"
    assert drain(backend) == 0 and left_behind(backend, qp, p) == []
    run(backend, qd, d)
    # A dependency done already: its dependent is queued at once.
    assert state(backend, qd, enqueue(backend, qd, depends_on=p)) == "queued"


def test_a_dependency_enqueued_in_the_same_call_in_another_queue_is_waited_for(backend):
    """On the cluster the call is cut after the dependency (depends.waves): it exists when its dependent registers."""
    qp, qd = backend.queues[0], backend.queues[3]
    got = backend.client().enqueue_many([
        Client.job(ADD, 1, 2, queue=qp, job_id="p1"), Client.job(ADD, 1, 2, queue=qd, job_id="d1", depends_on="p1"),
        Client.job(ADD, 1, 2, queue=qp, job_id="p2")])
    assert [e.id for e in got] == ["p1", "d1", "p2"] and all(e.created for e in got)
    assert state(backend, qd, "d1") == "deferred"
    run(backend, qp, "p1")
    drain(backend)
    assert state(backend, qd, "d1") == "queued"


def test_an_outbox_longer_than_a_pass_is_carried_over_several(backend):
    qp, qd = backend.queues[2], backend.queues[5]
    ps = [enqueue(backend, qp) for _ in range(5)]
    ds = [enqueue(backend, qd, depends_on=p) for p in ps]
    for p in ps:
        run(backend, qp, p)
    small = ReleaseDrain(backend.conn, backend.config, batch=2)
    for _ in range(10):
        if small.run_once() == 0:
            break
    assert [state(backend, qd, d) for d in ds] == ["queued"] * 5
    assert all(left_behind(backend, qp, p) == [] for p in ps)


def test_the_scheduler_pass_carries_the_outbox(backend):
    qp, qd = backend.queues[4], backend.queues[1]
    p = enqueue(backend, qp)
    d = enqueue(backend, qd, depends_on=[p])
    run(backend, qp, p)
    Scheduler(backend.conn, backend.config).run_once()
    assert state(backend, qd, d) == "queued"
    assert left_behind(backend, qp, p) == []


@pytest.mark.parametrize("elsewhere", [False, True])
def test_a_failed_dependency_releases_only_the_dependents_that_allow_failure(backend, elsewhere):
    """As RQ: a dependency failed for good lets go the dependents with allow_failure; the others wait, and go when it
    is retried and completes."""
    qp = backend.queues[0]
    qd = backend.queues[5] if elsewhere else qp
    p = enqueue(backend, qp)
    allowing = enqueue(backend, qd, depends_on=p, allow_failure=True)
    strict = enqueue(backend, qd, depends_on=p)
    run(backend, qp, p, "failed")
    drain(backend)
    assert (state(backend, qd, allowing), state(backend, qd, strict)) == ("queued", "deferred")
    drain(backend)  # told again: nothing changes
    assert state(backend, qd, strict) == "deferred"
    run(backend, qd, allowing)
    backend.client().requeue(p)
    run(backend, qp, p)
    drain(backend)
    assert state(backend, qd, strict) == "queued"
    assert left_behind(backend, qp, p) == []


def test_a_job_waits_for_a_dependency_in_its_queue_and_one_in_another(backend):
    qd, qp = backend.queues[2], backend.queues[4]
    local = enqueue(backend, qd, priority=1)
    remote = enqueue(backend, qp)
    d = enqueue(backend, qd, depends_on=[local, remote])
    run(backend, qd, local)
    drain(backend)
    assert state(backend, qd, d) == "deferred"  # the other one is not done
    run(backend, qp, remote)
    drain(backend)
    assert state(backend, qd, d) == "queued"
    assert left_behind(backend, qd, local) == [] and left_behind(backend, qp, remote) == []


def test_single_redis_calls_keep_their_keys():
    """The outbox's family reaches the finishing scripts only on a cluster, last in KEYS: a single Redis's calls are
    what they were."""
    for name in ("complete", "fail", "reap_expired"):
        single = scripts.keys_of(name, (), [PREFIX])
        assert not any("release" in k for k in single) and single[-1] == "jobsvc:wake:"
        clustered = scripts.keys_of(name, ("q",), [PREFIX])
        assert len(clustered) == len(single) + 1 and clustered[-1] == "jobsvc:{q}:release:"


@pytest.fixture
def cluster_only(backend):
    if not backend.cluster:
        pytest.skip("the steps across slots: a cluster's")
    return backend


def test_a_dependency_that_ends_between_the_two_steps_still_releases_its_dependent(cluster_only, monkeypatch):
    backend = cluster_only
    qp, qd = backend.queues[0], backend.queues[2]
    p = enqueue(backend, qp)
    registered = depends.register

    def then_p_ends(*args: Any, **kwargs: Any) -> depends.Waiting:
        waiting = registered(*args, **kwargs)
        run(backend, qp, p)  # after the registration, before the dependent is written
        assert drain(backend) == 0  # the telling finds no job yet: it stays in the outbox
        return waiting

    monkeypatch.setattr(depends, "register", then_p_ends)
    d = enqueue(backend, qd, depends_on=p)
    monkeypatch.undo()
    assert state(backend, qd, d) == "deferred"  # written as waiting: its registration said p was running
    assert backend.conn.hget(backend.key("release", qp, qp), p) == b"finished"
    assert drain(backend) == 1
    assert state(backend, qd, d) == "queued"
    assert left_behind(backend, qp, p) == []


def test_a_client_dead_between_the_steps_leaves_a_record_the_drain_drops_after_its_grace(cluster_only, monkeypatch):
    backend = cluster_only
    qp, qd = backend.queues[1], backend.queues[5]
    p = enqueue(backend, qp)
    registered = depends.register

    def then_dies(*args: Any, **kwargs: Any) -> depends.Waiting:
        registered(*args, **kwargs)
        raise ConnectionError("the client died")

    monkeypatch.setattr(depends, "register", then_dies)
    with pytest.raises(ConnectionError):
        enqueue(backend, qd, depends_on=p)
    monkeypatch.undo()
    run(backend, qp, p)
    assert drain(backend) == 0 and left_behind(backend, qp, p) != []  # within its grace: kept
    monkeypatch.setattr(depends, "GRACE_MS", -1)
    assert drain(backend) == 1 and left_behind(backend, qp, p) == []


def test_a_drain_dead_between_telling_and_acknowledging_releases_once(cluster_only):
    backend = cluster_only
    qp, qd = backend.queues[3], backend.queues[0]
    p = enqueue(backend, qp)
    d = enqueue(backend, qd, depends_on=p)
    run(backend, qp, p)
    dead = ReleaseDrain(backend.conn, backend.config)
    ended = dead._ended([qp])
    told = [{d: qd}]
    assert dead._tell(ended, told) == {(d, p): depends.SETTLED}  # released; the acknowledgement never sent
    assert state(backend, qd, d) == "queued"
    assert drain(backend) == 1  # told again: settled, nothing moved
    got = backend.leases().claim_many([qd], WORKER, count=10)
    assert [g.job_id for g in got] == [d]  # queued once
    assert left_behind(backend, qp, p) == []
