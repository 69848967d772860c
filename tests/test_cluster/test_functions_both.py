"""The functions registry on a single Redis and on the suite's Redis Cluster (issue 15, docs/cluster.md 2.4), through
test_core_both's parametrized fixture (six queues, two per shard on the cluster): save, update, delete, disable and
enable a function; a registry job enqueued and claimed, held while its function is disabled in a queue that existed
before the disable and in one first seen after it, run again once enabled; the copies of the disabled set (one per
queue's slot on a cluster) written again while the master set changes under them, and repaired after a writer died
half-way; the API's /functions and /namespaces endpoints and a job by reference."""
from __future__ import annotations

from typing import Any

import pytest

from jobsvc import State
from jobsvc.engine import scripts
from jobsvc.engine.functions import Registry, copies
from jobsvc.engine.keys import cluster_name
from jobsvc.errors import NotFound, WrongState
from tests.test_admin_api.support import NOOP
from tests.test_cluster import test_api_both, test_core_both
from tests.test_cluster.test_api_both import ok
from tests.test_cluster.test_core_both import PREFIX, WORKER, Backend

backend = test_core_both.backend  # the parametrized fixture: a single Redis, the suite's cluster

ADD = "tests.jobfuncs.add"
CONFIRM = {"X-Confirm": "true"}


def disabled_in(backend: Backend, queue: str) -> set[str]:
    """The disabled refs claim.lua reads for `queue`: that queue's copy on a cluster, the one set on a single Redis."""
    return {m.decode() for m in backend.conn.smembers(backend.key("functions_disabled", queue))}


def test_a_function_is_saved_changed_disabled_enabled_and_deleted(backend):
    reg, client, queues = Registry(backend.client()), backend.client(), backend.queues
    for q in queues[:3]:  # three queues the cluster's registry knows (one per shard): each holds a copy
        client.enqueue(NOOP, queue=q)
    master = copies.master_key(PREFIX) if backend.cluster else "jobsvc:functions:disabled"  # single: names unchanged
    assert reg.disabled_key == master
    fn = reg.register("media", "resize", ADD, queue=queues[0], max_attempts=3)
    assert (fn.version, reg.get("media", "resize").max_attempts) == (1, 3)
    assert reg.patch("media", "resize", max_attempts=4).version == 2
    assert reg.register("media", "resize", ADD, queue=queues[0], max_attempts=4).version == 2  # unchanged
    reg.register("media", "crop", NOOP)
    assert [f.ref for f in reg.all()] == ["media/crop", "media/resize"]

    assert reg.disable("media", "resize").enabled is False
    assert backend.conn.smembers(master) == {b"media/resize"}
    assert all(disabled_in(backend, q) == {"media/resize"} for q in queues[:3])
    assert reg.namespaces() == [{"namespace": "media", "functions": 2, "disabled": 1}]
    with pytest.raises(WrongState, match="disabled"):
        reg.enqueue("media/resize", 1, 2)

    assert reg.enable("media", "resize").version == 4
    assert all(disabled_in(backend, q) == set() for q in queues[:3])
    reg.disable("media", "crop")
    reg.delete("media", "crop")  # a disabled function deleted: its jobs are no longer held
    assert all(disabled_in(backend, q) == set() for q in queues[:3]) and not backend.conn.smembers(master)
    with pytest.raises(NotFound):
        reg.get("media", "crop")
    assert [f.ref for f in reg.all()] == ["media/resize"]
    report = reg.sync("media", [{"name": "resize", "path": ADD, "enabled": False}], delete_missing=True)
    assert (report.updated, disabled_in(backend, queues[2])) == (["resize"], {"media/resize"})


def test_a_disabled_functions_jobs_are_held_in_queues_registered_before_and_after_the_disable(backend):
    reg, client, leases = Registry(backend.client()), backend.client(), backend.leases()
    before, after = backend.queues[0], backend.queues[2]  # on two shards of the cluster
    reg.register("media", "resize", ADD, queue=before)
    held = [reg.enqueue("media/resize", i, 1).id for i in range(2)]  # `before` joins the queue registry here
    late = reg.job("media/resize", 5, 1, queue=after)  # made while enabled, enqueued after the disable
    reg.disable("media", "resize")
    held.append(reg.enqueue_many([late])[0].id)  # `after` is new to the registry: it gets its copy first
    other = client.enqueue(NOOP, queue=after).id  # not from the registry: runs

    assert leases.claim([before], WORKER) is None  # only held jobs there
    assert leases.claim([after], WORKER).job_id == other
    assert leases.claim([after], WORKER) is None
    assert all(client.state(j) == State.QUEUED for j in held)

    for q in (before, after):
        backend.conn.delete(backend.key("wake", q, q))
    reg.enable("media", "resize")
    # Workers are woken: on a single Redis those of the function's queue, on a cluster those of every queue whose
    # copy lost the ref.
    assert backend.conn.llen(backend.key("wake", before, before)) >= 1
    assert backend.conn.llen(backend.key("wake", after, after)) >= int(backend.cluster)
    claimed = leases.claim_many([before, after], WORKER, count=10)
    assert [lease.job_id for lease in claimed] == held
    assert client.get(held[2]).raw["js_fn"] == "media/resize"


def test_the_copies_end_as_the_master_set_when_it_changes_under_a_writer(backend, monkeypatch):
    """A writer that read the master set before another's change, and wrote its copies after that change's own copies,
    reads the master set again and writes once more; copies a writer killed half-way left stale are repaired by
    `Registry.copy_disabled` (and by the next registry write)."""
    if not backend.cluster:
        pytest.skip("a single Redis has one set of disabled functions: nothing to copy")
    reg, client, queue = Registry(backend.client()), backend.client(), backend.queues[1]
    client.enqueue(NOOP, queue=queue)
    reg.register("ns", "a", NOOP)
    reg.register("ns", "b", NOOP)
    real = scripts.call_many
    raced: list[Any] = []

    def call_many(conn: Any, calls: Any, *args: Any, **kwargs: Any) -> Any:
        calls = list(calls)
        if raced or not calls or calls[0][0] != "functions_copy":
            return real(conn, calls, *args, **kwargs)
        # Between this writer's read of the master set and its copies, another admin disables ns/b, copies and all:
        # this writer's stale copies land last.
        raced.append([call[2][3:] for call in calls])
        reg.disable("ns", "b")
        return real(conn, calls, *args, **kwargs)

    monkeypatch.setattr(scripts, "call_many", call_many)
    reg.disable("ns", "a")
    assert raced == [[("ns/a",)]]  # what the first round wrote, stale: written again
    assert disabled_in(backend, queue) == {"ns/a", "ns/b"}

    backend.conn.delete(backend.key("functions_disabled", queue))  # as a writer killed before the copies leaves it
    reg.copy_disabled()
    assert disabled_in(backend, queue) == {"ns/a", "ns/b"}
    assert backend.conn.sismember(cluster_name(PREFIX, "cluster_queues"), queue)


def test_a_queue_whose_first_enqueue_failed_after_its_registration_never_gets_its_copy(backend, monkeypatch):
    """The enqueue SADDs a new queue to the cluster's queue registry, then writes its copy (copies.sync). If that
    write fails (a failover, a killed client) the caller's retry finds the queue registered (SADD 0): the client
    still writes the copy, on its first use of the queue in this process, before the jobs."""
    if not backend.cluster:
        pytest.skip("copies exist on a cluster only")
    import redis

    reg, leases = Registry(backend.client()), backend.leases()
    q = backend.queues[3]
    reg.register("media", "resize", ADD, queue=q)
    job = reg.job("media/resize", 1, 2, queue=q)  # made while enabled (as `late` above)
    reg.disable("media", "resize")  # q is not in the queue registry yet: no copy written there
    real = copies.sync
    calls: list[int] = []

    def once_down(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise redis.ConnectionError("master away (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(copies, "sync", once_down)
    with pytest.raises(redis.ConnectionError):
        reg.enqueue_many([job])
    assert backend.conn.sismember(cluster_name(PREFIX, "cluster_queues"), q)  # registered, without its copy
    held = reg.enqueue_many([job])[0].id  # the caller retries: SADD answers 0
    assert leases.claim([q], WORKER) is None, f"the disabled function's job {held} was claimed"
    assert disabled_in(backend, q) == {"media/resize"}
    reg.enqueue_many([job])  # the queue's copy is written once per process, not per enqueue
    assert len(calls) == 2


def test_the_integrity_pass_rewrites_a_copy_a_failover_lost(backend):
    """A copy's write acknowledged and then lost with its master (or left stale by a registry writer killed half-way)
    is written again at the end of the scheduler's integrity walk, without a registry write."""
    if not backend.cluster:
        pytest.skip("copies exist on a cluster only")
    from jobsvc.maintenance.integrity import IntegrityPass

    reg, client, leases, q = Registry(backend.client()), backend.client(), backend.leases(), backend.queues[5]
    reg.register("media", "resize", ADD, queue=q)
    reg.enqueue("media/resize", 1, 2)  # q joins the queue registry, with its copy
    late = reg.job("media/resize", 3, 4)  # made while enabled
    reg.disable("media", "resize")
    backend.conn.delete(backend.key("functions_disabled", q))  # the copy lost in a failover
    assert leases.claim([q], WORKER) is not None  # the disabled function's job runs: what the pass repairs
    held = reg.enqueue_many([late])[0].id  # this connection wrote q's copy already
    assert disabled_in(backend, q) == set()
    IntegrityPass(backend.conn, backend.config).run_walk()
    assert disabled_in(backend, q) == {"media/resize"}
    assert leases.claim([q], WORKER) is None and client.state(held) == State.QUEUED


api = test_api_both.api  # the admin API over the backend's connection


def test_the_api_registers_lists_changes_syncs_and_deletes_functions(api, backend):
    queue = backend.queues[3]
    fn = {"namespace": "ns", "name": "fn", "path": ADD, "queue": queue}
    assert ok(api.post("/functions", fn), 201)["version"] == 1
    assert api.post("/functions", fn).status_code == 409
    assert ok(api.get("/functions/ns/fn"))["queue"] == queue
    job = ok(api.post("/jobs", {"function": "ns/fn", "args": [1, 2]}), 201)
    assert (job["queue"], job["function"]) == (queue, ADD)
    assert ok(api.patch("/functions/ns/fn", {"enabled": False}))["enabled"] is False
    assert ok(api.get("/namespaces"))["namespaces"] == [{"namespace": "ns", "functions": 1, "disabled": 1}]
    refused = api.post("/jobs", {"function": "ns/fn"})
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (409, "disabled")
    assert backend.leases().claim([queue], WORKER) is None  # its queued job is held
    assert ok(api.patch("/functions/ns/fn", {"enabled": True}))["version"] == 3
    assert backend.leases().claim([queue], WORKER).job_id == job["id"]

    sync = {"namespace": "ns", "functions": [{"name": "other", "path": NOOP}], "delete_missing": True,
            "dry_run": False}
    report = ok(api.post("/functions/sync", sync, headers=CONFIRM))
    assert (report["created"], report["deleted"]) == (["other"], ["fn"])
    assert [f["ref"] for f in ok(api.get("/functions"))["functions"]] == ["ns/other"]
    assert api.delete("/functions/ns/other").status_code == 204
    assert ok(api.get("/functions"))["functions"] == [] and ok(api.get("/namespaces"))["namespaces"] == []
    assert api.post("/jobs", {"function": "ns/other"}).status_code == 422  # not registered
