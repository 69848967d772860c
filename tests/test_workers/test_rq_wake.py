"""workers/rq_wake.py in-process against the real Redis: an idle worker's tracking of its RQ queue lists (how a job
plain RQ enqueues ends the idle wait at once), what it ignores, and its fallback. The latency bound itself, with
a real worker process: tests/test_rq_compat/test_start_latency.py."""
from __future__ import annotations

import pytest
import redis
import rq

from jobsvc.engine.keys import Keys
from tests.conftest import wait_for
from workers import rq_wake
from workers.rq_wake import RqWake, bcast_prefixes

WAKE_KEYS = ["jobsvc:wake:default", "jobsvc:wake:other"]


def tracking_clients(r) -> int:
    return sum("t" in c.get("flags", "") for c in r.client_list())


@pytest.fixture
def wake(r):
    w = RqWake(r, ["default", "other"], Keys(), idle_wait=1.0)
    yield w
    w.reset()


def test_prefixes_that_start_one_another_are_merged():
    assert bcast_prefixes(["rq:queue:a", "rq:queue:ab", "rq:queue:b", "rq:queue:a"]) == ["rq:queue:a", "rq:queue:b"]


def test_the_probe_accepts_this_redis(wake):
    assert wake.probe() is None


def test_a_job_plain_rq_pushes_ends_the_wait(wake, r):
    assert wake.arm() is True  # just armed: the caller claims once more
    assert wake.arm() is False
    rq.Queue("other", connection=r).enqueue("tests.jobfuncs.noop")
    assert wake.wait(WAKE_KEYS, timeout=30) == "rq"
    assert not any("b" in c.get("flags", "") for c in r.client_list())  # its BLPOP was ended, not left behind


def test_a_jobsvc_wake_up_token_ends_the_wait_as_before(wake, r):
    wake.arm()
    r.rpush("jobsvc:wake:default", "1")
    assert wake.wait(WAKE_KEYS, timeout=30) == "wake"
    assert r.llen("jobsvc:wake:default") == 0


def test_the_wait_times_out_without_either(wake):
    wake.arm()
    assert wake.wait(WAKE_KEYS, timeout=0.1) == "timeout"


def test_a_write_that_leaves_the_lists_empty_does_not_end_the_wait(wake, r):
    """A job jobsvc enqueued and another worker already took (push + pop) is a message, not a job to claim."""
    wake.arm()
    r.rpush("rq:queue:default", "j1")
    r.lpop("rq:queue:default")
    assert wake.wait(WAKE_KEYS, timeout=0.2) == "timeout"


def test_a_job_on_a_paused_queue_does_not_end_the_wait(wake, r):
    wake.arm()
    r.sadd(Keys().paused, "default")
    rq.Queue("default", connection=r).enqueue("tests.jobfuncs.noop")
    assert wake.wait(WAKE_KEYS, timeout=0.2) == "timeout"


def test_other_lists_do_not_matter(wake, r):
    wake.arm()
    rq.Queue("elsewhere", connection=r).enqueue("tests.jobfuncs.noop")
    assert wake.wait(WAKE_KEYS, timeout=0.2) == "timeout"


def test_after_a_disarm_nothing_is_tracked_and_a_new_arm_works(wake, r):
    wake.arm()
    assert tracking_clients(r) == 1
    r.rpush("rq:queue:default", "j1")  # a message left unread when the worker got busy
    wake.disarm()
    wait_for(lambda: tracking_clients(r) == 0, 5, "tracking to be off")
    r.rpush("rq:queue:default", "j2")
    assert wake.arm() is True
    r.rpush("rq:queue:other", "j3")
    assert wake.wait(WAKE_KEYS, timeout=30) == "rq"


def test_a_token_taken_while_ending_the_wait_is_given_back(wake, r):
    """The BLPOP may be answered with a jobsvc token just before the worker ends it for an RQ job: the token goes
    back, so the worker it was meant for still wakes."""
    wake.arm()
    wake._waiter, wake._waiter_id = wake._connect()
    r.rpush("jobsvc:wake:default", "1")
    wake._waiter.send_command("BLPOP", *WAKE_KEYS, 30)
    assert wake._unblock(WAKE_KEYS) == "rq"
    assert r.lrange("jobsvc:wake:default", 0, -1) == [b"1"]


def test_fruitless_claims_back_off_until_a_claim_or_empty_lists(wake, r, monkeypatch):
    """A claim that finds nothing while a list holds ids (jobs of a disabled function, which claim.lua cycles
    through the list, writing it) must not start another claim at once, or idle workers would loop."""
    wake.claimed(False)
    assert wake._backoff == rq_wake.BACKOFF_MIN
    for _ in range(20):
        wake.claimed(False)
    assert wake._backoff == wake.idle_wait  # no faster than the idle wait itself
    wake.claimed(True)
    assert wake._backoff == 0
    wake.claimed(False)
    wake.arm()
    r.rpush("rq:queue:default", "j1")
    r.lpop("rq:queue:default")
    assert wake.wait(WAKE_KEYS, timeout=0.2) == "timeout"
    assert wake._backoff == 0  # the lists were seen empty


def test_a_broken_tracking_connection_falls_back_to_claiming(wake, r):
    wake.arm()
    r.client_kill_filter(_id=wake._tracker_id)
    assert wake.wait(WAKE_KEYS, timeout=30) in ("timeout", "wake")
    assert not wake.armed
    assert wake.arm() is True  # a fresh connection next time


@pytest.fixture
def limited_url(r, redis_url):
    """A Redis user that may not use CLIENT (as ACLs of managed Redis services often have it)."""
    r.execute_command("ACL", "SETUSER", "limited", "on", ">pw", "~*", "allchannels", "+@all", "-client")
    yield redis_url.replace("redis://", "redis://limited:pw@")
    r.execute_command("ACL", "DELUSER", "limited")


def test_the_probe_says_why_when_client_tracking_is_refused(limited_url):
    conn = redis.Redis.from_url(limited_url)
    why = RqWake(conn, ["default"], Keys(), 1.0).probe()
    assert why and "refused CLIENT TRACKING" in why


def test_a_tracking_connection_that_died_while_the_worker_was_busy_is_replaced_at_once(wake, r):
    wake.arm()
    wake.disarm()
    r.client_kill_filter(_id=wake._tracker_id)  # e.g. Redis restarted meanwhile
    assert wake.arm() is True
    rq.Queue("default", connection=r).enqueue("tests.jobfuncs.noop")
    assert wake.wait(WAKE_KEYS, timeout=30) == "rq"
