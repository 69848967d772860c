"""Lua scripts: loaded once from jobsvc/lua/, called by EVALSHA; `check` (jobsvc/engine/replies.py) turns a script's
reply code into its exception. A caller passes no keys, only ARGV, whose first value is the key prefix: the keys
come from the families the script names (`K.<family>`), passed in KEYS (jobsvc/engine/script_keys.py). The few
scripts given whole keys by their caller (a lock, a sorted set to page) read `KEYS[n]` and name no family."""
from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import redis

from .. import defaults
from . import script_keys
from .connection import address, is_cluster, per_node, round_trip
from .keys import CLUSTER_ONLY
from .replies import check, lua_constants
from .states import PRUNABLE, RETRYABLE, TTL_STATES, State

__all__ = ["FAMILIES_OF", "LUA_DIR", "SHAS", "SOURCES", "Call", "call", "call_many", "check", "command", "load_all",
           "scope_of"]

log = logging.getLogger("jobsvc.redis")
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
    helpers = script_keys.lib_helpers(lib_text)
    out, families = {}, {}
    for path in sorted(LUA_DIR.glob("*.lua")):
        if path.name == _LIB:
            continue
        body = _with_includes(path.read_text())
        used = families[path.stem] = script_keys.families(path.stem, body, helpers)
        # A script given whole keys (the leader lock, zpage_after, audit_record) needs no library: setting it all
        # up added some 50 us to each call of the leader lock's script (measured).
        if not used:
            out[path.stem] = body
            continue
        # Only the helpers this script can run: each one defined costs every call a closure.
        own_lib = constants + script_keys.pruned(lib_text, script_keys.reachable(body, helpers))
        out[path.stem] = _with_lib(script_keys.expand(own_lib, used), script_keys.expand(body, used))
    return out, families


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


def _with_lib(lib: str, body: str) -> str:
    """The library, then the script's body run as a function so that the counters it moved are written once
    when it returns (flush_counters in _lib.lua), whichever `return` it leaves by."""
    return (f"{lib}\nlocal function script_body()\n{body}\nend\n"
            "local reply = script_body()\nflush_counters()\nreturn reply\n")


SOURCES, FAMILIES_OF = _load_sources()
# Each script's families on a single Redis: CLUSTER_ONLY's come last (script_keys.families), so this is a prefix.
_SINGLE = {name: tuple(f for f in used if f not in CLUSTER_ONLY) for name, used in FAMILIES_OF.items()}
SHAS: dict[str, str] = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in SOURCES.items()}

Call = tuple[str, Sequence[Any], Sequence[Any]]  # (script name, keys, args)


def load_all(conn: redis.Redis) -> None:
    """SCRIPT LOAD every script (after a Redis restart or SCRIPT FLUSH); on a cluster, on every master."""
    if is_cluster(conn):
        for src in SOURCES.values():
            conn.script_load(src)  # redis-py sends SCRIPT LOAD to every primary
        return
    pipe = conn.pipeline(transaction=False)
    for src in SOURCES.values():
        pipe.script_load(src)
    pipe.execute()


def keys_of(name: str, keys: Sequence[Any], args: Sequence[Any]) -> Sequence[Any]:
    """A call's KEYS: those of its key families, rendered with the prefix in ARGV[1] (and, on a Redis Cluster,
    in the slot of the queue its caller gives as `keys`: `scope_of`), or the whole keys a caller gives."""
    used = FAMILIES_OF[name]
    if not used:
        return keys
    given: tuple[Any, ...] = ()
    if used[0] == script_keys.GIVEN:  # the caller's own key, last of its `keys`, first of KEYS
        given, keys = (keys[-1],), keys[:-1]
    if not keys:  # a single Redis: without the cluster's own families, which its scripts never reach (keys.py)
        used = _SINGLE[name]
    return given + script_keys.keys_of(used[len(given):], str(args[0]), str(keys[0]) if keys else None)


def scope_of(queue: str | None) -> tuple[str, ...]:
    """A call's `keys` for a script of key families: () on a single Redis, (queue,) on a cluster (its slot)."""
    return () if queue is None else (queue,)


def command(name: str, keys: Sequence[Any], args: Sequence[Any]) -> tuple[Any, ...]:
    """numkeys, KEYS and ARGV of a call, for EVALSHA or a pipeline's eval."""
    keys = keys_of(name, keys, args)
    return (len(keys), *keys, *args)


def call(conn: redis.Redis, name: str, keys: Sequence[Any] = (), args: Sequence[Any] = (),
         wait: tuple[int, int] | None = None) -> Any:
    """Run one script by EVALSHA, loading the scripts once if Redis does not know them (`wait`: call_many's)."""
    return call_many(conn, [(name, keys, args)], wait)[0]


def call_many(conn: redis.Redis, calls: Iterable[Call], wait: tuple[int, int] | None = None,
              before: Sequence[tuple[Any, ...]] = (), before_replies: list[Any] | None = None,
              raise_errors: bool = True) -> list[Any]:
    """Run several scripts in one round trip; `calls` may be built lazily, each sent as it comes.

    Each script is atomic on its own; a NOSCRIPT reply means that script did not run,
    so it is safe to load the scripts and run just those again. `wait` (replicas, timeout ms: Config.wait) ends
    the round trip with a WAIT: the call returns once that many replicas have every write of it, or the timeout
    passed (a WARNING then: the writes are on the master only until replication catches up). `before`: plain
    commands sent ahead of the scripts in the same round trip (on a cluster, ahead of their node's scripts: the id
    directory's entries, jobsvc/engine/directory.py); their replies are not returned (a list given as
    `before_replies` receives them: the queue registry's SADD), an error among them is raised. A script's error
    reply is raised too, unless `raise_errors` is False: then it is returned in its place (on a cluster one node may
    fail while the others ran their calls: the worker keeps a claim that ran)."""
    calls = _Recorded(calls)
    sent: Iterable[tuple[Any, ...]] = (("EVALSHA", SHAS[name], *command(name, keys, args))
                                       for name, keys, args in calls)
    if before:
        sent = itertools.chain(before, sent)
    results, acked = _waited(conn, sent, wait)
    ahead: list[Any] = []
    if before:
        ahead, results = results[:len(before)], results[len(before):]
    missing = [i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)]
    if missing:
        load_all(conn)
        again, acked_again = _waited(conn, [("EVALSHA", SHAS[calls.seen[i][0]], *command(*calls.seen[i]))
                                            for i in missing], wait)
        # Each round's writes were waited for on their own connection: a node is as safe as its worse round.
        merged = dict(acked)
        for where, n in acked_again:
            merged[where] = min(n, merged.get(where, n))
        acked = list(merged.items())
        for i, r in zip(missing, again, strict=True):
            results[i] = r
    if wait is not None:
        for where, n in acked:
            if n < wait[0]:
                log.warning("%s: %d of %d replica(s) acknowledged within %d ms: until they catch up, a failover "
                            "can lose these writes (JOBSVC_REPLICA_WAIT)", where, n, wait[0], wait[1])
    for r in (*results, *ahead) if raise_errors else ahead:
        if isinstance(r, Exception):
            raise r
    if before_replies is not None:
        before_replies.extend(ahead)
    return results


def _waited(conn: redis.Redis, commands: Iterable[tuple[Any, ...]],
            wait: tuple[int, int] | None) -> tuple[list[Any], list[tuple[str, int]]]:
    """round_trip, then WAIT when asked, on the connection that sent the writes, in the same round trip (on a
    cluster, on each master's: connection.per_node). The replies, and (where, replicas that acked)."""
    if wait is None:
        return round_trip(conn, commands), []
    if is_cluster(conn):
        results, acks = per_node(cast("redis.RedisCluster", conn), commands, ("WAIT", *wait))
        return results, [(name, _acked(reply, name)) for name, reply in acks.items()]
    sent = list(commands)
    if not sent:
        return [], []
    results, where = round_trip(conn, [*sent, ("WAIT", *wait)]), address(conn)
    return results, [(where, _acked(results.pop(), where))]


def _acked(reply: Any, where: str) -> int:
    """Replicas a WAIT reply counts; a refused WAIT (an ACL without it, a proxy) counts none, with the reason: the
    writes went through, so raising would make the caller send them again."""
    if isinstance(reply, (redis.ConnectionError, redis.TimeoutError)):
        # The node did not answer (per_node gave its commands this error too): its writes may not have run; the
        # caller sees that in their replies and sends them again.
        log.warning("%s: no answer (%s): no replica counted", where, reply)
        return 0
    if isinstance(reply, Exception):
        log.warning("%s: WAIT failed (%s): the writes stand, their replication is not known", where, reply)
        return 0
    return int(reply)


class _Recorded:
    """The calls of a call_many as they are sent, kept so that those answered NOSCRIPT can be sent again."""

    def __init__(self, calls: Iterable[Call]):
        self._calls = calls
        self.seen: list[Call] = []

    def __iter__(self) -> Iterator[Call]:
        for call in self._calls:
            self.seen.append(call)
            yield call
