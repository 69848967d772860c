"""`jobsvc cancel-stale`: the cancel-stale sweep (POST /jobs/stale/cancel) from the command line, through the
core's cancel_stale: dry run first, confirmation, ages in seconds, queue / namespace / function filters."""
from __future__ import annotations

import pytest

from jobsvc import State
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases
from jobsvc_cli.main import main
from tests.conftest import redis_ms

NOOP = "tests.jobfuncs.noop"
KEYS = Keys()
HOUR_MS = 3_600_000


pytestmark = pytest.mark.usefixtures("redis_env")  # REDIS_URL for the CLI


def backdate(r, job_id, field, hours):
    """Make a job look created (js_created_ms, and its created index) or started (js_started_ms) `hours` ago: no
    waiting in tests (as tests/test_jobsvc/test_cancel_stale.py does)."""
    when = redis_ms(r) - int(hours * HOUR_MS)
    r.hset(KEYS.job(job_id), field, when)
    if field == "js_created_ms":
        r.zadd(KEYS.created(r.hget(KEYS.job(job_id), "origin").decode()), {job_id: when})


@pytest.fixture
def stale(client, r, config):
    """Queued 3 h (q1, q2) and 10 min (q1); running 3 h and 10 min (queue run, worker host.1.w)."""
    ids = {name: client.enqueue(NOOP, queue=q).id for name, q in (("old_q1", "q1"), ("old_q2", "q2"),
                                                                   ("young", "q1"), ("long", "run"),
                                                                   ("short", "run"))}
    leases = Leases(r, config)
    assert {leases.claim(["run"], "host.1.w").job_id for _ in range(2)} == {ids["long"], ids["short"]}
    for name, field, hours in (("old_q1", "js_created_ms", 3), ("old_q2", "js_created_ms", 3),
                               ("young", "js_created_ms", 1 / 6), ("long", "js_started_ms", 3),
                               ("short", "js_started_ms", 1 / 6)):
        backdate(r, ids[name], field, hours)
    return ids


def states(client, stale, *names):
    return [client.get(stale[n]).state for n in names]


ALL = ("old_q1", "old_q2", "young", "long", "short")
BEFORE = [State.QUEUED] * 3 + [State.RUNNING] * 2


def test_dry_run_reports_the_count_and_changes_nothing(client, stale, capsys):
    assert main(["cancel-stale", "--queued-for", "3600", "--running-for", "3600", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "cancel-stale: 3 job(s) match (queued 2, running 1)" in out
    assert stale["old_q1"] in out and stale["young"] not in out
    assert states(client, stale, *ALL) == BEFORE


def test_cancels_queued_too_long_and_leaves_young_ones(client, r, stale, capsys):
    assert main(["cancel-stale", "--queued-for", "3600", "--yes"]) == 0
    captured = capsys.readouterr()
    assert "2 changed, 0 skipped" in captured.out and "2/2" in captured.err
    assert states(client, stale, *ALL) == [State.CANCELLED] * 2 + [State.QUEUED] + [State.RUNNING] * 2
    assert main(["cancel-stale", "--queued-for", "3600", "--yes"]) == 0  # safe to repeat: nothing left
    assert "0 job(s) match" in capsys.readouterr().out


def test_terminates_running_too_long_when_asked(client, r, config, stale):
    assert main(["cancel-stale", "--running-for", "3600", "--yes"]) == 0
    assert states(client, stale, *ALL) == [State.QUEUED] * 3 + [State.CANCELLED, State.RUNNING]
    # Through its lease, as `jobs terminate` does: revoked, and its worker told to stop it.
    assert r.zscore(KEYS.leases, stale["long"]) is None
    assert r.lrange(f"{KEYS.prefix}terminate:host.1.w", 0, -1) == [stale["long"].encode()]


def test_queue_filter_and_audit(client, r, config, stale):
    from jobsvc.admin import audit

    assert main(["cancel-stale", "--queued-for", "3600", "--queue", "q2", "--yes"]) == 0
    assert states(client, stale, "old_q1", "old_q2") == [State.QUEUED, State.CANCELLED]
    entry = audit.list_entries(r, config.key_prefix)[0][0]
    assert (entry.key_id, entry.action, entry.params["queue"], entry.params["queued_for_s"]) == \
        ("cli", "jobs.cancel-stale", "q2", 3600)


def test_without_a_terminal_it_needs_yes(client, stale, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["cancel-stale", "--queued-for", "3600"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert states(client, stale, *ALL) == BEFORE


def test_without_an_age_is_a_clear_error_and_changes_nothing(client, stale, capsys):
    assert main(["cancel-stale", "--yes"]) == 2
    assert "queued_for" in capsys.readouterr().err
    assert states(client, stale, *ALL) == BEFORE


@pytest.mark.parametrize("argv", [["--queued-for", "-1"], ["--running-for", "soon"], ["--queued-for", "nan"],
                                  ["--queued-for", "60", "--state", "failed"]])
def test_bad_arguments_are_refused_and_change_nothing(client, stale, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(["cancel-stale", "--yes", *argv])
    assert exc.value.code == 2
    assert "cancel-stale" in capsys.readouterr().err
    assert states(client, stale, *ALL) == BEFORE


def test_a_bad_queue_name_is_refused_by_the_core(client, stale, capsys):
    assert main(["cancel-stale", "--queued-for", "60", "--queue", "bad queue", "--yes"]) == 2
    assert "queue" in capsys.readouterr().err
    assert states(client, stale, *ALL) == BEFORE
