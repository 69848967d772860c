"""The one reply contract of the Lua scripts (jobsvc/engine/replies.py): every code is named once, each script uses the
names, no Python code reads a code as a bare number, and check() maps every code to its one exception."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobsvc.admin.bulk import IntegrityWalk
from jobsvc.engine import replies, scripts
from jobsvc.engine.functions import Registry
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases
from jobsvc.engine.replies import Reply
from jobsvc.errors import AlreadyExists, Conflict, LeaseLost, NotFound, ScriptError, WrongState

ROOT = Path(__file__).resolve().parents[2]
NOOP = "tests.jobfuncs.noop"
# A script's reply code read as a number: `int(reply[0]) == -3`, `code == -4`, `int(settled[0]) != 0`,
# `reply[0] >= 0`, `reply == [-1]`.
BARE_CODE = re.compile(r"\[0\]\)?\s*(?:==|!=|>=|<=|<|>)\s*-?\d|\bcode\s*(?:==|!=)\s*-?\d|==\s*\[-\d")


def _python_files():
    for package in ("jobsvc", "workers", "admin_api", "jobsvc_cli"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path != ROOT / "jobsvc" / "replies.py":
                yield path


def _lua_code(path: Path) -> list[str]:
    return [line.split("--", 1)[0] for line in path.read_text().splitlines()]


def test_no_python_module_reads_a_reply_code_as_a_number():
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in _python_files()
             for n, line in enumerate(path.read_text().splitlines(), 1) if BARE_CODE.search(line)]
    assert found == []


def test_the_bare_code_pattern_finds_what_it_is_for():
    for line in ("if int(reply[0]) == -3:", "if code == -4:", "if int(settled[0]) != 0:", "if int(reply[0]) >= 0:",
                 "assert late == [-1]"):
        assert BARE_CODE.search(line), line
    for line in ("if v < -1:", "if self.timeout != -1", "scripts.check(reply, job_id)"):
        assert not BARE_CODE.search(line), line


def test_every_code_is_a_lua_constant_of_every_script_that_uses_the_library():
    for name, source in scripts.SOURCES.items():
        if "job_key(" in source:  # prepended with _lib.lua, after the constants
            for code in Reply:
                assert f"local {code.name} = {code.value}\n" in source, (name, code)


def test_lua_scripts_reply_with_names_never_numbers():
    for path in sorted((ROOT / "jobsvc" / "lua").glob("*.lua")):
        code = _lua_code(path)
        assert not any(re.search(r"\{\s*-\d", line) and "return" in line for line in code), path.name
        header = path.read_text().split("\n-- ARGV", 1)[-1].split("\nlocal ", 1)[0]
        if "{OK" in header:  # a script that replies with a code: each return names one
            for line in code:
                m = re.search(r"return\s*\{\s*([^,}]*)", line)
                if m:
                    assert m.group(1).strip() in Reply.__members__, (path.name, line)


@pytest.mark.parametrize(("code", "exc", "state"), [
    (Reply.NOT_FOUND, NotFound, None),
    (Reply.LEASE_LOST, LeaseLost, "completed"),
    (Reply.WRONG_STATE, WrongState, "running"),
    (Reply.CONFLICT, Conflict, None),
    (Reply.EXISTS, AlreadyExists, None),
])
def test_check_maps_each_code_to_its_exception(code, exc, state):
    with pytest.raises(exc) as err:
        scripts.check([int(code), (state or "").encode() or 3], "42")
    assert type(err.value) is exc
    assert err.value.details() == ({"state": state} if state else {})


def test_check_messages_name_the_thing():
    assert str(replies.error(Reply.NOT_FOUND, "function a/b")) == "no function a/b"
    assert str(replies.error(Reply.WRONG_STATE, "job 42", "running")) == "job 42 is running"
    assert str(replies.error(Reply.EXISTS, "schedule s")) == "schedule s already exists"
    assert "lease" in str(replies.error(Reply.LEASE_LOST, "job 42", None))


def test_ok_returns_the_reply_and_anything_unexpected_is_a_script_error():
    assert scripts.check([0, b"failed"]) == [0, b"failed"]
    for reply in ([-99], [], None, b"x", [7, 1]):
        with pytest.raises(ScriptError):
            scripts.check(reply, "42")


def test_every_code_comes_back_from_a_real_script(client, r, config):
    k = Keys(config.key_prefix)
    with pytest.raises(NotFound, match="no job nope"):
        client.cancel("nope")
    job = client.enqueue(NOOP)
    with pytest.raises(WrongState) as err:
        client.requeue(job.id)
    assert err.value.state == "queued" and type(err.value) is WrongState
    lease = Leases(r, config).claim(["default"], "w")
    with pytest.raises(LeaseLost) as lost:
        # complete.lua answers one reply per job it was given
        scripts.check(scripts.call(r, "complete", (), (k.prefix, "w", 0, 1, job.id, "stale", "", "", 0, 0, ""))[0],
                      job.id)
    assert lost.value.state == "running"
    Leases(r, config).complete(lease, None, "w", 0.0, 0.0)
    reg = Registry(client)
    reg.register("ops", "f", NOOP)
    with pytest.raises(AlreadyExists):
        reg.register("ops", "f", NOOP, replace_existing=False)
    with pytest.raises(Conflict):  # a stored version other than the one read
        scripts.check(scripts.call(r, "function_save", (), (k.prefix, "ops", "f", "{}", "1", "update", 99, "", 1)),
                      what="function ops/f")
    with pytest.raises(LeaseLost):  # a notification claim that is not the current one
        scripts.check(scripts.call(r, "notify_settle", (), (k.prefix, "42", "no-claim", "delivered", 0, "")))


def test_a_function_that_keeps_changing_is_a_conflict_not_a_loop(client, monkeypatch):
    reg = Registry(client)
    reg.register("ops", "f", NOOP)
    saves = []

    def always_moved(fn, mode, expected_version=None):
        saves.append(expected_version)
        raise Conflict("moved")

    monkeypatch.setattr(reg, "_save", always_moved)
    with pytest.raises(Conflict, match="keeps changing"):
        reg.patch("ops", "f", timeout=5)
    assert len(saves) == 10


def test_a_queue_too_big_to_recount_in_one_step_is_recounted_in_chunks(client, r, config):
    for _ in range(3):
        client.enqueue(NOOP)
    group = f"default|default|{NOOP}"
    r.hincrby(Keys(config.key_prefix).count(group), "queued", 5)
    assert scripts.call(r, "sweep_recount", (), (config.key_prefix, 0, "default", 2, 0)) == []  # over max
    walk = IntegrityWalk(r, config, fix=True, recount_max=2)
    for _ in walk.steps():
        pass
    assert walk.report.counts["gauge_drift"] == 1
    assert r.hget(Keys(config.key_prefix).count(group), "queued") == b"3"


def test_architecture_md_lists_every_code():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for code in Reply:
        assert f"| `{code.value}` | `{code.name}` |" in doc, code
