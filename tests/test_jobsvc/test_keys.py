"""The Lua scripts build key names themselves; these tests pin them to jobsvc/keys.py."""
from jobsvc.keys import Keys


def test_lane_of_default_priority_is_rq_queue_list():
    assert Keys().lane("mail", 5) == "rq:queue:mail"


def test_lua_lane_names_match_python(client, r):
    client.enqueue("tests.jobfuncs.noop", queue="q", priority=2)
    client.enqueue("tests.jobfuncs.noop", queue="q", priority=5)
    k = Keys(client.config.key_prefix)
    assert r.llen(k.lane("q", 2)) == 1
    assert r.llen(k.lane("q", 5)) == 1


def test_lua_registry_names_match_python(client, r):
    e = client.enqueue("tests.jobfuncs.noop", queue="q", delay=60)
    k = Keys(client.config.key_prefix)
    assert r.zscore(k.scheduled, e.id) is not None
    assert r.hget(k.tally("q|default|tests.jobfuncs.noop"), "enqueued") == b"1"
    assert r.hget(k.count("q|default|tests.jobfuncs.noop"), "scheduled") == b"1"
    assert r.sismember(k.queues, "q")


def test_lua_registry_and_schedule_key_names_match_python(client, r):
    from jobsvc.functions import Registry

    Registry(client).register("billing", "charge", "tests.jobfuncs.noop")
    Registry(client).disable("billing", "charge")
    k = Keys(client.config.key_prefix)
    assert r.exists(k.function("billing", "charge"))
    assert r.sismember(k.functions_disabled, "billing/charge")
    assert r.zscore(k.function_namespaces, "billing") is not None
