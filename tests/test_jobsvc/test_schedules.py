"""Cron schedules (jobsvc/scheduling/schedules/) on a real Redis. The scheduler's pass (`CronFirer.run_once`) is driven
with an injected clock, so downtime, restarts and two leaders are played out in milliseconds."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobsvc import NotFound, State, ValidationError, WrongState
from jobsvc.engine.functions import Registry
from jobsvc.engine.leases import Leases
from jobsvc.scheduling.cron_firer import CronFirer
from jobsvc.scheduling.schedules import Schedules, ScheduleSpec
from jobsvc_cli.main import main as cli
from tests.conftest import redis_ms
from workers.scheduler import Scheduler

SEC = 1000


@pytest.fixture
def sched(client):
    return Schedules(client)


class Clock:
    def __init__(self, ms):
        self.ms = ms

    def __call__(self):
        return self.ms


def firer(r, config, clock):
    return CronFirer(r, config, clock=clock)


def fired_ids(r, sid):
    return sorted(k.decode()[len("rq:job:"):] for k in r.scan_iter(f"rq:job:{sid}:*"))


def fire_times(r, sid):
    return sorted(int(i.rsplit(":", 1)[1]) for i in fired_ids(r, sid) if "manual" not in i)


# -- create, read, change, delete ------------------------------------------------------------------------------


def next_paris(r, hour: int) -> int:
    """The next hh:00 in Paris after Redis' now, in epoch ms (wall-clock arithmetic: right across DST too)."""
    now = datetime.fromtimestamp(redis_ms(r) / 1000, ZoneInfo("Europe/Paris"))
    fire = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if fire <= now:
        fire += timedelta(days=1)
    return int(fire.timestamp() * 1000)


def test_create_get_list_patch_delete(sched, r):
    s = sched.create(id="nightly", cron="0 3 * * *", timezone="Europe/Paris", function="tests.jobfuncs.add",
                     args=[1, 2], queue="reports", misfire="skip")
    assert (s.id, s.cron, s.timezone, s.version, s.status, s.runs, s.last_run) == (
        "nightly", "0 3 * * *", "Europe/Paris", 1, "idle", 0, None)
    assert s.next_run_ms > redis_ms(r)
    assert sched.get("nightly") == s
    d = s.to_dict()
    assert d["next_run_at"].endswith("Z") and d["misfire"] == "skip" and d["avg_runtime_ms"] is None
    sched.create(id="every5", interval=5, function="tests.jobfuncs.noop")
    page, cursor = sched.list(limit=1)
    assert [x.id for x in page] == ["every5"] and cursor == "every5"
    page, cursor = sched.list(cursor, limit=1)
    assert [x.id for x in page] == ["nightly"] and cursor is None

    same = sched.patch("nightly", queue="reports")
    assert same.version == 1  # nothing changed
    p = sched.patch("nightly", description="the nightly report", overlap="skip")
    assert (p.version, p.next_run_ms, p.description) == (2, s.next_run_ms, "the nightly report")
    moved = sched.patch("nightly", cron="0 4 * * *")
    assert moved.version == 3 and moved.next_run_ms == next_paris(r, hour=4)  # not "+1 h": 03:xx Paris is today
    to_interval = sched.patch("nightly", interval=60)
    assert to_interval.cron is None and to_interval.interval == 60.0

    sched.delete("nightly")
    with pytest.raises(NotFound):
        sched.get("nightly")
    assert not r.keys("jobsvc:schedule:nightly*")
    assert r.zscore("jobsvc:schedules:due", "nightly") is None
    with pytest.raises(NotFound):
        sched.delete("nightly")


@pytest.mark.parametrize(("fields", "match"), [
    ({"cron": "* * * * *", "interval": 5}, "exactly one"),
    ({}, "exactly one"),
    ({"cron": "* * *"}, "5 fields"),
    ({"cron": "* * * * *", "timezone": "Nowhere/City"}, "timezone"),
    ({"cron": "* * * * *", "misfire": "sometimes"}, "misfire"),
    ({"cron": "* * * * *", "overlap": "maybe"}, "overlap"),
    ({"cron": "* * * * *", "misfire_grace": 0}, "misfire_grace"),
    ({"interval": 0.5}, "interval"),
    ({"cron": "* * * * *", "function": "os.system('rm')"}, "import path"),
    ({"cron": "* * * * *", "function": "ns/not-registered"}, "not registered"),
    ({"cron": "* * * * *", "args": [object()]}, "JSON"),
    ({"cron": "* * * * *", "start_at": "2026-05-02", "end_at": "2026-05-01"}, "end_at"),
    ({"cron": "* * * * *", "priority": 0}, "priority"),
    ({"cron": "* * * * *", "code": "x"}, "unknown"),
])
def test_bad_schedules_are_validation_errors(sched, fields, match):
    with pytest.raises(ValidationError, match=match):
        sched.create(**{"id": "bad", "function": "tests.jobfuncs.noop", **fields})


def test_duplicate_id_is_wrong_state_and_unknown_is_not_found(sched):
    sched.create(id="s", cron="* * * * *", function="tests.jobfuncs.noop")
    with pytest.raises(WrongState):
        sched.create(id="s", cron="* * * * *", function="tests.jobfuncs.noop")
    for call in (lambda: sched.get("nope"), lambda: sched.patch("nope", enabled=False),
                 lambda: sched.execute("nope"), lambda: sched.runs("nope"), lambda: sched.get("bad:id")):
        with pytest.raises(NotFound):
            call()


# -- firing -----------------------------------------------------------------------------------------------------


def test_fires_get_schedule_and_fire_time_ids_and_restart_neither_skips_nor_repeats(sched, client, r, config):
    s = sched.create(id="tick", cron="* * * * * *", function="tests.jobfuncs.add", args=[1, 2], queue="ticks")
    t0 = s.next_run_ms
    clock = Clock(t0 - 1)
    f1 = firer(r, config, clock)
    assert f1.run_once().fired == 0
    clock.ms = t0
    out = f1.run_once()
    assert (out.fired, out.next_fire_ms) == (1, t0 + SEC)
    info = client.get(f"tick:{t0}")
    assert (info.state, info.queue, info.args, info.raw["js_schedule"]) == (State.QUEUED, "ticks", (1, 2), "tick")
    assert sched.get("tick").next_run_ms == t0 + SEC

    # A restarted scheduler (new firer, no memory) at the same time fires nothing more ...
    f2 = firer(r, config, clock)
    assert f2.run_once().fired == 0
    # ... and later picks up exactly where the stored next fire time says.
    clock.ms = t0 + 2 * SEC + 400
    assert f2.run_once().fired == 2
    assert fire_times(r, "tick") == [t0, t0 + SEC, t0 + 2 * SEC]
    got = sched.get("tick")
    assert (got.runs, got.next_run_ms, got.last_run["job_id"]) == (3, t0 + 3 * SEC, f"tick:{t0 + 2 * SEC}")


def test_two_leaders_passing_at_once_fire_each_time_exactly_once(sched, r, config):
    s = sched.create(id="dup", cron="* * * * * *", function="tests.jobfuncs.noop", misfire="run_all")
    t0 = s.next_run_ms
    clock = Clock(t0)
    firers = [firer(r, config, clock) for _ in range(4)]
    for step in range(20):
        clock.ms = t0 + step * 500
        threads = [threading.Thread(target=f.run_once) for f in firers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    times = fire_times(r, "dup")
    assert times == [t0 + i * SEC for i in range(10)]
    assert sched.get("dup").runs == 10  # counted once each: no pass's duplicate fire landed
    assert r.zcard("jobsvc:schedule:dup:runs") == 10


def test_advance_is_compare_and_set(sched, r, client):
    from jobsvc.engine import scripts
    from jobsvc.engine.replies import Reply

    s = sched.create(id="cas", cron="* * * * * *", function="tests.jobfuncs.noop")
    reply = scripts.call(r, "schedule_advance", (), ("jobsvc:", "cas", s.next_run_ms - SEC, s.next_run_ms + SEC,
                                                     "", "", 100, 0, 0, 0, 0))
    assert reply == [Reply.CONFLICT]
    assert sched.get("cas").next_run_ms == s.next_run_ms


@pytest.mark.parametrize(("policy", "expected", "missed"), [
    # Down from t0 - 1 s to t0 + 5 s with a 1 s grace: t0 .. t0+3 s missed, t0+4 s and t0+5 s on time.
    ("skip", [4, 5], 4),
    ("run_once", [0, 4, 5], 3),
    ("run_all", [0, 1, 2, 3, 4, 5], 0),
])
def test_misfire_policies_after_downtime(sched, r, config, policy, expected, missed):
    s = sched.create(id="mf", cron="* * * * * *", function="tests.jobfuncs.noop", misfire=policy, misfire_grace=1)
    t0 = s.next_run_ms
    clock = Clock(t0 + 5 * SEC)  # the scheduler comes back 5 s after the fire it missed first
    out = firer(r, config, clock).run_once()
    assert fire_times(r, "mf") == [t0 + i * SEC for i in expected]
    assert (out.fired, out.missed) == (len(expected), missed)
    got = sched.get("mf")
    assert (got.missed, got.runs, got.next_run_ms) == (missed, len(expected), t0 + 6 * SEC)
    runs, _ = sched.runs("mf")
    triggers = {r_["scheduled_ms"]: r_["trigger"] for r_ in runs}
    assert triggers[t0 + 5 * SEC] == "schedule"
    if policy != "skip":
        assert triggers[t0] == "catchup"


def test_run_all_is_capped(sched, r, config):
    s = sched.create(id="cap", interval=1, function="tests.jobfuncs.noop", misfire="run_all", misfire_grace=1,
                     max_catchup=3)
    t0 = s.next_run_ms
    out = firer(r, config, Clock(t0 + 10 * SEC)).run_once()
    assert fire_times(r, "cap") == [t0, t0 + SEC, t0 + 2 * SEC, t0 + 9 * SEC, t0 + 10 * SEC]
    assert out.missed == 6


def test_overlap_skip_skips_while_the_previous_run_is_active(sched, client, r, config):
    s = sched.create(id="ov", cron="* * * * * *", function="tests.jobfuncs.noop", queue="ov", overlap="skip")
    t0 = s.next_run_ms
    clock = Clock(t0)
    f = firer(r, config, clock)
    assert f.run_once().fired == 1
    assert sched.get("ov").status == "running"
    clock.ms = t0 + SEC
    out = f.run_once()
    assert (out.fired, out.skipped) == (0, 1)  # still queued
    leases = Leases(r, config)
    lease = leases.claim(["ov"], "w")
    clock.ms = t0 + 2 * SEC
    assert f.run_once().skipped == 1  # running
    leases.complete(lease, None, "w", 0.0, 0.0)
    clock.ms = t0 + 3 * SEC
    assert f.run_once().fired == 1  # done: the next fire runs
    assert fire_times(r, "ov") == [t0, t0 + 3 * SEC]
    runs, _ = sched.runs("ov")
    assert [(x["scheduled_ms"] - t0, x["status"], x["job_id"]) for x in runs] == [
        (3 * SEC, "queued", f"ov:{t0 + 3 * SEC}"), (2 * SEC, "skipped", None), (SEC, "skipped", None),
        (0, "completed", f"ov:{t0}")]
    assert "overlap" in runs[1]["error"]
    assert sched.get("ov").skipped == 2


def test_overlap_allow_runs_alongside(sched, r, config):
    s = sched.create(id="al", cron="* * * * * *", function="tests.jobfuncs.noop")
    clock = Clock(s.next_run_ms)
    f = firer(r, config, clock)
    f.run_once()
    clock.ms += SEC
    assert f.run_once().fired == 1


def test_execute_now(sched, client, r, config):
    sched.create(id="ex", cron="0 3 * * *", function="tests.jobfuncs.add", args=[2, 3], enabled=False)
    job_id = sched.execute("ex")
    assert job_id.startswith("ex:manual-")
    info = client.get(job_id)
    assert (info.state, info.args, info.raw["js_schedule"]) == (State.QUEUED, (2, 3), "ex")
    got = sched.get("ex")
    assert (got.runs, got.last_run["job_id"], got.status, got.next_run_ms) == (1, job_id, "disabled", None)
    runs, _ = sched.runs("ex")
    assert [(x["job_id"], x["trigger"], x["status"]) for x in runs] == [(job_id, "manual", "queued")]
    enabled = sched.enable("ex")
    assert enabled.next_run_ms is not None and enabled.status == "running"


def test_outcomes_counts_runs_history_and_average_runtime(sched, client, r, config, run_worker):
    ok = sched.create(id="ok", cron="* * * * * *", function="tests.jobfuncs.sleep_for", args=[0.05])
    bad = sched.create(id="bad", cron="* * * * * *", function="tests.jobfuncs.fatal", args=["nope"])
    clock = Clock(max(ok.next_run_ms, bad.next_run_ms) + SEC)
    f = CronFirer(r, config, clock=clock, record_interval=0)
    f.run_once()
    run_worker()
    f.run_once()  # copies the finished runs into the history
    assert not r.zcard("jobsvc:schedules:pending")
    good = sched.get("ok")
    assert (good.runs, good.completed, good.failed, good.status) == (2, 2, 0, "idle")
    assert 40 <= good.avg_runtime_ms < 2000
    assert good.last_run["status"] == "completed"
    failed = sched.get("bad")
    assert (failed.runs, failed.completed, failed.failed) == (2, 0, 2)
    runs, _ = sched.runs("bad")
    assert all(x["status"] == "failed" and "nope" in x["error"] and x["duration_ms"] is not None for x in runs)
    # The history outlives the jobs (result_ttl).
    for job_id in fired_ids(r, "ok"):
        client.delete(job_id)
    runs, _ = sched.runs("ok")
    assert [x["status"] for x in runs] == ["completed", "completed"]
    assert all(x["duration_ms"] >= 40 for x in runs)


def test_runs_pages_with_a_cursor(sched, r, config):
    s = sched.create(id="pg", cron="* * * * * *", function="tests.jobfuncs.noop", misfire="run_all")
    t0 = s.next_run_ms
    firer(r, config, Clock(t0 + 6 * SEC)).run_once()
    seen, cursor = [], None
    while True:
        page, cursor = sched.runs("pg", cursor, limit=3)
        seen += [x["scheduled_ms"] for x in page]
        if not cursor:
            break
    assert seen == [t0 + i * SEC for i in range(6, -1, -1)]
    with pytest.raises(ValidationError):
        sched.runs("pg", "garbage")


def test_disabled_registry_function_skips_fires_and_refuses_execute(sched, client, r, config):
    reg = Registry(client)
    reg.register("rep", "build", "tests.jobfuncs.add", queue="rep", max_attempts=4)
    s = sched.create(id="fn", cron="* * * * * *", function="rep/build", args=[1, 1])
    clock = Clock(s.next_run_ms)
    f = firer(r, config, clock)
    f.run_once()
    info = client.get(f"fn:{s.next_run_ms}")
    assert (info.queue, info.namespace, info.max_attempts, info.raw["js_fn"]) == ("rep", "rep", 4, "rep/build")
    reg.disable("rep", "build")
    clock.ms += SEC
    out = f.run_once()
    assert (out.fired, out.skipped) == (0, 1)
    runs, _ = sched.runs("fn")
    assert runs[0]["status"] == "skipped" and "disabled" in runs[0]["error"]
    with pytest.raises(WrongState):
        sched.execute("fn")
    reg.enable("rep", "build")
    clock.ms += SEC
    assert f.run_once().fired == 1


def test_disable_stops_firing_and_enable_starts_from_now(sched, r, config):
    s = sched.create(id="de", cron="* * * * * *", function="tests.jobfuncs.noop", misfire="run_all")
    sched.disable("de")
    assert r.zscore("jobsvc:schedules:due", "de") is None
    assert firer(r, config, Clock(s.next_run_ms + 10 * SEC)).run_once().fired == 0
    again = sched.enable("de")
    assert again.next_run_ms > redis_ms(r)  # no catch-up of the disabled time
    assert again.status == "idle"


def test_end_at_stops_the_schedule(sched, r, config):
    s = sched.create(id="end", interval=1, function="tests.jobfuncs.noop", misfire="run_all")
    sched.patch("end", end_at=(s.next_run_ms + 2 * SEC) / 1000)
    t0 = sched.get("end").next_run_ms
    out = firer(r, config, Clock(t0 + 10 * SEC)).run_once()
    assert out.fired == len(fire_times(r, "end")) and max(fire_times(r, "end")) <= s.next_run_ms + 2 * SEC
    got = sched.get("end")
    assert got.next_run_ms is None and r.zscore("jobsvc:schedules:due", "end") is None


def test_interval_fires_from_its_start(sched, r, config):
    start = (redis_ms(r) // SEC + 100) * SEC
    s = sched.create(id="iv", interval=7, function="tests.jobfuncs.noop", start_at=start / 1000, misfire="run_all")
    assert s.next_run_ms == start
    firer(r, config, Clock(start + 21 * SEC)).run_once()
    assert fire_times(r, "iv") == [start, start + 7 * SEC, start + 14 * SEC, start + 21 * SEC]


def test_scheduler_sleeps_until_the_next_fire(sched, r, config):
    sched.create(id="soon", interval=1, function="tests.jobfuncs.noop")
    scheduler = Scheduler(r, config)
    assert scheduler.run_once() <= 1.0
    assert scheduler.leading
    wait = scheduler.run_once()
    nxt = sched.get("soon").next_run_ms
    assert wait <= max(0.0, (nxt - redis_ms(r)) / 1000) + 0.05


# -- sync ---------------------------------------------------------------------------------------------------------


def test_sync_dry_run_changes_nothing_and_the_real_run_matches_its_report(sched, r):
    sched.create(id="keep", cron="0 1 * * *", function="tests.jobfuncs.noop", namespace="ops")
    sched.create(id="change", cron="0 2 * * *", function="tests.jobfuncs.noop", namespace="ops")
    sched.create(id="drop", cron="0 3 * * *", function="tests.jobfuncs.noop", namespace="ops")
    sched.create(id="elsewhere", cron="0 3 * * *", function="tests.jobfuncs.noop")
    wanted = [{"id": "keep", "cron": "0 1 * * *", "function": "tests.jobfuncs.noop", "namespace": "ops"},
              {"id": "change", "cron": "0 5 * * *", "function": "tests.jobfuncs.noop", "namespace": "ops"},
              {"id": "new", "interval": 60, "function": "tests.jobfuncs.noop", "namespace": "ops",
               "start_at": "2030-01-01T00:00:00Z"}]
    before = {k: r.dump(k) for k in r.keys("jobsvc:schedule*")}
    dry = sched.sync(wanted, delete_missing=True, dry_run=True, namespace="ops")
    assert {k: r.dump(k) for k in r.keys("jobsvc:schedule*")} == before
    assert (dry.created, dry.updated, dry.deleted, dry.unchanged) == (["new"], ["change"], ["drop"], ["keep"])
    real = sched.sync(wanted, delete_missing=True, namespace="ops")
    assert real.to_dict() == {**dry.to_dict(), "dry_run": False}
    assert sorted(s.id for s in sched.all()) == ["change", "elsewhere", "keep", "new"]
    assert sched.get("change").cron == "0 5 * * *" and sched.get("change").version == 2
    assert sched.get("new").to_dict()["start_at"] == "2030-01-01T00:00:00.000Z"
    again = sched.sync(wanted, delete_missing=True, namespace="ops")
    assert again.unchanged == ["change", "keep", "new"] and not (again.created or again.updated or again.deleted)


def test_cli_schedules_sync_create_execute_runs(sched, client, redis_env, tmp_path, capsys):
    path = tmp_path / "schedules.yaml"
    path.write_text("schedules:\n  - id: report\n    cron: '30 2 * * *'\n    timezone: America/New_York\n"
                    "    function: tests.jobfuncs.add\n    args: [1, 2]\n")
    assert cli(["schedules", "sync", str(path), "--dry-run"]) == 0
    assert "would be created: 1" in capsys.readouterr().out
    assert sched.all() == []
    assert cli(["schedules", "sync", str(path)]) == 0
    assert sched.get("report").timezone == "America/New_York"
    assert cli(["schedules", "create", "--id", "cli", "--interval", "30", "--function", "tests.jobfuncs.noop",
                "--kwargs", "{}", "--overlap", "skip"]) == 0
    assert sched.get("cli").overlap == "skip"
    capsys.readouterr()
    assert cli(["schedules", "execute", "report"]) == 0
    job_id = capsys.readouterr().out.strip()
    assert client.get(job_id).args == (1, 2)
    assert cli(["schedules", "runs", "report", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"][0]["job_id"] == job_id
    assert cli(["schedules", "list"]) == 0
    assert "report" in capsys.readouterr().out
    assert cli(["schedules", "create", "--id", "x", "--cron", "bad", "--function", "a.b"]) == 2


def test_spec_round_trips_through_its_dict(sched):
    s = sched.create(id="rt", cron="*/5 * * * * *", function="tests.jobfuncs.noop", backoff="linear",
                     start_at="2026-01-01T00:00:00+01:00", max_attempts=4)
    d = s.to_dict()
    spec = ScheduleSpec.from_dict({k: d[k] for k in ScheduleSpec.__dataclass_fields__})
    assert spec == s.spec
    assert d["backoff"]["kind"] == "linear" and d["start_at"] == "2025-12-31T23:00:00.000Z"


def test_a_broken_schedule_does_not_stop_the_others(sched, r, config):
    good = sched.create(id="good", cron="* * * * * *", function="tests.jobfuncs.noop")
    sched.create(id="broken", cron="* * * * * *", function="tests.jobfuncs.noop")
    r.hset("jobsvc:schedule:broken", "def", "{not json")
    t = good.next_run_ms + SEC
    out = firer(r, config, Clock(t)).run_once()
    assert out.fired >= 1 and fire_times(r, "good")
    assert r.zscore("jobsvc:schedules:due", "broken") == t + 5 * SEC  # tried again later, not in a loop
    assert out.next_fire_ms <= t + SEC


def test_deleting_a_schedule_with_a_run_in_flight_leaves_no_counts_behind(sched, client, r, config):
    s = sched.create(id="gone", cron="* * * * * *", function="tests.jobfuncs.noop", queue="gq")
    f = CronFirer(r, config, clock=Clock(s.next_run_ms), record_interval=0)
    f.run_once()
    leases = Leases(r, config)
    lease = leases.claim(["gq"], "w")
    sched.delete("gone")
    leases.complete(lease, None, "w", 0.0, 0.0)  # complete.lua counts it on the (deleted) schedule
    assert r.exists("jobsvc:schedule:gone:stats")
    f.run_once()
    assert not r.keys("jobsvc:schedule:gone*") and not r.zcard("jobsvc:schedules:pending")
