"""The CLI's operator commands on a single Redis and on the suite's Redis Cluster (a redis+cluster:// URL), through
one parametrized fixture (issue 15): listing, a job by id, bulk retry with a dry run, prune, stats, info, API keys,
the integrity sweep, schedules. Each reaches the core's cluster paths (listing merge, bulk per queue, the id
directory)."""
from __future__ import annotations

import json

import pytest

from jobsvc.engine.keys import template
from jobsvc_cli.main import main
from tests.test_cluster import test_core_both
from tests.test_cluster.test_core_both import PREFIX, WORKER

backend = test_core_both.backend  # the parametrized fixture: a single Redis, the suite's cluster


@pytest.fixture
def cli(backend, capsys):
    """Run `jobsvc <args> --url <this backend's URL>`: (exit code, stdout)."""
    url = backend.config.redis_url
    if backend.cluster:
        url = url.replace("redis://", "redis+cluster://")

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main([*args[:1], "--url", url, *args[1:]])
        return code, capsys.readouterr().out
    return run


def test_the_operator_commands_see_and_act_on_every_queue(backend, cli):
    client, leases, queues = backend.client(), backend.leases(), backend.queues
    ids = [client.enqueue("tests.jobfuncs.add", i, 1, queue=q).id for i, q in enumerate(queues[:3])]
    failing = client.enqueue("tests.jobfuncs.boom", queue=queues[4], max_attempts=1).id
    (lease,) = leases.claim_many([queues[4]], WORKER, count=1)
    assert leases.fail(lease, "boom", retryable=False, worker=WORKER) == "failed"

    code, out = cli("jobs", "list", "--json", "--limit", "2")
    page = json.loads(out)
    code2, out2 = cli("jobs", "list", "--json", "--limit", "10", "--cursor", page["next_cursor"])
    assert (code, code2) == (0, 0)
    listed = [j["id"] for j in page["jobs"] + json.loads(out2)["jobs"]]
    assert sorted(listed) == sorted([*ids, failing])  # every queue's, each once, across the cursor

    code, out = cli("jobs", "get", failing, "--json")
    assert code == 0 and json.loads(out)["state"] == "failed"
    assert cli("retry", "--state", "failed", "--dry-run")[1].startswith("retry: 1 job(s) match")
    code, out = cli("retry", "--state", "failed", "--yes")
    assert code == 0 and out.endswith("retry: 1 changed, 0 skipped (moved on meanwhile)\n")
    assert backend.conn.hget(backend.key("job", queues[4], failing), "status") == b"queued"

    assert cli("jobs", "cancel", ids[1]) == (0, f"cancel: {ids[1]}\n")
    code, out = cli("info")
    assert code == 0 and all(q in out for q in (*queues[:3], queues[4]))
    code, out = cli("stats")
    assert code == 0 and queues[0] in out
    assert cli("prune", "--state", "cancelled", "--dry-run")[1].startswith("prune: 1 job(s) match")
    assert cli("sweep")[0] == 0  # nothing to repair

    code, out = cli("keys", "create", "ci", "--scope", "jobs:read")
    assert code == 0
    key_id = out.split()[1]
    assert "ci" in cli("keys", "list")[1]
    assert cli("keys", "revoke", key_id) == (0, f"revoked: {key_id}\n")
    # Each action above left its audit entry, under the key id `cli` (the admin slot on a cluster).
    audit = template("audit", PREFIX, "" if backend.cluster else None)
    assert backend.conn.xlen(audit) >= 4


def test_schedules_through_the_cli(backend, cli):
    code, _ = cli("schedules", "create", "--id", "nightly", "--cron", "0 3 * * *", "--function", "tests.jobfuncs.noop",
                  "--queue", backend.queues[2])
    assert code == 0
    code, out = cli("schedules", "list")
    assert code == 0 and "nightly" in out


def test_the_functions_registry_through_the_cli(backend, cli):
    q = backend.queues[3]
    assert cli("functions", "register", "media/resize", "tests.jobfuncs.add", "--queue", q)[0] == 0
    assert cli("functions", "disable", "media/resize")[0] == 0
    code, out = cli("functions", "list", "--json")
    assert code == 0 and "media" in out and "resize" in out
    assert cli("functions", "enable", "media/resize")[0] == 0
    assert cli("functions", "delete", "media/resize")[0] == 0
