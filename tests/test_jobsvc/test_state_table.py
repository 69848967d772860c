"""The state machine in jobsvc/engine/states.py (EDGES) is the one declaration of every job state change; this checks
it against what the Lua scripts say (their header's `from -> to` clauses) and do (their `js_state` writes and
job deletions), both ways, and that docs/states.md carries the table generated from it.

How a script's writes are read: a literal state after `'js_state'` (`HSET ... 'js_state', 'queued'`, also
`stop and 'failed' or 'cancelled'`, and enqueue.lua's `hargs[...] = 'js_state'; hargs[...] = 'queued'`), and the
_lib.lua helpers that write one (make_ready, make_scheduled, and those that call them, found here by reading
_lib.lua). A line that writes a state held in a variable says which in a trailing `-- js_state: a | b` comment
(`-- js_state: unchanged` for a repair that rewrites the state the job is in). A script deletes jobs when it
calls collect_deletion or DELs the hash `K.job(id)` it holds in `key`."""
from __future__ import annotations

import re
from functools import cache

import pytest

from jobsvc import docgen
from jobsvc.engine.scripts import LUA_DIR
from jobsvc.engine.states import EDGES, PRUNABLE, RETRYABLE, RQ, TRANSITIONS, TTL_STATES, Node, Outside, State

_TOKEN = r"\(new\)|\(deleted\)|\b(?:" + "|".join(s.value for s in State) + r")\b"
_LIST = rf"(?:{_TOKEN})(?:\s*\|\s*(?:{_TOKEN}))*"
_CLAUSE = re.compile(rf"({_LIST})\s*->\s*({_LIST})")
_NODES: dict[str, Node] = {n.value: n for n in (*State, *Outside)}
_STATE_WORD = re.compile(r"'(" + "|".join(s.value for s in State) + r")'")
# 'js_state' then its value: after a comma, or after `; list[...] =` (enqueue.lua builds its HSET that way).
_JS_STATE = re.compile(r"'js_state'\s*(?:,|;\s*\w+\[[^\]]*\]\s*=)\s*([^,;)}]+)")
_ANNOTATION = re.compile(r"js_state:\s*(.+)$")
_JOB_KEY = re.compile(r"local key = K\.job\(id\)")


def _scripts() -> list[str]:
    return sorted(p.name for p in LUA_DIR.glob("*.lua") if p.name != "_lib.lua")


def _split(line: str) -> tuple[str, str]:
    """(code, comment) of a Lua line: the comment starts at the first `--` outside a string."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif line.startswith("--", i):
            return line[:i], line[i + 2:]
    return line, ""


def _literal_writes(code: str) -> set[str] | None:
    """States the code writes to js_state; None when a value is not a literal (a variable)."""
    out: set[str] = set()
    for value in _JS_STATE.findall(code):
        words = _STATE_WORD.findall(value)
        if not words and "'" not in value:
            return None
        out.update(words)
    return out


@cache
def _helpers() -> dict[str, frozenset[str]]:
    """_lib.lua function -> the states it writes, itself or through the helpers it calls."""
    bodies: dict[str, str] = {}
    for chunk in re.split(r"\n(?=local function )", (LUA_DIR / "_lib.lua").read_text()):
        m = re.match(r"local function (\w+)\(", chunk)
        if m:
            bodies[m.group(1)] = "\n".join(_split(line)[0] for line in chunk.splitlines()[1:])
    writes = {name: set(_literal_writes(body) or ()) for name, body in bodies.items()}
    changed = True
    while changed:
        changed = False
        for name, body in bodies.items():
            for other in bodies:
                if other != name and re.search(rf"\b{other}\(", body) and not writes[other] <= writes[name]:
                    writes[name] |= writes[other]
                    changed = True
    return {name: frozenset(states) for name, states in writes.items() if states}


def written(script: str) -> set[Node]:
    """What the script's code moves jobs into: the states it writes, and (deleted) if it deletes jobs."""
    out: set[Node] = set()
    text = (LUA_DIR / script).read_text()
    for number, line in enumerate(text.splitlines(), 1):
        code, comment = _split(line)
        note = _ANNOTATION.search(comment)
        if note:
            words = note.group(1).split("(")[0].strip()  # a parenthesis may say where the states come from
            if words != "unchanged":
                out.update(State(w.strip()) for w in words.split("|"))
            continue
        found = _literal_writes(code)
        assert found is not None, (f"{script}:{number} writes js_state from a variable: say which states "
                                   "in a trailing `-- js_state: a | b` comment")
        out.update(State(s) for s in found)
        for helper, states in _helpers().items():
            if re.search(rf"\b{helper}\(", code):
                out.update(State(s) for s in states)
    code = "\n".join(_split(line)[0] for line in text.splitlines())
    deletes = re.search(r"redis\.call\('DEL', (key\b|unpack\(job_keys\()", code)
    if "collect_deletion(" in code or (_JOB_KEY.search(code) and deletes):
        out.add(Outside.DELETED)
    return out


def header_edges(script: str) -> set[tuple[Node, Node]]:
    """The `from -> to` clauses of the script's header (its comment lines before `-- KEYS:`)."""
    lines = []
    for line in (LUA_DIR / script).read_text().splitlines():
        if not line.startswith("--") or line.startswith("-- KEYS:"):
            break
        lines.append(line[2:])
    header = " ".join(lines)
    edges = set()
    for sources, targets in _CLAUSE.findall(header):
        for src in re.split(r"\s*\|\s*", sources):
            for dst in re.split(r"\s*\|\s*", targets):
                if src != dst:
                    edges.add((_NODES[src], _NODES[dst]))
    return edges


def table_edges(script: str) -> set[tuple[Node, Node]]:
    return {edge for edge, scripts in TRANSITIONS.items() if script in scripts}


def test_the_helpers_that_write_a_state_are_found():
    helpers = _helpers()
    assert helpers["make_ready"] == {"queued"} and helpers["make_scheduled"] == {"scheduled"}
    assert helpers["release_dependents"] == {"queued"}  # through ready_again and make_ready


@pytest.mark.parametrize("script", _scripts())
def test_a_script_writes_exactly_the_targets_the_table_gives_it(script):
    targets = {dst for _, dst in table_edges(script)}
    assert written(script) == targets, (f"{script}: its code moves jobs into {sorted(written(script))}, "
                                        f"the table into {sorted(targets)}")


@pytest.mark.parametrize("script", _scripts())
def test_a_script_header_names_exactly_the_edges_the_table_gives_it(script):
    assert header_edges(script) == table_edges(script)


def test_every_script_in_the_table_exists():
    named = {s for scripts in TRANSITIONS.values() for s in scripts} - {RQ}
    assert named <= set(_scripts())


def test_an_edge_made_by_rq_names_the_script_that_follows_it():
    for edge, scripts in TRANSITIONS.items():
        if RQ in scripts:
            assert "sweep_orphans.lua" in scripts, edge


def test_edges_are_well_formed():
    for row in EDGES:
        assert Outside.DELETED not in row.sources and Outside.NEW not in row.targets
        assert row.scripts and row.when and "|" not in row.when  # a markdown table cell


def test_every_state_is_entered_and_left_for_another_state():
    entered = {dst for _, dst in TRANSITIONS}
    left = {src for src, dst in TRANSITIONS if dst != Outside.DELETED} - {Outside.NEW}
    assert entered - {Outside.DELETED} == left == set(State)
    # Only RQ's own tools take a completed job back to its queue: jobsvc's retry takes failed ones.
    assert TRANSITIONS[(State.COMPLETED, State.QUEUED)] == (RQ, "sweep_orphans.lua")


def test_the_derived_state_lists():
    assert RETRYABLE == (State.FAILED, State.QUARANTINED, State.CANCELLED)
    assert PRUNABLE == (State.COMPLETED, State.FAILED, State.QUARANTINED, State.CANCELLED)
    assert TTL_STATES == (State.COMPLETED, State.FAILED, State.CANCELLED)
    assert set(RETRYABLE) == {s for s in State if "bulk_requeue.lua" in TRANSITIONS.get((s, State.QUEUED), ())}


def test_the_api_and_bulk_operations_use_the_derived_lists():
    from admin_api import schemas
    from jobsvc.admin.bulk import operations as bulk

    values = [s.value for s in RETRYABLE], [s.value for s in PRUNABLE]
    assert values == (schemas.RETRYABLE, schemas.PRUNABLE)
    assert (bulk.RETRYABLE, bulk.PRUNABLE, bulk.TTL_STATES) == (RETRYABLE, PRUNABLE, TTL_STATES)


def test_docs_states_md_carries_the_generated_table():
    text = docgen.STATES_MD.read_text()
    assert docgen.with_section(text, docgen.states_markdown()) == text, \
        "docs/states.md is out of date: run python -m jobsvc.docgen"


def test_docgen_check_and_write(tmp_path, monkeypatch, capsys):
    page = tmp_path / "states.md"
    page.write_text(f"# prose kept\n\n{docgen.BEGIN}\nstale\n{docgen.END}\n\nmore prose\n")
    monkeypatch.setattr(docgen, "STATES_MD", page)
    assert docgen.main(["--check"]) == 1
    assert docgen.main([]) == 0
    assert docgen.main(["--check"]) == 0
    text = page.read_text()
    assert text.startswith("# prose kept\n\n") and text.endswith("\n\nmore prose\n")
    assert "| `queued` | `running` | `claim.lua` |" in text
    with pytest.raises(ValueError, match="no generated section"):
        docgen.with_section("no markers", docgen.states_markdown())
