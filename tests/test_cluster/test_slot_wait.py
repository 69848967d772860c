"""SlotWait (jobsvc/engine/cluster.py): a blocking wait on lists in different slots of a Redis Cluster, which one
BLPOP cannot do (CROSSSLOT). Idle workers and the scheduler wait on it there."""
from __future__ import annotations

import threading

import pytest
import redis

from jobsvc.embedded_cluster import LocalCluster, queues_per_shard, wait_until
from jobsvc.engine.cluster import SlotWait

pytestmark = pytest.mark.cluster


@pytest.fixture
def lists(redis_cluster):
    rc = redis_cluster.client()
    names = [f"jobsvc:{{{q}}}:wake:{q}" for q in queues_per_shard(rc, 1)]  # three lists, one per shard
    try:
        yield rc, names, redis_cluster
    finally:
        rc.close()


def test_an_item_in_any_list_ends_the_wait_and_only_that_item_is_taken(lists):
    rc, names, _ = lists
    rc.rpush(names[2], "t")
    wait = SlotWait(rc, names)
    try:
        assert wait.wait(5) == names[2]
        assert [rc.llen(n) for n in names] == [0, 0, 0]
        # The other two BLPOPs were ended: an item pushed now stays for the next wait, nothing popped it unseen.
        rc.rpush(names[0], "u")
        assert rc.llen(names[0]) == 1
        assert wait.wait(5) == names[0]
    finally:
        wait.close()


def test_a_wait_blocked_on_every_list_wakes_on_a_push_from_elsewhere(lists):
    rc, names, cluster = lists
    wait = SlotWait(rc, names)
    pusher_ready = threading.Event()
    woke: list[str | None] = []

    def waiter():
        pusher_ready.set()
        woke.append(wait.wait(30))

    t = threading.Thread(target=waiter)
    t.start()
    pusher_ready.wait()
    other = cluster.client()
    # Whether the BLPOPs are registered yet or not, the item ends the wait (a BLPOP finds it there, or is woken).
    other.rpush(names[1], "t")
    t.join(30)
    other.close()
    wait.close()
    assert woke == [names[1]]
    assert rc.llen(names[1]) == 0


def test_items_in_two_lists_at_once_wake_once_and_the_second_stays(lists):
    rc, names, _ = lists
    rc.rpush(names[0], "a")
    rc.rpush(names[1], "b")
    wait = SlotWait(rc, names)
    try:
        first = wait.wait(5)
        assert first in names[:2]
        other = names[1] if first == names[0] else names[0]
        assert rc.llen(other) == 1  # given back if its BLPOP had taken it
        assert wait.wait(5) == other
    finally:
        wait.close()


def test_nothing_comes_and_the_wait_times_out(lists):
    rc, names, _ = lists
    wait = SlotWait(rc, names)
    try:
        assert wait.wait(0.2) is None
        assert wait.wait(0.2) is None  # the connections are reused
    finally:
        wait.close()


@pytest.mark.slow
def test_a_failover_of_a_lists_master_breaks_the_wait_as_a_connection_error_and_the_next_wait_works(tmp_path):
    """CLUSTER FAILOVER demotes the master a BLPOP blocks on; Redis ends it with an UNBLOCKED error. The wait raises
    a redis.ConnectionError (what the worker and the scheduler retry on), and a wait after finds the new master."""
    cluster = LocalCluster(tmp_path / "c", node_timeout_ms=1000).start()
    rc = cluster.client()
    try:
        names = [f"jobsvc:{{{q}}}:wake:{q}" for q in queues_per_shard(rc, 1)]
        victim = next(m for m in cluster.masters if rc.get_node_from_key(names[0]).port == m.port)
        heir = cluster.replicas[cluster.masters.index(victim)]
        wait = SlotWait(rc, names)
        started = threading.Event()
        raised: list[BaseException] = []

        def waiter():
            started.set()
            try:
                wait.wait(30)
            except BaseException as exc:  # noqa: BLE001 - the test inspects it
                raised.append(exc)

        t = threading.Thread(target=waiter)
        t.start()
        started.wait()
        wait_until(lambda: victim.conn.info("clients")["blocked_clients"] >= 1, 10, "the BLPOP to block")
        heir.conn.execute_command("CLUSTER", "FAILOVER")
        t.join(30)
        assert len(raised) == 1 and isinstance(raised[0], redis.ConnectionError), raised
        wait_until(lambda: heir.conn.info("replication")["role"] == "master", 30, "the replica to take over")
        heir.conn.rpush(names[0], "t")
        # As its callers do, wait again until the token comes: a wait that meets the old slot map is refused (MOVED)
        # and relearns it, or, while the old master does not know yet that it was demoted, times out there.
        got: list[str | None] = []
        for _ in range(10):
            try:
                got.append(wait.wait(3))
            except redis.ConnectionError:
                continue
            if got[-1] is not None:
                break
        assert got and got[-1] == names[0], got
        assert heir.conn.llen(names[0]) == 0
        wait.close()
    finally:
        rc.close()
        cluster.stop()
