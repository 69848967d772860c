"""The local Redis Cluster the suite starts (jobsvc/embedded_cluster.py): its shape, a RedisCluster client on every
shard, and the rule jobsvc's scripts must follow there: one script, one slot (issue 15)."""
from __future__ import annotations

import pytest
import redis
from redis.cluster import key_slot
from redis.exceptions import ClusterCrossSlotError

pytestmark = pytest.mark.cluster

# A script that writes the two keys it is given: legal on a cluster only when both hash to one slot.
SET_TWO = "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return redis.call('GET', KEYS[2])"


@pytest.fixture
def rc(redis_cluster):
    client = redis_cluster.client()
    yield client
    client.close()


def test_three_masters_each_with_a_replica_and_every_slot_served(redis_cluster):
    info = redis_cluster.masters[0].cluster_info()
    assert info["cluster_state"] == "ok"
    assert info["cluster_slots_assigned"] == "16384"
    assert info["cluster_known_nodes"] == "6"
    assert info["cluster_size"] == "3"  # masters that serve slots
    assert all(node.port != 6379 for node in redis_cluster.nodes)
    for replica in redis_cluster.replicas:
        assert replica.conn.info("replication")["role"] == "slave"


def test_a_cluster_client_writes_and_reads_keys_on_all_three_shards(rc):
    keys = [f"k{i}" for i in range(60)]
    for key in keys:
        rc.set(key, key.upper())
    assert [rc.get(key) for key in keys] == [key.upper().encode() for key in keys]
    owners = {rc.get_node_from_key(key).port for key in keys}
    assert len(owners) == 3


def test_the_flush_between_tests_empties_every_shard(redis_cluster, rc):
    rc.set("left-over", 1)
    redis_cluster.flush()
    assert rc.dbsize(target_nodes=redis.RedisCluster.PRIMARIES) == 0


def test_a_script_touching_keys_of_two_slots_is_refused_with_crossslot(rc):
    assert key_slot(b"job:a") != key_slot(b"job:b")
    # Sent to one node through a plain connection: the refusal is Redis's own, not redis-py's slot check.
    # redis-py turns the server's `-CROSSSLOT ...` reply into ClusterCrossSlotError, the code cut off.
    node = rc.get_node_from_key("job:a")
    with pytest.raises(ClusterCrossSlotError, match="same slot"):
        rc.get_redis_connection(node).eval(SET_TWO, 2, "job:a", "job:b", "x")


def test_a_script_touching_keys_of_one_hash_tag_runs(rc):
    assert key_slot(b"jobsvc:{q}:job:a") == key_slot(b"jobsvc:{q}:job:b")
    assert rc.eval(SET_TWO, 2, "jobsvc:{q}:job:a", "jobsvc:{q}:job:b", "x") == b"x"
    assert rc.get("jobsvc:{q}:job:a") == b"x"
