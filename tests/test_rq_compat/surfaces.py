"""Every surface that shows job counts, read as its user reads it: RQ's own `rq info` (the real command), `jobsvc
stats` and `jobsvc info` (the command line, parsed), `Client.stats`, the API (`/jobs/stats`, `/queues`) and the
dashboard's overview. `assert_counts_agree` is issue 12's "one truth for counts" (tests/test_rq_compat/
test_counts.py, test_mixed_fleet.py)."""
from __future__ import annotations

import io
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import redis

from jobsvc import Client
from jobsvc.engine.keys import Keys
from jobsvc.engine.states import State
from jobsvc.engine.stats import read_counts
from jobsvc_cli.main import INFO_COLUMNS, main
from tests.test_rq_compat.gauge_check import assert_gauges_exact

RQ_CLI = str(Path(sys.executable).parent / "rq")  # RQ's own command, installed beside this Python
STATES = [s.value for s in State]
# What `rq info` shows of a queue: its list, StartedJobRegistry ("executing"), finished and failed registries.
RQ_STATES = ("queued", "running", "completed", "failed")
ADMIN_KEY = "test-admin-key-0123456789abcdef"

Table = dict[str, dict[str, int]]  # queue -> state -> jobs


def rq_cli(redis_url: str, *args: str) -> str:
    """Run RQ's own command line against the test Redis; its output."""
    done = subprocess.run([RQ_CLI, *args, "--url", redis_url], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def rq_info(redis_url: str) -> Table:
    """`rq info --only-queues --raw`, parsed (RQ cleans its registries first, as it always does)."""
    line = re.compile(r"^queue (\S+) (\d+), (\d+) executing, (\d+) finished, (\d+) failed$")
    out: Table = {}
    for text in rq_cli(redis_url, "info", "--only-queues", "--raw").splitlines():
        m = line.match(text.strip())
        if m:
            out[m[1]] = dict(zip(RQ_STATES, (int(v) for v in m.groups()[1:]), strict=True))
    return out


def _jobsvc(redis_url: str, *argv: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        assert main([*argv, "--url", redis_url]) == 0
    return out.getvalue()


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip() and not set(line.strip()) <= {"-", " "}]


def jobsvc_stats(redis_url: str) -> Table:
    """`jobsvc stats --by queue`, parsed."""
    header, *rows = _rows(_jobsvc(redis_url, "stats", "--by", "queue"))
    assert header == ["queue", *STATES]
    return {row[0]: {s: int(n) for s, n in zip(STATES, row[1:], strict=True)} for row in rows}


def jobsvc_info(redis_url: str) -> Table:
    """`jobsvc info`, parsed: its per-state columns (its "finished" is jobsvc's completed)."""
    header, *rows = _rows(_jobsvc(redis_url, "info"))
    assert header == ["queue", *(title for title, _ in INFO_COLUMNS)]
    states = [col.removesuffix("_now") for _, col in INFO_COLUMNS if col.endswith("_now")]
    # strict=False: the per-state columns come first; the event counts after them are not states
    return {row[0]: {s: int(n) for s, n in zip(states, row[1:], strict=False)} for row in rows}


def client_stats(client: Client, queues: list[str]) -> Table:
    out = {}
    for q in queues:
        stats = client.stats(q)
        out[q] = {s: stats[f"{s}_now"] for s in STATES}
    return out


def api_tables(app: Any) -> dict[str, Table]:
    """GET /api/v1/jobs/stats (by queue, and its total), GET /api/v1/queues, and the dashboard overview."""
    from admin_api.auth import ADMIN_ID, Principal
    from admin_api.dashboard import data

    http = app.test_client()
    headers = {"X-Admin-Key": ADMIN_KEY}
    stats = http.get("/api/v1/jobs/stats", headers=headers)
    queues = http.get("/api/v1/queues", headers=headers)
    assert stats.status_code == 200 and queues.status_code == 200
    with app.app_context():
        overview = data.overview(Principal(ADMIN_ID, ("jobs:admin",)))
    return {"api /jobs/stats": stats.get_json()["queue"],
            "api /jobs/stats total": {"*": stats.get_json()["total"]},
            "api /queues": {q["name"]: q["counts"] for q in queues.get_json()["queues"]},
            "dashboard": {row["name"]: row["counts"] for row in overview["queues"]},
            "dashboard totals": {"*": overview["totals"]}}


def assert_counts_agree(r: redis.Redis, redis_url: str, client: Client, app: Any, breakdowns: bool = True) -> Table:
    """Every surface shows the same jobs per state on every queue, and `rq info` the same for the states it
    shows. breakdowns: also the per-group figures (by namespace and function, the gauges plus the jobs they do
    not count yet) add up to the queue counts, and the gauges equal a recount of the jobs jobsvc counts: true
    at rest, and after RQ's own tools moved jobs once the integrity pass has run. Returns the counts."""
    rq_view = rq_info(redis_url)  # first: RQ cleans its registries before it counts, as it always does
    keys = Keys(client.config.key_prefix)
    truth = read_counts(r, keys)
    queues = sorted(truth.queues)
    tables = {"jobsvc stats": jobsvc_stats(redis_url), "jobsvc info": jobsvc_info(redis_url),
              "Client.stats": client_stats(client, queues), **api_tables(app)}
    expected = {q: truth.queues[q] for q in queues}
    for name, table in tables.items():
        if name.endswith(("total", "totals")):
            assert table == {"*": truth.total()}, name
        else:
            assert table == expected, f"{name}: {table} != {expected}"
    assert set(rq_view) <= set(expected), (rq_view, expected)
    for q, row in rq_view.items():
        seen_by_rq = {s: expected[q][s] for s in RQ_STATES}
        # RQ reads its own list: jobs jobsvc's API enqueued at another priority wait in lanes RQ does not know.
        seen_by_rq["queued"] -= sum(r.llen(keys.lane(q, int(p))) for p in r.smembers(keys.lanes(q)))
        assert seen_by_rq == row, f"rq info, queue {q}: {row} != {expected[q]}"
    if breakdowns:
        total = truth.total()
        for by in ("namespace", "function"):
            summed = {s: sum(row[s] for row in truth.by(by).values()) for s in STATES}
            assert summed == total, f"by {by}: {summed} != {total}"
        assert_gauges_exact(r, keys.prefix)
    return expected
