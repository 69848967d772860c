"""docs/migrating.md maps each seed API's operations to jobsvc's calls (issue 16). Every jobsvc call its tables
name, outside rows marked in progress, must be a route the app serves with that method: a renamed or removed
endpoint fails here instead of misleading a migrating operator."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis
from flask import Flask

from admin_api import create_app
from jobsvc import Config

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrating.md"
JOBSVC_COLUMN = "jobsvc's call"
IN_PROGRESS = "(issue 16, in progress)"
# A call in a cell: `METHOD /path...`; the path ends at the closing backtick, a space or a query string.
CALL = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s?]*)")
PARAM = re.compile(r"\{[^}/]*\}|<[^>/]*>")


def _cells(line: str) -> list[str]:
    """The cells of a markdown table row (no cell of the page holds an escaped pipe)."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def table_rows(text: str) -> list[tuple[str, str]]:
    """(jobsvc's call cell, whole row) of every row of every table whose header has a jobsvc's-call column."""
    rows: list[tuple[str, str]] = []
    column: int | None = None
    for line in text.splitlines():
        if not line.lstrip().startswith("|"):
            column = None  # a table ends at the first line that is not a row
            continue
        cells = _cells(line)
        if column is None:
            column = cells.index(JOBSVC_COLUMN) if JOBSVC_COLUMN in cells else -1
            continue
        if column < 0 or set(line.replace("|", "").strip()) <= set("-: "):
            continue  # another kind of table, or the header's separator line
        rows.append((cells[column], line))
    return rows


def named_calls(text: str) -> list[tuple[str, str]]:
    """(method, path) of each jobsvc call the tables name, rows in progress left out."""
    return [(m.group(1), m.group(2)) for cell, row in table_rows(text) if IN_PROGRESS not in row
            for m in CALL.finditer(cell)]


def _shape(path: str) -> str:
    """A path with every parameter (`{id}` in the page, `<job_id>` in Flask) as `{}`."""
    return PARAM.sub("{}", path.rstrip("/") or "/")


def routes(app: Flask) -> set[tuple[str, str]]:
    return {(method, _shape(rule.rule)) for rule in app.url_map.iter_rules() for method in rule.methods or ()}


def missing(app: Flask, calls: list[tuple[str, str]]) -> list[str]:
    served = routes(app)
    return [f"{method} {path}" for method, path in calls if (method, _shape(path)) not in served]


@pytest.fixture
def app(fake_r: redis.Redis) -> Flask:
    return create_app(Config(redis_url="redis://127.0.0.1:1/0"), fake_r, admin_key="migrating-doc-test-key")


def test_every_call_in_the_tables_is_a_route(app: Flask) -> None:
    calls = named_calls(DOC.read_text())
    assert len(calls) >= 40, "the tables of docs/migrating.md were not found or lost their calls"
    assert not missing(app, calls), f"docs/migrating.md names calls the app does not serve: {missing(app, calls)}"


def test_each_seed_has_a_table() -> None:
    text = DOC.read_text()
    for seed in ("000", "001", "002", "003", "004"):
        assert re.search(rf"^## .*\({seed}\)$", text, re.MULTILINE), f"no section for seed {seed}"
    assert len(re.findall(rf"^\|.*{re.escape(JOBSVC_COLUMN)}", text, re.MULTILINE)) == 5


def test_the_check_catches_a_route_that_does_not_exist(app: Flask) -> None:
    page = ("| operation | seed's call | jobsvc's call | difference |\n|---|---|---|---|\n"
            "| a | `x` | `POST /api/v1/jobs/{id}/rewind` | none |\n"
            "| b | `x` | `GET /api/v1/jobs/{id}/cancel` | wrong method |\n"
            "| c | `x` | `POST /api/v1/jobs/{id}/trigger` (issue 16, in progress) | planned |\n"
            "| d | `x` | `GET /api/v1/jobs/{id}?include_result=true` | served |\n")
    assert missing(app, named_calls(page)) == ["POST /api/v1/jobs/{id}/rewind", "GET /api/v1/jobs/{id}/cancel"]
