"""Lua scripts: loaded once from jobsvc/lua/, called by EVALSHA; `check` (jobsvc/engine/replies.py) turns a script's
reply code into its exception.

Keys: a script's KEYS are the templates (jobsvc/engine/keys.py: FAMILIES) of the key families it uses, found in its
code (`K.<family>`, its own and that of the _lib.lua helpers it calls) and declared in its `-- KEYS:` header, which
the loader checks. A caller passes no keys, only its ARGV, whose first value is the key prefix the templates are
rendered with. The few scripts given whole keys by their caller (a lock, a sorted set to page) say `KEYS[n]` and
use no family."""
from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import redis

from .. import defaults
from .connection import round_trip
from .keys import FAMILIES, MEMOIZED, NAME, template
from .replies import check, lua_constants
from .states import PRUNABLE, RETRYABLE, TTL_STATES, State

__all__ = ["FAMILIES_OF", "LUA_DIR", "SHAS", "SOURCES", "Call", "call", "call_many", "check", "command", "load_all"]

LUA_DIR = Path(__file__).resolve().parents[1] / "lua"
_LIB = "_lib.lua"
_INCLUDE = "--#include "


def _load_sources() -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    # Constants the scripts share with Python come from defaults.py and replies.py, so they live in one place.
    constants = (f"local HIST_BOUNDS = {{{', '.join(str(b) for b in defaults.HISTOGRAM_BUCKETS_MS)}}}\n"
                 f"local MINUTE_COUNTERS_TTL = {defaults.MINUTE_COUNTERS_TTL}\n"
                 f"local PULL_LANE_OFFSET = {defaults.PULL_LANE_OFFSET}\n"
                 + _state_sets({"RETRYABLE": RETRYABLE, "PRUNABLE": PRUNABLE, "TTL_STATES": TTL_STATES})
                 + lua_constants())
    lib_text = (LUA_DIR / _LIB).read_text()
    lib = constants + lib_text
    helpers = _lib_helpers(lib_text)
    out, families = {}, {}
    for path in sorted(LUA_DIR.glob("*.lua")):
        if path.name == _LIB:
            continue
        body = _with_includes(path.read_text())
        families[path.stem] = _families(path.stem, body, helpers)
        out[path.stem] = _with_lib(lib, _prelude(families[path.stem]), body)
    return out, families


_HELPER = re.compile(r"^local function (\w+)\(", re.M)
_FAMILY = re.compile(r"\bK(?:\.(\w+)|\['(\w+)'\])")
_CALLED = re.compile(r"\b(\w+)\s*\(")
_HEADER = re.compile(r"^-- KEYS: (.*)$", re.M)


def _lib_helpers(lib: str) -> dict[str, str]:
    """_lib.lua's helpers by name: each one's text up to the next top-level `local`."""
    starts = [m.start() for m in re.finditer(r"^local ", lib, re.M)] + [len(lib)]
    return {m.group(1): lib[m.start():min(s for s in starts if s > m.start())] for m in _HELPER.finditer(lib)}


def _families(name: str, body: str, helpers: dict[str, str]) -> tuple[str, ...]:
    """The key families a script uses (its own `K.<family>` and that of every helper it calls, transitively),
    sorted: its KEYS, in that order. Its header must name them (a script that takes whole keys says `KEYS[n]`)."""
    used, seen, todo = set(), set(), [body]
    while todo:
        text = todo.pop()
        used |= {a or b for a, b in _FAMILY.findall(_code(text))}
        for called in set(_CALLED.findall(text)) & helpers.keys() - seen:
            seen.add(called)
            todo.append(helpers[called])
    unknown = used - FAMILIES.keys()
    if unknown:
        raise ValueError(f"{name}.lua: no key family {sorted(unknown)} in jobsvc/engine/keys.py")
    found = tuple(sorted(used))
    header = _HEADER.search(body)
    declared = header.group(1).split(" (")[0] if header else ""
    declared = "" if declared == "none" else declared
    if "KEYS[" in _code(body):
        if found:
            raise ValueError(f"{name}.lua: takes whole keys (KEYS[n]) and key families {found}: one or the other")
    elif declared != ", ".join(found):
        raise ValueError(f"{name}.lua: its header says `-- KEYS: {declared}`, its code uses {', '.join(found)}")
    return found


def _code(text: str) -> str:
    """Lua without its whole-line comments (headers describe keys in words)."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))


def _prelude(families: tuple[str, ...]) -> str:
    """K.<family> for each family the script uses (KEYS[i] holds the family's name up to its first name slot):
    the rest of the template, the text between and after the names, comes from keys.py's table here."""
    out = []
    for i, family in enumerate(families, start=1):
        head, *between = FAMILIES[family].split(NAME)
        names = [f"n{j}" for j in range(len(between))]
        if not names:
            out.append(f"K['{family}'] = KEYS[{i}]")
        elif len(names) == 1 and family in MEMOIZED:
            out.append(f"K['{family}'] = function(n0) return name_of(KEYS[{i}], n0, {_lua(between[0])}) end")
        else:
            parts = " .. ".join(f"{n} .. {_lua(text)}" if text else n for n, text in zip(names, between, strict=True))
            out.append(f"K['{family}'] = function({', '.join(names)}) return KEYS[{i}] .. {parts} end")
    return "".join(line + "\n" for line in out)


def _lua(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _with_includes(body: str) -> str:
    """Each `--#include <script>` line becomes `local function <script>_script(ARGV) <its body> end`, so a script
    that applies another's transition to many jobs (cancel_stale.lua: cancel.lua, terminate.lua) runs that one
    source, with that transition's checks, atomically with its own."""
    if _INCLUDE not in body:
        return body
    lines = []
    for line in body.splitlines():
        name = line[len(_INCLUDE):].strip() if line.startswith(_INCLUDE) else None
        lines.append(f"local function {name}_script(ARGV)\n{(LUA_DIR / f'{name}.lua').read_text()}\nend"
                     if name else line)
    return "\n".join(lines) + "\n"


def _state_sets(sets: dict[str, tuple[State, ...]]) -> str:
    """The state lists jobsvc/engine/states.py derives from its edge table, as Lua sets ({failed = true, ...})."""
    return "".join(f"local {name} = {{{', '.join(f'{s.value} = true' for s in states)}}}\n"
                   for name, states in sets.items())


def _with_lib(lib: str, prelude: str, body: str) -> str:
    """The library, the script's keys, then its body run as a function so that the counters it moved are written
    once when it returns (flush_counters in _lib.lua), whichever `return` it leaves by."""
    return (f"{lib}\n{prelude}local function script_body()\n{body}\nend\n"
            "local reply = script_body()\nflush_counters()\nreturn reply\n")


SOURCES, FAMILIES_OF = _load_sources()
SHAS: dict[str, str] = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in SOURCES.items()}

Call = tuple[str, Sequence[Any], Sequence[Any]]  # (script name, keys, args)


def load_all(conn: redis.Redis) -> None:
    """SCRIPT LOAD every script (after a Redis restart or SCRIPT FLUSH)."""
    pipe = conn.pipeline(transaction=False)
    for src in SOURCES.values():
        pipe.script_load(src)
    pipe.execute()


def keys_of(name: str, keys: Sequence[Any], args: Sequence[Any]) -> Sequence[Any]:
    """A call's KEYS: the given ones, or its families' names up to their first name slot (a fixed key whole),
    rendered with the prefix in ARGV[1]."""
    families = FAMILIES_OF[name]
    if not families:
        return keys
    return _rendered(families, str(args[0]))


@functools.lru_cache(maxsize=256)
def _rendered(families: tuple[str, ...], prefix: str) -> tuple[str, ...]:
    return tuple(template(f, prefix).split(NAME)[0] for f in families)


def command(name: str, keys: Sequence[Any], args: Sequence[Any]) -> tuple[Any, ...]:
    """numkeys, KEYS and ARGV of a call, for EVALSHA or a pipeline's eval."""
    keys = keys_of(name, keys, args)
    return (len(keys), *keys, *args)


def call(conn: redis.Redis, name: str, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
    """Run one script by EVALSHA, loading the scripts once if Redis does not know them."""
    return call_many(conn, [(name, keys, args)])[0]


def call_many(conn: redis.Redis, calls: Iterable[Call]) -> list[Any]:
    """Run several scripts in one round trip; `calls` may be built lazily, each sent as it comes.

    Each script is atomic on its own; a NOSCRIPT reply means that script did not run,
    so it is safe to load the scripts and run just those again."""
    calls = _Recorded(calls)
    results = round_trip(conn, (("EVALSHA", SHAS[name], *command(name, keys, args)) for name, keys, args in calls))
    missing = [i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)]
    if missing:
        load_all(conn)
        again = round_trip(conn, [("EVALSHA", SHAS[calls.seen[i][0]], *command(*calls.seen[i])) for i in missing])
        for i, r in zip(missing, again, strict=True):
            results[i] = r
    for r in results:
        if isinstance(r, Exception):
            raise r
    return results


class _Recorded:
    """The calls of a call_many as they are sent, kept so that those answered NOSCRIPT can be sent again."""

    def __init__(self, calls: Iterable[Call]):
        self._calls = calls
        self.seen: list[Call] = []

    def __iter__(self) -> Iterator[Call]:
        for call in self._calls:
            self.seen.append(call)
            yield call
