"""One protocol owner: the admin API and dashboard (`admin_api/`) leave Redis to the core (`jobsvc/`). They pass
the app's connection to core functions and never send a Redis command, run a script or name a key themselves
(docs/architecture.md, section 2, "Layering rule"). These checks read the source only."""
from __future__ import annotations

import ast
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
FACE = ROOT / "admin_api"

# Method names redis-py's client shares with everyday Python objects (dict.get, list.append, a blueprint's
# .delete route, a registry's .delete, hashlib's .digest, ...): a call by one of these names says nothing.
# Every other name of a redis-py client method (hget, pipeline, smembers, zrange, scan_iter, mget, eval, ...)
# is a Redis command wherever it is called.
EVERYDAY = {"get", "set", "append", "delete", "copy", "sort", "keys", "type", "time", "json", "dump", "close",
            "digest", "sync"}
REDIS_COMMANDS = {n for n in dir(redis.Redis) if not n.startswith("_")} - EVERYDAY


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(), str(p))) for p in sorted(FACE.rglob("*.py"))]


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"


def test_the_command_list_is_redis_pys():
    # Guards the check itself: a redis-py that renamed its client would leave it checking nothing.
    assert {"hget", "hgetall", "hmget", "pipeline", "smembers", "zrange", "scan_iter", "mget", "eval"} <= REDIS_COMMANDS


def test_admin_api_sends_no_redis_command():
    found = [f"{_where(p, node)}: .{node.func.attr}()" for p, tree in _sources() for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr in REDIS_COMMANDS]
    assert not found, "Redis commands in admin_api (move them into a jobsvc function):\n" + "\n".join(found)


def test_admin_api_runs_no_script():
    found = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "jobsvc" and any(
                    a.name == "scripts" for a in node.names):
                found.append(f"{_where(path, node)}: from jobsvc import scripts")
            elif isinstance(node, ast.ImportFrom) and node.module == "jobsvc.scripts":
                found.append(f"{_where(path, node)}: from jobsvc.scripts import ...")
            elif isinstance(node, ast.Import) and any(a.name == "jobsvc.scripts" for a in node.names):
                found.append(f"{_where(path, node)}: import jobsvc.scripts")
    assert not found, "Lua scripts run from admin_api (call the core instead):\n" + "\n".join(found)


def test_admin_api_names_no_rq_key():
    # jobsvc's own key names come from jobsvc.keys.Keys, which the core owns; RQ's all start with "rq:".
    found = [f"{_where(p, node)}: {node.value!r}" for p, tree in _sources() for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("rq:")]
    assert not found, "RQ key names in admin_api (the core reads those keys):\n" + "\n".join(found)
