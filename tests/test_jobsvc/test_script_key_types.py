"""The registry and schedule scripts (function_*.lua, schedule_*.lua) check every key they write, the stored
version and their arguments before their first write: with a key of the wrong type where a script would write,
it fails with WRONGTYPE and Redis is exactly as before (Redis never rolls a script back, so an error half-way
used to leave its first writes behind)."""
from __future__ import annotations

import logging

import pytest
import redis

from jobsvc.engine import scripts
from jobsvc.engine.functions import Registry
from jobsvc.engine.keys import Keys
from jobsvc.engine.replies import Reply
from jobsvc.scheduling.schedules import Schedules
from tests.keylayout import expected_type, snapshot

NOOP = "tests.jobfuncs.noop"
K = Keys()


def plant(r, key):
    """Put a value of another type than the layout's at `key`."""
    if expected_type(key) == "string":
        r.rpush(key, "planted")
    else:
        r.set(key, "planted")


def refuses_and_changes_nothing(r, operation, match="WRONGTYPE"):
    before = snapshot(r)
    with pytest.raises(redis.ResponseError, match=match):
        operation()
    assert snapshot(r) == before


@pytest.fixture
def reg(client):
    reg = Registry(client)
    reg.register("billing", "charge", NOOP, queue="billing")
    return reg


@pytest.fixture
def sch(client):
    sch = Schedules(client)
    sch.create(id="nightly", function=NOOP, interval=60)
    return sch


@pytest.mark.parametrize("key", [K.function("billing", "charge"), K.function_names("billing"),
                                 K.function_namespaces, K.functions_disabled, K.wake("billing")])
def test_function_save_checks_before_writing(reg, r, key):
    plant(r, key)
    # function_save reads the hash first: a wrong-typed hash is refused by Python's read, as cleanly.
    refuses_and_changes_nothing(r, lambda: reg.disable("billing", "charge"))
    refuses_and_changes_nothing(r, lambda: reg.register("billing", "charge", NOOP, queue="billing",
                                                        description="changed"))


@pytest.mark.parametrize("key", [K.function("billing", "new"), K.function_names("billing"),
                                 K.function_namespaces, K.functions_disabled, K.wake("billing")])
def test_function_save_of_a_new_function_checks_before_writing(reg, r, key):
    plant(r, key)
    refuses_and_changes_nothing(r, lambda: reg.register("billing", "new", NOOP, queue="billing", enabled=False))


@pytest.mark.parametrize("key", [K.function_names("billing"), K.function_namespaces, K.functions_disabled,
                                 K.function("billing", "charge")])
def test_function_delete_checks_before_writing(reg, r, key):
    reg.disable("billing", "charge")
    plant(r, key)
    refuses_and_changes_nothing(r, lambda: reg.delete("billing", "charge"))


def test_function_save_refuses_a_stored_function_without_a_version(reg, r):
    r.hdel(K.function("billing", "charge"), "version")
    refuses_and_changes_nothing(r, lambda: reg.register("billing", "charge", NOOP, description="x"),
                                match="no numeric version")


@pytest.mark.parametrize(("ns", "name"), [("a:b", "f"), ("a", "f/g"), ("a", ""), ("functions", "x:y")])
def test_function_save_never_writes_a_name_the_layout_cannot_hold(client, r, ns, name):
    refuses_and_changes_nothing(r, lambda: scripts.call(r, "function_save", (), (
        client.config.key_prefix, ns, name, "{}", "1", "upsert", "", "default", 8)), match="bad function")


@pytest.mark.parametrize("key", [K.schedule("other"), K.schedules, K.schedules_due, K.scheduler_wake])
def test_schedule_save_checks_before_writing(sch, r, key):
    plant(r, key)
    refuses_and_changes_nothing(r, lambda: sch.create(id="other", function=NOOP, interval=1))


def test_schedule_save_clears_wrong_typed_run_keys_of_a_new_schedule(sch, r):
    """A new schedule starts with empty counts and history: whatever its run keys held is deleted, any type."""
    for key in (K.schedule_stats("other"), K.schedule_runs("other"), K.schedule_run("other")):
        plant(r, key)
    sch.create(id="other", function=NOOP, interval=1)
    assert not r.exists(K.schedule_stats("other"), K.schedule_runs("other"), K.schedule_run("other"))


def test_schedule_save_refuses_a_stored_schedule_without_a_version_or_a_bad_id(sch, client, r):
    r.hdel(K.schedule("nightly"), "version")
    refuses_and_changes_nothing(r, lambda: scripts.call(r, "schedule_save", (), (
        client.config.key_prefix, "nightly", "{}", "1", "upsert", "", "1", "1", "1")), match="no numeric version")
    refuses_and_changes_nothing(r, lambda: scripts.call(r, "schedule_save", (), (
        client.config.key_prefix, "a:stats", "{}", "1", "upsert", "", "1", "1", "1")), match="bad schedule id")


@pytest.mark.parametrize("key", [K.schedule("nightly"), K.schedules, K.schedules_due])
def test_schedule_delete_checks_before_writing(sch, r, key):
    plant(r, key)
    refuses_and_changes_nothing(r, lambda: sch.delete("nightly"))


def _advance(client, r, *, expected="*", runs="1"):
    job_id = "nightly:manual-1"
    return scripts.call(r, "schedule_advance", (), (
        client.config.key_prefix, "nightly", expected, "", job_id, 1, 1000, runs, 0, 0, 1,
        job_id, 1, '{"job_id":"nightly:manual-1"}', 1))


@pytest.mark.parametrize("key", [K.schedule("nightly"), K.schedules_due, K.schedules_pending,
                                 K.schedule_stats("nightly"), K.schedule_runs("nightly"), K.schedule_run("nightly")])
def test_schedule_advance_checks_before_writing(sch, client, r, key):
    plant(r, key)
    refuses_and_changes_nothing(r, lambda: _advance(client, r))


def test_schedule_advance_checks_its_arguments_and_counters_before_writing(sch, client, r):
    refuses_and_changes_nothing(r, lambda: _advance(client, r, runs="x"), match="bad arguments")
    r.hset(K.schedule_stats("nightly"), "runs", "many")
    refuses_and_changes_nothing(r, lambda: _advance(client, r), match="not an integer")
    r.hset(K.schedule_stats("nightly"), "runs", "1")
    before = snapshot(r)
    assert _advance(client, r, expected="0") == [Reply.CONFLICT]  # a compare-and-set refusal changes nothing either
    assert snapshot(r) == before


def test_schedule_record_drops_a_run_it_cannot_record_and_records_the_rest(client, r, run_worker, caplog):
    sch = Schedules(client)
    for sid in ("good", "bad"):
        sch.create(id=sid, function=NOOP, interval=60)
    jobs = {sid: sch.execute(sid) for sid in ("good", "bad")}
    run_worker()
    plant(r, K.schedule_run("bad"))
    planted = r.get(K.schedule_run("bad"))
    with caplog.at_level(logging.WARNING, logger="jobsvc.scheduling.schedules"):
        assert sch.record_runs() == (1, "-inf")
    assert jobs["bad"] in caplog.text
    assert [run["status"] for run in sch.runs("good")[0]] == ["completed"]
    assert r.get(K.schedule_run("bad")) == planted and not r.zcard(K.schedules_pending)


def test_schedule_record_refuses_a_wrong_typed_pending_set(client, r):
    plant(r, K.schedules_pending)
    refuses_and_changes_nothing(r, lambda: Schedules(client).record_runs())
