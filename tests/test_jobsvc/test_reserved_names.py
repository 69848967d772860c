"""Every word the key layout is built of ('disabled', 'due', 'leader', 'stats', ...: read off jobsvc/engine/keys.py) as
a function namespace, a function name, a schedule id and a queue name, through the core API: nothing may land
on a system key. Registry-function jobs must still be claimed and run, and every key must keep its type.
(Issue 11: a namespace called "disabled" turned the set of disabled functions into a sorted set, and every
registry-function job in every namespace stopped being claimed.)"""
from __future__ import annotations

from jobsvc import State
from jobsvc.engine.functions import Registry
from jobsvc.engine.keys import Keys
from jobsvc.scheduling.schedules import Schedules
from tests.keylayout import reserved_queue_names, reserved_words, wrong_keys

NOOP = "tests.jobfuncs.noop"
WORDS = reserved_words()


def _states(client, ids):
    return {key: client.get(job_id).state for key, job_id in ids.items()}


def test_the_word_list_holds_the_reported_and_other_system_words():
    assert {"disabled", "functions", "due", "pending", "leader", "wake", "stats", "runs", "run"} <= set(WORDS)


def test_reserved_words_as_function_namespaces_and_names(client, r, run_worker):
    reg = Registry(client)
    refs = [f"{w}/f" for w in WORDS] + [f"ns/{w}" for w in WORDS]
    for ref in refs:
        reg.register(*ref.split("/"), NOOP, queue="work")
    jobs = {ref: reg.enqueue(ref).id for ref in refs}
    # As reported: a disabled function in namespace "disabled"; and a function called "disabled". Each holds
    # only its own queued job.
    reg.disable("disabled", "f")
    reg.disable("ns", "disabled")
    assert r.smembers(Keys().functions_disabled) == {b"disabled/f", b"ns/disabled"}
    assert not wrong_keys(r)

    run_worker(queues=("work",))
    held = {"disabled/f", "ns/disabled"}
    assert {ref for ref, state in _states(client, jobs).items() if state != State.COMPLETED} == held
    reg.enable("disabled", "f")
    reg.enable("ns", "disabled")
    run_worker(queues=("work",))
    assert set(_states(client, jobs).values()) == {State.COMPLETED}

    assert sorted(f.ref for f in reg.all()) == sorted(refs)
    counts = {n["namespace"]: n["functions"] for n in reg.namespaces()}
    assert counts == {**dict.fromkeys(WORDS, 1), "ns": len(WORDS)}
    assert not wrong_keys(r)

    for ref in refs:
        reg.delete(*ref.split("/"))
    assert reg.all() == [] and reg.namespaces() == []
    assert not r.keys("jobsvc:function*") and not r.exists(Keys().functions_disabled)
    assert not wrong_keys(r)


def test_reserved_words_as_schedule_ids(client, r, run_worker):
    Registry(client).register("disabled", "f", NOOP, queue="work")
    sch = Schedules(client)
    for w in WORDS:
        sch.create(id=w, function="disabled/f", interval=3600)
    manual = {w: sch.execute(w) for w in WORDS}
    due = max(s.next_run_ms for s in sch.all())
    assert sch.fire_due(now_ms=due).fired == len(WORDS)
    assert not wrong_keys(r)

    run_worker(queues=("work",))
    assert set(_states(client, manual).values()) == {State.COMPLETED}
    cursor = "-inf"
    while True:
        _, cursor = sch.record_runs(cursor)
        if cursor == "-inf":
            break
    for w in WORDS:
        got = sch.get(w)
        assert (got.runs, got.completed, got.failed) == (2, 2, 0), w
        assert [run["status"] for run in sch.runs(w)[0]] == ["completed", "completed"], w
    assert not r.zcard(Keys().schedules_pending)
    assert not wrong_keys(r)

    for w in WORDS:
        sch.delete(w)
    assert sch.all() == [] and not r.keys("jobsvc:schedule:*")
    assert not wrong_keys(r)


def test_reserved_words_and_system_keys_as_queue_names(client, r, run_worker):
    queues = reserved_queue_names()
    reg = Registry(client)
    jobs = {}
    for i, q in enumerate(queues):
        reg.register("ns", f"f{i}", NOOP, queue=q, priority=3)
        jobs[q] = reg.enqueue(f"ns/f{i}").id
        jobs[q + " (plain)"] = client.enqueue(NOOP, queue=q).id
    assert not wrong_keys(r)
    run_worker(queues=queues)
    assert set(_states(client, jobs).values()) == {State.COMPLETED}
    assert not wrong_keys(r)
