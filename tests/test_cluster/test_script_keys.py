"""No Lua script spells a key name (issue 15, step one): every key comes from jobsvc/engine/keys.py's table
(FAMILIES) through KEYS. Redis Cluster routes a script by its KEYS alone, so a key a script made up itself could
live on another shard; and with one table, Python and Lua cannot disagree on a name.

The loader (jobsvc/engine/script_keys.py) finds the families each script uses (`K.<family>`, its own and that of
the _lib.lua helpers it calls), checks them against the script's `-- KEYS:` header, passes them in KEYS and puts
the names in place of K. These tests check the scripts' text (no prefix, no key literal) and the names Lua
builds."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobsvc.engine import script_keys, scripts
from jobsvc.engine.keys import FAMILIES, PREFIX, template

LUA_DIR = Path(__file__).resolve().parents[2] / "jobsvc" / "lua"

# The ways a script could still make a key name itself: the prefix (jobsvc's keys), a literal of RQ's keys
# ('rq:job:' .. id, 'rq:queues'), or a literal with a family's name and ':' joined to a name ('lane:' .. q).
# A lone ':' or '|' joins the parts of one name (an idempotency scope, a counter field), not a key; a literal with
# a space is a message.
SITE = re.compile(
    r"\bprefix\b"
    r"|(['\"])rq:[^'\"]*\1"
    r"|(['\"])[^'\"\s]*\w:[^'\"\s]*\2\s*\.\."
    r"|\.\.\s*(['\"]):[^'\"\s]*\w[^'\"\s]*\3")


def code_of(line: str) -> str:
    """The line without its `--` comment (a `--` inside a string literal stays)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote and line[i - 1] != "\\" else quote
        elif ch in "'\"":
            quote = ch
        elif line.startswith("--", i):
            return line[:i]
    return line


def key_building_sites(text: str) -> list[tuple[int, str]]:
    """(line number, matched text) of every place `text` (a Lua script) builds a key name."""
    return [(number, m.group(0)) for number, line in enumerate(text.splitlines(), start=1)
            for m in SITE.finditer(code_of(line))]


def test_the_scanner_finds_built_names_and_ignores_keys_and_comments():
    script = "\n".join([
        "local prefix = ARGV[1]",
        "local job = K.job(id)  -- from KEYS: fine",
        "redis.call('ZADD', x .. 'leases:' .. y, 1, id)",
        "redis.call('SMEMBERS', 'rq:queues')",
        "local k = key .. ':stats'",
        "local field = queue .. '|' .. event",
        "local scope = ns .. ':' .. key",
        "-- prefix .. 'in a comment' and 'rq:job:' .. x",
        "local s = 'a -- b' .. x  -- a string with dashes, not a key",
    ])
    assert [n for n, _ in key_building_sites(script)] == [1, 3, 4, 5]


def test_no_script_builds_a_key_name():
    sites = {path.name: key_building_sites(path.read_text()) for path in sorted(LUA_DIR.glob("*.lua"))}
    assert len(sites) > 30, f"no Lua scripts found in {LUA_DIR}"
    found = {name: s for name, s in sites.items() if s}
    assert not found, "scripts that build a key name instead of using K.<family> (keys.py):\n" + "\n".join(
        f"  {name}: line {n}: {text!r}" for name, s in found.items() for n, text in s)


def test_every_script_declares_the_families_it_uses():
    """The loader refuses a header that differs from the code (so it has checked every script by now); each
    family's template is what Keys renders, and a script given whole keys uses no family."""
    for name, families in scripts.FAMILIES_OF.items():
        header = re.search(r"^-- KEYS: (.*)$", (LUA_DIR / f"{name}.lua").read_text(), re.MULTILINE)
        assert header, f"{name}.lua has no `-- KEYS:` line"
        if families:
            assert header.group(1) == ", ".join(families)
        else:
            assert header.group(1) == "none" or header.group(1).startswith("[1]"), name
    assert scripts.FAMILIES_OF["complete"] and "leases" in scripts.FAMILIES_OF["claim"]
    assert not scripts.FAMILIES_OF["zpage_after"] and not scripts.FAMILIES_OF["leader_acquire"]


def test_a_header_that_differs_from_the_code_is_refused():
    helpers = script_keys.lib_helpers((LUA_DIR / "_lib.lua").read_text())
    body = "-- KEYS: job, leases\nlocal id = ARGV[2]\nredis.call('DEL', K.job(id))\nzrem_later(K.leases, id)\n"
    assert script_keys.families("ok", body, helpers) == ("job", "leases")
    # push_lane (a helper) uses K.lanes and lane_key, which uses K.lane and K.rq_queue: found through the calls.
    assert script_keys.families("h", "-- KEYS: lane, lanes, rq_queue\npush_lane(q, 1, id)\n", helpers) == (
        "lane", "lanes", "rq_queue")
    with pytest.raises(ValueError, match="its header says"):
        script_keys.families("bad", body.replace("-- KEYS: job, leases", "-- KEYS: job, leases, runs"), helpers)
    with pytest.raises(ValueError, match="no key family"):
        script_keys.families("bad", "-- KEYS: nope\nreturn K.nope\n", helpers)


def test_k_is_replaced_in_code_and_left_in_comments():
    used = ("count", "job", "lane", "leases")
    text = "\n".join(["local k = K.job(ARGV[2]) -- K.job(id) in a comment",
                      "redis.call('ZADD', K.leases, 1, K.job(f(a, b)))",
                      "local l = K.lane(q, tonumber(p) or 5)",
                      "add_counter(K.count(g), 'n', 1)",
                      "local r = K.runs(id)"])
    assert script_keys.expand(text, used).split("\n") == [
        "local k = (KEYS[2] .. (ARGV[2])) -- K.job(id) in a comment",
        "redis.call('ZADD', KEYS[4], 1, (KEYS[2] .. (f(a, b))))",
        "local l = (KEYS[3] .. (q) .. ':' .. (tonumber(p) or 5))",
        "add_counter(name_of(KEYS[1], (g), ''), 'n', 1)",
        "local r = error('key family runs was not passed to this script')"]
    with pytest.raises(ValueError, match="takes 2 name"):
        script_keys.expand("local l = K.lane(q)", used)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_key_named_in_lua_is_the_key_python_names(r, family):
    """K.<family>(names) in Lua, from what the loader passes in KEYS and puts in place of K, and Keys's template
    in Python name the same key, for every family (twice: the second from name_of's memo where it applies)."""
    names = ["a:b", "7"][:FAMILIES[family].count("%s")]
    lib = scripts.SOURCES["complete"].split("local function script_body()")[0]  # its library has name_of
    k = f"K['{family}']" + (f"({', '.join(f'ARGV[{i + 1}]' for i in range(len(names)))})" if names else "")
    probe = lib + script_keys.expand(f"return {{{k}, {k}}}", (family,))
    lua = r.eval(probe, 1, *script_keys.keys_of((family,), "p:"), *names)
    assert [v.decode() for v in lua] == [template(family, "p:") % tuple(names)] * 2
    assert PREFIX not in template(family, "p:")


def test_each_script_carries_only_the_library_helpers_it_can_run(r):
    """Defining a helper costs every call of a script a closure: a script's source holds those it names, and
    theirs (progress.lua: the fence, not the registries)."""
    lib = (LUA_DIR / "_lib.lua").read_text()
    every = lib.count("\nlocal function ")
    progress = scripts.SOURCES["progress"]
    assert "local function fence(" in progress and "local function registry_of(" not in progress
    assert scripts.SOURCES["enqueue"].count("local function ") < every / 2
    assert "local function flush_counters(" in progress  # run after every script
    scripts.load_all(r)  # and each one compiles
