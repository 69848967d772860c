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
    constants = (f"local LIFETIME_GRACE = {defaults.LIFETIME_GRACE}\n"
                 f"local HIST_BOUNDS = {{{', '.join(str(b) for b in defaults.HISTOGRAM_BUCKETS_MS)}}}\n"
                 f"local MINUTE_COUNTERS_TTL = {defaults.MINUTE_COUNTERS_TTL}\n"
                 f"local PULL_LANE_OFFSET = {defaults.PULL_LANE_OFFSET}\n")
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
    return call_many(conn, [(name, keys, args)])[0]


def call_many(conn: redis.Redis, calls: Sequence[Call]) -> list[Any]:
    """Run several scripts in one round trip.

    Each script is atomic on its own; a NOSCRIPT reply means that script did not run,
    so it is safe to load the scripts and run just those again."""
    results = _round_trip(conn, [("EVALSHA", SHAS[name], len(keys), *keys, *args) for name, keys, args in calls])
    missing = [i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)]
    if missing:
        load_all(conn)
        again = _round_trip(conn, [("EVALSHA", SHAS[calls[i][0]], len(calls[i][1]), *calls[i][1], *calls[i][2])
                                   for i in missing])
        for i, r in zip(missing, again):
            results[i] = r
    for r in results:
        if isinstance(r, Exception):
            raise r
    return results


def _round_trip(conn: redis.Redis, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send commands on one pooled connection and read every reply (error replies returned, not raised).

    This is a pipeline without redis-py's Pipeline object, whose bookkeeping costs about as much as the
    round trip itself on the worker's hot path. A connection that fails while sending (a stale one after a
    Redis restart) is replaced once; a failure after the commands went out is raised, never retried, since
    they may have run."""
    pool = conn.connection_pool
    for attempt in (1, 2):
        c = pool.get_connection()
        try:
            try:
                c.send_packed_command(c.pack_commands(commands))
            except (redis.ConnectionError, redis.TimeoutError):
                c.disconnect()
                if attempt == 2:
                    raise
                continue
            out: list[Any] = []
            for _ in commands:
                try:
                    out.append(c.read_response())
                except redis.ResponseError as exc:
                    out.append(exc)
            return out
        except BaseException:
            c.disconnect()
            raise
        finally:
            pool.release(c)
    raise AssertionError("unreachable")


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
