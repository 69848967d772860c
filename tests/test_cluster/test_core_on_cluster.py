"""The cluster layout (issue 15, docs/cluster.md "as built"): each script's keys in one slot, the layout derived
from the single one, and what the core refuses on a cluster. The job scenarios that run on both a single Redis
and the cluster are in test_core_both.py; the processes (worker, scheduler, API) still refuse a cluster
(test_refusal.py)."""
from __future__ import annotations

import pytest
from redis.cluster import key_slot

from jobsvc import Client, Config
from jobsvc.engine import scripts
from jobsvc.engine.keys import FAMILIES, MEMOIZED, NAME, OWN_SLOT, cluster_name, template
from jobsvc.engine.leases import Completion, Leases
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


def test_a_call_across_two_queues_is_refused_on_a_cluster(rc, config, queues):
    client, leases = Client(rc, config), Leases(rc, config)
    for q in queues[:2]:
        client.enqueue("tests.jobfuncs.add", 1, 2, queue=q)
    got = leases.claim_many(queues[:2], "host.1.w", count=2)
    with pytest.raises(ValueError, match="one queue"):
        leases.complete_many_call("host.1.w", [Completion(lease, None, 1.0, 2.0) for lease in got])
    with pytest.raises(ValueError, match="one queue"):
        leases.claim_call(queues[:2], "host.1.w")
