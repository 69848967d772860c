"""Lua scripts: loaded once from jobsvc/lua/, called by EVALSHA, their codes turned into exceptions here."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from . import defaults
from .errors import LeaseLost, NotFound, ScriptError, WrongState

LUA_DIR = Path(__file__).with_name("lua")
_LIB = "_lib.lua"

# Codes every script returns as the first element of its reply.
OK = 0
NO_JOB = -1
LEASE_LOST = -2
WRONG_STATE = -3


def _load_sources() -> dict[str, str]:
    # Constants the scripts share with Python come from defaults.py, so they live in one place.
    constants = f"local LIFETIME_GRACE = {defaults.LIFETIME_GRACE}\n"
    lib = constants + (LUA_DIR / _LIB).read_text()
    out = {}
    for path in sorted(LUA_DIR.glob("*.lua")):
        if path.name == _LIB:
            continue
        body = path.read_text()
        # Scripts that only touch their KEYS (the leader lock) do not need the library.
        out[path.stem] = body if "KEYS[1]" in body else lib + "\n" + body
    return out


SOURCES: dict[str, str] = _load_sources()
SHAS: dict[str, str] = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in SOURCES.items()}

Call = tuple[str, Sequence[Any], Sequence[Any]]  # (script name, keys, args)


def load_all(conn: redis.Redis) -> None:
    """SCRIPT LOAD every script (after a Redis restart or SCRIPT FLUSH)."""
    pipe = conn.pipeline(transaction=False)
    for src in SOURCES.values():
        pipe.script_load(src)
    pipe.execute()


def call(conn: redis.Redis, name: str, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
    """Run one script by EVALSHA, loading the scripts once if Redis does not know them."""
    try:
        return conn.evalsha(SHAS[name], len(keys), *keys, *args)
    except redis.exceptions.NoScriptError:
        load_all(conn)
        return conn.evalsha(SHAS[name], len(keys), *keys, *args)


def call_many(conn: redis.Redis, calls: Sequence[Call]) -> list[Any]:
    """Run several scripts in one round trip (a non-transactional pipeline).

    Each script is atomic on its own; a NOSCRIPT reply means that script did not run,
    so it is safe to load the scripts and run just those again."""
    pipe = conn.pipeline(transaction=False)
    for name, keys, args in calls:
        pipe.evalsha(SHAS[name], len(keys), *keys, *args)
    results = pipe.execute(raise_on_error=False)
    missing = [i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)]
    if missing:
        load_all(conn)
        for i in missing:
            name, keys, args = calls[i]
            results[i] = conn.evalsha(SHAS[name], len(keys), *keys, *args)
    for r in results:
        if isinstance(r, Exception):
            raise r
    return results


def check(reply: Any, job_id: str = "") -> list[Any]:
    """Turn a script's status code into the matching exception; return the reply on success."""
    if not isinstance(reply, list) or not reply:
        raise ScriptError(f"unexpected script reply {reply!r}")
    code = int(reply[0])
    if code == OK:
        return reply
    state = _text(reply[1]) if len(reply) > 1 and reply[1] is not None else None
    if code == NO_JOB:
        raise NotFound(f"no job {job_id}")
    if code == LEASE_LOST:
        raise LeaseLost(f"job {job_id}: lease is no longer held by this worker (state {state})", state)
    if code == WRONG_STATE:
        raise WrongState(f"job {job_id} is {state}", state)
    raise ScriptError(f"job {job_id}: unknown script code {code}")


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
