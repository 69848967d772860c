"""Inventory of what keeps jobsvc's Lua scripts off Redis Cluster (issue 15): every place a script builds a key
name itself instead of reading it from KEYS. Redis Cluster routes a script by its KEYS alone, so a key the
script makes up may live on another shard (CROSSSLOT, or a silent write to the wrong node's slot)."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

LUA_DIR = Path(__file__).resolve().parents[2] / "jobsvc" / "lua"

# _lib.lua's helpers that return key names, and the ways a script makes one: the prefix (jobsvc's keys) or a
# key literal such as 'rq:job:' (RQ's) concatenated with a name, or the prefix handed to a helper that does so.
# A definition (`local function job_key(...)`) is not a site; the concatenation in its body is.
KEY_HELPERS = ("job_key", "dependents_key", "dependencies_key", "lane_key", "registry_of", "terminal_registry",
               "job_keys", "dependency_keys")
SITE = re.compile(
    r"(?<!function )\b(?:" + "|".join(KEY_HELPERS) + r")\s*\("      # a key helper called
    r"|(?<!function )\bname_of\s*\(\s*prefix\b"                      # name_of(prefix, ...)
    r"|(?<!function )\b\w+\s*\(\s*prefix\s*[,)]"                     # the prefix handed to a helper
    r"|\bprefix\s*\.\."                                              # prefix .. 'name'
    r"|(['\"])(?:rq|jobsvc):[^'\"]*\1\s*\.\.")                       # 'rq:job:' .. id


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
        "local job = KEYS[1]  -- read from KEYS: fine",
        "redis.call('ZADD', prefix .. 'leases', 1, id)",
        "redis.call('HGET', job_key(id), 'status')",
        "make_ready(prefix, id, queue)",
        "local k = 'rq:results:' .. id",
        "local function job_key(id) return KEYS[2] end",
        "-- prefix .. 'in a comment' and job_key(x)",
        "local s = 'a -- b' .. x  -- a string with dashes, not a key",
    ])
    assert [n for n, _ in key_building_sites(script)] == [3, 4, 5, 6]


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="issue 15: scripts build key names in Lua")
def test_no_script_builds_a_key_name():
    sites = {path.name: key_building_sites(path.read_text()) for path in sorted(LUA_DIR.glob("*.lua"))}
    counts = Counter({name: len(found) for name, found in sites.items() if found})
    assert sites, f"no Lua scripts found in {LUA_DIR}"
    # Per script: how many, and the first one, so the message is a work list.
    report = "\n".join(f"  {name}: {n} (first: line {sites[name][0][0]}, {sites[name][0][1]!r})"
                       for name, n in counts.most_common())
    assert not counts, (f"{sum(counts.values())} places in {len(counts)} of {len(sites)} scripts build a key name "
                        f"instead of reading KEYS:\n{report}")
