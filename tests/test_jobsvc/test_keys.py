"""The Lua scripts build key names themselves; these tests pin them to jobsvc/engine/keys.py, and check the layout rule
(no chosen name can spell a system key) over every key `Keys` names."""
import pytest

from jobsvc.admin import apikeys, audit
from jobsvc.engine.functions import FUNCTION_NAME
from jobsvc.engine.keys import TYPES, Keys
from jobsvc.scheduling.schedules import SCHEDULE_ID, Schedules
from jobsvc.validation import NAMESPACE_NAME
from tests.keylayout import NAME, members, shapes


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
    from jobsvc.engine.functions import Registry

    Registry(client).register("billing", "charge", "tests.jobfuncs.noop")
    Registry(client).disable("billing", "charge")
    k = Keys(client.config.key_prefix)
    assert r.exists(k.function("billing", "charge"))
    assert r.sismember(k.functions_disabled, "billing/charge")
    assert r.zscore(k.function_namespaces, "billing") is not None
    assert r.zscore(k.function_names("billing"), "charge") is not None

    sch = Schedules(client)
    sch.create(id="nightly", function="billing/charge", interval=60)
    Registry(client).enable("billing", "charge")
    job_id = sch.execute("nightly")
    assert r.exists(k.schedule("nightly"))
    assert r.zscore(k.schedules, "nightly") is not None and r.zscore(k.schedules_due, "nightly") is not None
    assert r.zscore(k.schedule_runs("nightly"), job_id) is not None
    assert r.hexists(k.schedule_run("nightly"), job_id)
    assert r.hget(k.schedule_stats("nightly"), "runs") == b"1"
    assert r.zscore(k.schedules_pending, job_id) is not None


def test_fixed_keys_named_outside_keys_py_match_it():
    assert apikeys.records_key("p:") == Keys("p:").apikeys
    assert audit.stream_key("p:") == Keys("p:").audit


def test_every_key_has_a_type():
    assert sorted(TYPES) == members()


@pytest.mark.parametrize("prefix", ["jobsvc:", "app:"])
def test_no_chosen_name_can_spell_a_fixed_key(prefix):
    """The layout rule of jobsvc/engine/keys.py: a named family `<family>:` holds only keys made from names, so no
    fixed key starts with one (the bug: `functions:<namespace>` and the fixed `functions:disabled`)."""
    fixed = [s.text for s in shapes(prefix) if s.fixed]
    named = [s for s in shapes(prefix) if not s.fixed]
    for shape in named:
        assert shape.family.endswith(":"), f"{shape.member}: a name must follow '<family>:' ({shape.text!r})"
        clash = [f for f in fixed if f.startswith(shape.family)]
        assert not clash, f"{clash} would be the {shape.member} key of a name {clash[0][len(shape.family):]!r}"


def test_named_families_do_not_overlap():
    """Two families, neither a prefix of the other; within one family (schedule:<id>, schedule:<id>:stats ...)
    the shapes differ after the name by ':' + suffix, and the name cannot contain ':'. RQ's dependency sets are
    RQ's names (rq/job.py: `rq:job:<id>:dependents`), kept as RQ spells them."""
    named = [s for s in shapes() if not s.fixed and s.member not in ("dependents", "dependencies")]
    for a in named:
        for b in named:
            if a.family != b.family:
                assert not b.family.startswith(a.family), (a.member, b.member)
    by_family: dict[str, list[str]] = {}
    for s in named:
        by_family.setdefault(s.family, []).append(s.text[len(s.family):])
    shared = {family: rests for family, rests in by_family.items() if len(rests) > 1}
    assert list(shared) == ["jobsvc:schedule:"]
    assert all(rest == NAME or rest.startswith(NAME + ":") for rest in shared["jobsvc:schedule:"])
    for pattern in (SCHEDULE_ID, NAMESPACE_NAME, FUNCTION_NAME):
        assert not pattern.fullmatch("a:b") and not pattern.fullmatch("a/b")


def test_a_namespace_called_disabled_has_its_own_index():
    k = Keys()
    assert k.function_names("disabled") != k.functions_disabled


def test_the_lua_registry_map_is_the_python_one(r):
    """_lib.lua's registry_of and Keys.registry name the same sorted set for every state that has one."""
    from jobsvc.engine import scripts
    from jobsvc.engine.states import State

    lib = scripts.SOURCES["fail"].split("local function script_body()")[0]  # the library as fail.lua has it
    assert "local function registry_of" in lib
    probe = lib + "\nreturn registry_of(ARGV[2], ARGV[3]) or false\n"
    k = Keys("jobsvc:")
    for state in State:
        lua = r.eval(probe, *scripts.command("fail", (), (k.prefix, state.value, "q")))
        try:
            python = k.registry(state, "q")
        except ValueError:
            python = None
        assert (lua.decode() if lua else None) == python, state
