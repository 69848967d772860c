"""`jobsvc jobs|stats|retry|prune` against the test Redis, in-process."""
from __future__ import annotations

import json
import re

import pytest

from jobsvc import State
from jobsvc.engine.leases import Leases
from jobsvc_cli.main import main

pytestmark = pytest.mark.usefixtures("redis_env")  # REDIS_URL for the CLI


def failed_job(client, r, config, **opts):
    e = client.enqueue("tests.jobfuncs.boom", max_attempts=1, **opts)
    leases = Leases(r, config)
    leases.fail(leases.claim([opts.get("queue", "default")], "w"), RuntimeError("boom"), "tb")
    return e.id


def test_jobs_list_prints_a_table(client, capsys):
    e = client.enqueue("tests.jobfuncs.add", 1, 2)
    assert main(["jobs", "list"]) == 0
    out = capsys.readouterr().out
    assert e.id in out and "tests.jobfuncs.add" in out and "queued" in out


def test_jobs_list_json_pages_with_a_cursor(client, capsys):
    client.enqueue_many([client.job("tests.jobfuncs.noop") for _ in range(3)])
    main(["jobs", "list", "--json", "--limit", "2"])
    first = json.loads(capsys.readouterr().out)
    main(["jobs", "list", "--json", "--limit", "2", "--cursor", first["next_cursor"]])
    second = json.loads(capsys.readouterr().out)
    assert len(first["jobs"]) == 2 and len(second["jobs"]) == 1
    assert not {j["id"] for j in first["jobs"]} & {j["id"] for j in second["jobs"]}


def test_jobs_get_shows_runs(client, r, config, capsys):
    job_id = failed_job(client, r, config)
    assert main(["jobs", "get", job_id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["state"], shown["runs"][0]["exc_type"]) == ("failed", "RuntimeError")


def test_jobs_get_shows_readable_times_and_json_keeps_epoch_ms(client, r, config, capsys):
    job_id = failed_job(client, r, config)
    main(["jobs", "get", job_id])
    shown = json.loads(capsys.readouterr().out)
    times = [k for k in (*shown, *shown["runs"][0]) if k.endswith("_ms") and k != "duration_ms"]  # a duration stays
    assert not times
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC", shown["created"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC", shown["runs"][0]["ended"])
    main(["jobs", "get", job_id, "--json"])
    raw = json.loads(capsys.readouterr().out)
    assert isinstance(raw["created_ms"], int) and raw["created_ms"] == client.get(job_id).created_ms


def test_commands_fall_back_to_the_url_up_wrote_and_say_so(client, redis_url, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.chdir(tmp_path)
    assert main(["stats"]) == 2
    assert "no Redis URL" in capsys.readouterr().err
    (tmp_path / ".jobsvc").mkdir()
    (tmp_path / ".jobsvc" / "redis_url").write_text(redis_url + "\n")
    client.enqueue("tests.jobfuncs.noop", queue="fallback")
    assert main(["stats"]) == 0
    out = capsys.readouterr()
    assert "fallback" in out.out
    assert f"using Redis {redis_url} from .jobsvc/redis_url" in out.err


def test_jobs_retry_requeues_a_failed_job(client, r, config):
    job_id = failed_job(client, r, config)
    assert main(["jobs", "retry", job_id]) == 0
    assert client.state(job_id) == State.QUEUED


def test_jobs_action_on_unknown_job_is_a_clear_error(capsys):
    assert main(["jobs", "cancel", "nope"]) == 2
    assert "no job nope" in capsys.readouterr().err


def test_stats_prints_counts_per_state(client, capsys):
    client.enqueue("tests.jobfuncs.noop", queue="mail")
    assert main(["stats", "--by", "queue"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("mail"))
    assert line.split()[1:3] == ["0", "1"]  # scheduled 0, queued 1


def test_bulk_retry_dry_run_changes_nothing(client, r, config, capsys):
    pytest.importorskip("jobsvc.admin.bulk")
    ids = [failed_job(client, r, config) for _ in range(3)]
    assert main(["retry", "--state", "failed", "--dry-run"]) == 0
    assert "3 job(s) match" in capsys.readouterr().out
    assert {client.state(i) for i in ids} == {State.FAILED}


def test_bulk_retry_with_yes_requeues_and_shows_progress(client, r, config, capsys):
    pytest.importorskip("jobsvc.admin.bulk")
    ids = [failed_job(client, r, config) for _ in range(3)]
    assert main(["retry", "--state", "failed", "--yes"]) == 0
    captured = capsys.readouterr()
    assert "3 changed" in captured.out and "3/3" in captured.err
    assert {client.state(i) for i in ids} == {State.QUEUED}


def test_bulk_retry_without_a_terminal_needs_yes(client, r, config, monkeypatch, capsys):
    pytest.importorskip("jobsvc.admin.bulk")
    failed_job(client, r, config)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["retry", "--state", "failed"]) == 2
    assert "--yes" in capsys.readouterr().err


def test_keys_create_list_revoke(r, config, capsys):
    from jobsvc.admin import apikeys

    assert main(["keys", "create", "ci", "--scope", "jobs:read", "--queue", "mail"]) == 0
    out = capsys.readouterr().out
    secret = next(ln.split()[1] for ln in out.splitlines() if ln.startswith("key:"))
    key = apikeys.verify(r, config.key_prefix, secret)
    assert key is not None and key.scopes == ("jobs:read",) and key.queues == ("mail",)
    assert secret not in str(r.hgetall(apikeys.records_key(config.key_prefix)))  # stored hashed
    main(["keys", "list"])
    assert key.id in capsys.readouterr().out
    assert main(["keys", "revoke", key.id]) == 0
    assert apikeys.verify(r, config.key_prefix, secret) is None


def test_cli_actions_are_audited(client, r, config):
    from jobsvc.admin import audit

    job_id = failed_job(client, r, config)
    main(["jobs", "retry", job_id])
    entries = audit.list_entries(r, config.key_prefix)[0]
    assert (entries[0].key_id, entries[0].action, entries[0].params["id"]) == ("cli", "jobs.retry", job_id)


def test_worker_lease_ttl_alone_brings_a_fitting_heartbeat():
    from jobsvc_cli.main import _config, build_parser

    args = build_parser().parse_args(["worker", "--lease-ttl", "2"])
    config = _config(args)
    assert (config.lease_ttl, config.heartbeat_interval) == (2.0, 2 / 3)
