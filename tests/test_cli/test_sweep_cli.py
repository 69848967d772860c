"""`jobsvc sweep`: the integrity sweep on demand (a report unless --fix), against the test Redis, in-process."""
from __future__ import annotations

import json

import pytest
import rq

from jobsvc.admin import audit
from jobsvc.engine.keys import Keys
from jobsvc_cli.main import main

KEYS = Keys()
NOOP = "tests.jobfuncs.noop"
GROUP = f"default|default|{NOOP}"


pytestmark = pytest.mark.usefixtures("redis_env")  # REDIS_URL for the CLI


def drift(client, r):
    """Two problems: a gauge counting jobs that `rq empty` deleted behind jobsvc's back."""
    client.enqueue(NOOP)
    rq.Queue("default", connection=r).empty()
    client.enqueue(NOOP)


def test_a_clean_store(client, capsys):
    client.enqueue(NOOP)
    assert main(["sweep", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "1 job(s) looked at, 0 problem(s) found" in out.out
    assert "sweep [" in out.err  # the progress bar, on stderr


def test_dry_run_reports_changes_nothing_and_exits_1(client, r, capsys):
    drift(client, r)
    before = {k: r.dump(k) for k in r.keys("*")}
    assert main(["sweep", "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "gauge_drift" in out and "missing_hash" in out and GROUP in out
    assert "2 problem(s) found (nothing changed: --fix repairs)" in out
    assert {k: r.dump(k) for k in r.keys("*")} == before
    assert audit.list_entries(r, KEYS.prefix)[0] == []  # a dry run changes nothing: not audited


@pytest.mark.parametrize("argv", [["sweep"], ["sweep", "--fix", "--dry-run"]])
def test_without_fix_it_only_reports(client, r, capsys, argv):
    drift(client, r)
    before = {k: r.dump(k) for k in r.keys("*")}
    assert main(argv) == 1
    assert "2 problem(s) found (nothing changed: --fix repairs)" in capsys.readouterr().out
    assert {k: r.dump(k) for k in r.keys("*")} == before


def test_scoped_by_queue_and_namespace(client, r, capsys):
    drift(client, r)  # on queue default, namespace default
    assert main(["sweep", "--fix", "--queue", "other"]) == 0
    assert main(["sweep", "--fix", "--namespace", "other"]) == 0
    assert int(r.hget(KEYS.count(GROUP), "queued")) == 2  # out of scope: untouched
    assert main(["sweep", "--fix", "--queue", "default", "--namespace", "default"]) == 0
    assert int(r.hget(KEYS.count(GROUP), "queued")) == 1


def test_sweep_repairs_and_is_audited(client, r, config, capsys):
    drift(client, r)
    assert int(r.hget(KEYS.count(GROUP), "queued")) == 2
    assert main(["sweep", "--fix"]) == 0
    assert "2 problem(s) found and repaired" in capsys.readouterr().out
    assert int(r.hget(KEYS.count(GROUP), "queued")) == 1
    entry = audit.list_entries(r, KEYS.prefix)[0][0]
    assert (entry.key_id, entry.action) == ("cli", "bulk.integrity_sweep")
    assert main(["sweep", "--dry-run"]) == 0


def test_json_report(client, r, capsys):
    drift(client, r)
    assert main(["sweep", "--dry-run", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["counts"]["gauge_drift"], report["samples"]["gauge_drift"], report["clean"]) == (1, [GROUP], False)
