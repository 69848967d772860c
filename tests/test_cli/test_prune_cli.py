"""`jobsvc prune`: several states (comma-separated), an age in days, quarantined jobs kept unless named."""
from __future__ import annotations

import pytest

from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases
from jobsvc.maintenance.reaper import Reaper
from jobsvc_cli.main import main
from tests.conftest import redis_ms

NOOP = "tests.jobfuncs.noop"
KEYS = Keys()
DAY_MS = 86_400_000


pytestmark = pytest.mark.usefixtures("redis_env")  # REDIS_URL for the CLI


@pytest.fixture
def ended(client, r, config):
    """A failed job ended 31 days ago, a quarantined job, a cancelled job."""
    failed = client.enqueue(NOOP, max_attempts=1).id
    leases = Leases(r, config)
    assert leases.fail(leases.claim(["default"], "w"), RuntimeError("boom"), retryable=False) == "failed"
    r.hset(KEYS.job(failed), "js_ended_ms", redis_ms(r) - 31 * DAY_MS)
    cfg = config.with_(max_lease_losses=1)
    quarantined = client.enqueue(NOOP).id
    Leases(r, cfg).claim(["default"], "w")
    r.zadd(KEYS.leases, {quarantined: 0})  # its lease is long gone
    assert Reaper(r, cfg).run_once().quarantined == 1
    cancelled = client.enqueue(NOOP).id
    client.cancel(cancelled)
    return [failed, quarantined, cancelled]


def alive(r, ids):
    return [bool(r.exists(KEYS.job(j))) for j in ids]


def test_prune_without_a_state_keeps_quarantined_jobs(r, ended):
    assert main(["prune", "--yes"]) == 0
    assert alive(r, ended) == [False, True, False]


def test_prune_takes_several_states_and_days(r, ended):
    assert main(["prune", "--yes", "--state", "failed,quarantined", "--older-than-days", "30"]) == 0
    assert alive(r, ended) == [False, True, True]
    assert main(["prune", "--yes", "--state", "failed,quarantined"]) == 0
    assert alive(r, ended) == [False, False, True]


def test_prune_with_both_ages_is_refused_and_changes_nothing(r, ended, capsys):
    assert main(["prune", "--yes", "--older-than", "60", "--older-than-days", "1"]) != 0
    assert "not both" in capsys.readouterr().err
    assert alive(r, ended) == [True, True, True]
