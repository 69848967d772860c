"""The cluster layout (issue 15, docs/cluster.md "as built"): each script's keys in one slot, the layout derived
from the single one, and what the core refuses on a cluster. The job scenarios that run on both a single Redis
and the cluster are in test_core_both.py; the processes (worker, scheduler, API) still refuse a cluster
(test_refusal.py)."""
from __future__ import annotations

import pytest
import redis
from redis.cluster import key_slot

from jobsvc import Client, Config
from jobsvc.embedded_cluster import queues_per_shard
from jobsvc.engine import scripts
from jobsvc.engine.connection import per_node
from jobsvc.engine.functions.copies import FUNCTIONS_SLOT
from jobsvc.engine.keys import FAMILIES, MEMOIZED, NAME, OWN_SLOT, cluster_name, template
from jobsvc.engine.leases import Completion, Leases
from jobsvc.engine.script_keys import GIVEN
from jobsvc.scheduling.schedules.store import SCHEDULES_SLOT
from tests.conftest import ALLOWED_MODULES

pytestmark = pytest.mark.cluster

PREFIX = "jobsvc:"
# The schedule scripts a cluster runs are given the schedules' own slot as their scope (SCHEDULES_SLOT), so their
# counters of fires and wake-up list are there too; the others, a queue's.
# (schedule_record there is given the runs' jobs, read first in their queues' slots: ScheduleRuns.record_runs.)
SCHEDULE_SCRIPTS = {"schedule_advance", "schedule_delete", "schedule_record", "schedule_save"}
# The registry's scripts likewise, the registry's own slot (FUNCTIONS_SLOT): the disabled set they write there is the
# master set, copied to each queue's slot (functions_copy.lua, scoped to a queue) for claim.lua.
FUNCTION_SCRIPTS = {"function_delete", "function_save"}
SLOTS = {**dict.fromkeys(SCHEDULE_SCRIPTS, SCHEDULES_SLOT), **dict.fromkeys(FUNCTION_SCRIPTS, FUNCTIONS_SLOT)}
# Scripts whose keys still span two slots in the cluster layout: none left.
TWO_SLOTS: set[str] = set()


def scoped(name: str, scope: str) -> tuple[str, ...]:
    """A call's `keys` as its callers give them on a cluster: the slot, and the key a script checks when its caller
    names it (script_keys.GIVEN: sweep_index.lua's structure), in that slot."""
    given = (f"{PREFIX}{{{scope}}}:structure",) if scripts.FAMILIES_OF[name][0] == GIVEN else ()
    return (*scripts.scope_of(scope), *given)


def test_every_job_script_reads_keys_of_one_slot_in_the_cluster_layout():
    spanning = set()
    for name, used in scripts.FAMILIES_OF.items():
        if used:
            keys = scripts.keys_of(name, scoped(name, SLOTS.get(name, "mail")), (PREFIX,))
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
    """Six queues, two on each of the three shards."""
    return queues_per_shard(rc, 2)


def test_a_call_across_two_queues_is_refused_on_a_cluster(rc, config, queues):
    client, leases = Client(rc, config), Leases(rc, config)
    for q in queues[:2]:
        client.enqueue("tests.jobfuncs.add", 1, 2, queue=q)
    got = leases.claim_many(queues[:2], "host.1.w", count=2)
    with pytest.raises(ValueError, match="one queue"):
        leases.complete_many_call("host.1.w", [Completion(lease, None, 1.0, 2.0) for lease in got])
    with pytest.raises(ValueError, match="one queue"):
        leases.claim_call(queues[:2], "host.1.w")


def test_commands_go_to_their_shards_in_one_round_trip_each_and_come_back_in_order(rc, queues):
    keys = [f"{{{q}}}:k" for q in queues]
    for i, key in enumerate(keys):
        rc.set(key, i)
    replies, lasts = per_node(rc, [("GET", key) for key in reversed(keys)], ("DBSIZE",))
    assert replies == [str(i).encode() for i in reversed(range(len(keys)))]
    assert len(lasts) == 3 and sum(lasts.values()) == len(keys)  # one DBSIZE per shard, after its GETs


# Redis refuses a call whose KEYS span slots at once (CROSSSLOT), and a script that reaches a key of another slot
# when it does (one not derived from its KEYS): both messages, and the cluster's own for a key on another node.
ACROSS_SLOTS = ("CROSSSLOT", "non local key", "MOVED", "ASK")


def test_every_script_runs_on_a_cluster_without_reaching_another_slot(rc):
    """Each script called on the cluster as its callers scope it, with ARGV of placeholders: whatever it answers
    (placeholders make most of them refuse or find nothing), never an error of keys in another slot. With the
    scenarios run on both layouts (the *_both.py files), which take every script through its real paths."""
    queue = queues_per_shard(rc, 1)[0]
    refused: dict[str, str] = {}
    for name in scripts.SOURCES:
        if scripts.FAMILIES_OF[name]:
            keys: tuple[str, ...] = scoped(name, SLOTS.get(name, queue))
        else:  # given whole keys by its caller (a lock, a sorted set to page, the audit stream): of one slot
            keys = tuple(f"{PREFIX}{{{queue}}}:k{i}" for i in range(3))
        try:
            scripts.call(rc, name, keys, (PREFIX, *["1"] * 24))
        except redis.ResponseError as exc:
            refused[name] = str(exc)
    assert {n: e for n, e in refused.items() if any(word in e for word in ACROSS_SLOTS)} == {}
    assert len(refused) < len(scripts.SOURCES)  # most ran to an answer, placeholders and all
