"""SlotWait (jobsvc/engine/cluster.py): a blocking wait on lists in different slots of a Redis Cluster, which one
BLPOP cannot do (CROSSSLOT). Idle workers and the scheduler wait on it there."""
from __future__ import annotations

import threading

import pytest

from jobsvc.embedded_cluster import queues_per_shard
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
