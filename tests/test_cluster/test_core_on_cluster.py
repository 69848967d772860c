"""The core's job path on the suite's Redis Cluster (issue 15, docs/cluster.md "as built"): with a RedisCluster
client, `Client` and `Leases` scope every script call to one queue's slot, so jobs of queues spread over three
shards are enqueued, claimed in the worker's queue order, completed, failed, retried after their backoff and
promoted, each transition one script on the queue's shard. The processes (worker, scheduler, API) still refuse a
cluster (test_refusal.py)."""
from __future__ import annotations

import pytest
from redis.cluster import key_slot

from jobsvc import Client, Config, JobSpec
from jobsvc.engine import scripts
from jobsvc.engine.keys import FAMILIES, MEMOIZED, NAME, OWN_SLOT, cluster_name, template
from jobsvc.engine.leases import Completion, Leases
from jobsvc.maintenance.reaper import Reaper
from jobsvc.scheduling.promotion import Promoter
from tests.conftest import ALLOWED_MODULES

pytestmark = pytest.mark.cluster

PREFIX = "jobsvc:"
# Scripts whose keys still span two slots in the cluster layout: the registry's and the schedules' (their own
# slot) touch a queue's keys too (a function's disabled flag that claim reads, a queue's wake-up list, a
# schedule's run counters that complete.lua bumps). docs/cluster.md 2.2 says where those keys go; this list
# shrinks to nothing as they move.
TWO_SLOTS = {"function_delete", "function_save", "schedule_advance", "schedule_delete", "schedule_record",
             "schedule_save"}


def test_every_job_script_reads_keys_of_one_slot_in_the_cluster_layout():
    spanning = set()
    for name, used in scripts.FAMILIES_OF.items():
        if used:
            keys = scripts.keys_of(name, scripts.scope_of("mail"), (PREFIX,))
            assert len(keys) == len(used)
            if len({key_slot(k.encode()) for k in keys}) > 1:
                spanning.add(name)
    assert spanning == TWO_SLOTS
    for name in ("enqueue", "claim", "complete", "fail", "promote", "reap_expired", "heartbeat", "cancel", "delete"):
        assert {key_slot(k.encode()) for k in scripts.keys_of(name, ("mail",), (PREFIX,))} == {key_slot(b"{mail}")}


def test_the_cluster_layout_is_the_single_one_under_a_hash_tag():
    for family in FAMILIES:
        single, cluster = template(family, PREFIX), template(family, PREFIX, "mail")
        tag = f"#{OWN_SLOT[family]}" if family in OWN_SLOT else "mail"
        assert cluster == f"{PREFIX}{{{tag}}}:{single.removeprefix(PREFIX)}"
    assert cluster_name(PREFIX, "cluster_queues") == "jobsvc:{#global}:cluster:queues"
    assert all(FAMILIES[f].count(NAME) == 1 for f in MEMOIZED)  # name_of memoizes one name
    with pytest.raises(ValueError, match="must not contain"):
        template("job", "{app}:", "mail")


@pytest.fixture
def rc(redis_cluster):
    client = redis_cluster.client()
    yield client
    client.close()


@pytest.fixture
def config(redis_cluster):
    return Config(redis_url=redis_cluster.url, allowed_modules=ALLOWED_MODULES)


@pytest.fixture
def queues(rc):
    """Six queues, two on each of the three shards (by their tag's slot)."""
    by_node: dict[int, list[str]] = {}
    i = 0
    while sum(len(v[:2]) for v in by_node.values()) < 6:
        name = f"q{i}"
        by_node.setdefault(rc.get_node_from_key(f"{{{name}}}").port, []).append(name)
        i += 1
    assert len(by_node) == 3
    return [q for names in by_node.values() for q in names[:2]]


def job_key(queue: str, job_id: str) -> str:
    return template("job", PREFIX, queue) % job_id


def test_jobs_of_queues_on_three_shards_are_enqueued_claimed_in_order_and_completed(rc, config, queues):
    client, leases = Client(rc, config), Leases(rc, config)
    single = {q: client.enqueue("tests.jobfuncs.add", 1, 2, queue=q).id for q in queues}
    many = client.enqueue_many([JobSpec("tests.jobfuncs.add", (i, 1), queue=q) for i, q in enumerate(queues * 2)])
    assert rc.smembers(cluster_name(PREFIX, "cluster_queues")) == {q.encode() for q in queues}
    for q, job_id in single.items():
        assert rc.hget(job_key(q, job_id), "status") == b"queued"
        assert rc.get_node_from_key(job_key(q, job_id)).port == rc.get_node_from_key(f"{{{q}}}").port
    # A worker on all six queues gets them in its order: the first queue's three jobs first, and so on.
    got = leases.claim_many(queues, "host.1.w", count=100)
    assert [lease.queue for lease in got] == [q for q in queues for _ in range(3)]
    assert {lease.job_id for lease in got} == set(single.values()) | {e.id for e in many}
    assert all(lease.attempt == 1 and lease.fields["status"] == "started" for lease in got)
    for q in queues:
        done = [Completion(lease, lease.job_id, 1.0, 2.0) for lease in got if lease.queue == q]
        assert scripts.call(rc, *leases.complete_many_call("host.1.w", done)) == [[0]] * 3
    for lease in got:
        assert rc.hget(job_key(lease.queue, lease.job_id), "status") == b"finished"
        assert rc.zscore(template("finished", PREFIX, lease.queue) % lease.queue, lease.job_id) is not None
    assert leases.claim_many(queues, "host.1.w", count=10) == []
    # Each shard did its queues' work: no key of a job left its queue's slot.
    for q in queues:
        assert rc.get_node_from_key(template("leases", PREFIX, q)).port == rc.get_node_from_key(f"{{{q}}}").port


def test_a_failed_job_waits_its_backoff_then_is_promoted_and_claimed_again_on_its_shard(rc, config, queues):
    client, leases = Client(rc, config), Leases(rc, config)
    q = queues[-1]
    job_id = client.enqueue("tests.jobfuncs.add", 1, 2, queue=q, max_attempts=2).id
    lease = leases.claim([q], "host.1.w")
    assert lease is not None and lease.job_id == job_id
    assert leases.fail(lease, RuntimeError("boom"), worker="host.1.w") == "scheduled"
    assert rc.hget(job_key(q, job_id), "status") == b"scheduled"
    assert leases.claim([q], "host.1.w") is None  # not before its backoff
    timeline = template("scheduled", PREFIX, q)
    assert rc.zscore(timeline, job_id) is not None
    rc.zadd(timeline, {job_id: 0})  # its backoff is over
    result = Promoter(rc, config).run_once()
    assert result.promoted == 1
    again = leases.claim([q], "host.1.w")
    assert again is not None and again.job_id == job_id and again.attempt == 2
    assert leases.fail(again, RuntimeError("boom again"), worker="host.1.w") == "failed"
    assert rc.zscore(template("failed", PREFIX, q) % q, job_id) is not None


def test_a_call_across_two_queues_is_refused_on_a_cluster(rc, config, queues):
    client, leases = Client(rc, config), Leases(rc, config)
    for q in queues[:2]:
        client.enqueue("tests.jobfuncs.add", 1, 2, queue=q)
    got = leases.claim_many(queues[:2], "host.1.w", count=2)
    with pytest.raises(ValueError, match="one queue"):
        leases.complete_many_call("host.1.w", [Completion(lease, None, 1.0, 2.0) for lease in got])
    with pytest.raises(ValueError, match="one queue"):
        leases.claim_call(queues[:2], "host.1.w")


def test_leases_on_several_shards_are_renewed_and_an_expired_one_is_reaped_on_its_shard(rc, config, queues):
    """A worker's heartbeat renews its leases queue by queue; the reaper walks the cluster's queues and takes back
    a job whose lease expired (its worker was killed), which then runs again with its attempt counted."""
    client, leases = Client(rc, config), Leases(rc, config)
    for q in queues[:3]:
        client.enqueue("tests.jobfuncs.add", 1, 2, queue=q, max_attempts=3)
    held = leases.claim_many(queues[:3], "host.1.w", count=3)
    assert {lease.queue for lease in held} == set(queues[:3])
    assert leases.renew(held, holder="host.1.w") == []
    assert all(lease.expires_ms > 0 for lease in held)
    dead = held[1]
    rc.zadd(template("leases", PREFIX, dead.queue), {dead.job_id: 0})  # its worker died long ago
    result = Reaper(rc, config).run_once()
    assert (result.requeued, result.failed, result.quarantined) == (1, 0, 0)
    assert leases.renew(held, holder="host.1.w") == [dead.job_id]  # the others' leases still hold
    again = leases.claim([dead.queue], "host.2.w")
    assert again is not None and again.job_id == dead.job_id and again.attempt == 2
