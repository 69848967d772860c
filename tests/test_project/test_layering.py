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
            if isinstance(node, ast.ImportFrom) and node.module == "jobsvc.engine" and any(
                    a.name == "scripts" for a in node.names):
                found.append(f"{_where(path, node)}: from jobsvc.engine import scripts")
            elif isinstance(node, ast.ImportFrom) and node.module == "jobsvc.engine.scripts":
                found.append(f"{_where(path, node)}: from jobsvc.engine.scripts import ...")
            elif isinstance(node, ast.Import) and any(a.name == "jobsvc.engine.scripts" for a in node.names):
                found.append(f"{_where(path, node)}: import jobsvc.engine.scripts")
    assert not found, "Lua scripts run from admin_api (call the core instead):\n" + "\n".join(found)


def test_admin_api_names_no_rq_key():
    # jobsvc's own key names come from jobsvc.engine.keys.Keys, which the core owns; RQ's all start with "rq:".
    found = [f"{_where(p, node)}: {node.value!r}" for p, tree in _sources() for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("rq:")]
    assert not found, "RQ key names in admin_api (the core reads those keys):\n" + "\n".join(found)


# The core's subpackages and what each may import of the others (docs/architecture.md, section 2, `jobsvc/`):
# the engine builds on the top-level modules only (and the URL guard, which checks handler URLs where jobs are
# written); admin/ and http/ build on the engine; scheduling/ and maintenance/ on those.
CORE = ROOT / "jobsvc"
MAY_IMPORT = {
    "engine": {"http.urlguard"},
    "http.urlguard": set(),
    "http": {"engine", "http.urlguard"},
    "admin": {"engine", "http.urlguard"},
    "scheduling": {"engine", "http.urlguard", "admin", "http"},
    "maintenance": {"engine", "http.urlguard", "admin", "http", "scheduling"},
}


def _part(module: str) -> str | None:
    """The subpackage of jobsvc a module (or a package, or a file's dotted path) belongs to; None: the top level."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] == "lua" or not (CORE / parts[1]).is_dir():
        return None
    return "http.urlguard" if parts[1:3] == ["http", "urlguard"] else parts[1]


def _imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every jobsvc module `path` imports, relative imports resolved, `from X import module`
    counted as that module."""
    rel = path.relative_to(ROOT).with_suffix("").parts
    package = list(rel[:-1])  # a module's package; for an __init__.py, its own
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                is_module = (ROOT / sub.replace(".", "/")).with_suffix(".py").exists() or (
                    ROOT / sub.replace(".", "/")).is_dir()
                out.append((node.lineno, sub if is_module else base))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return [(line, m) for line, m in out if m == "jobsvc" or m.startswith("jobsvc.")]


def test_core_subpackages_import_only_the_layers_below():
    found = []
    for path in sorted(CORE.rglob("*.py")):
        own = _part(".".join(path.relative_to(ROOT).with_suffix("").parts))
        if own is None:
            continue
        for line, target in _imported(path):
            other = _part(target)
            if other not in (None, own) and other not in MAY_IMPORT[own]:
                found.append(f"{path.relative_to(ROOT)}:{line}: jobsvc/{own.replace('.', '/')}/ imports {target}")
    assert not found, "a core subpackage imports one above it:\n" + "\n".join(found)


def test_every_core_subpackage_has_its_layer():
    # A new subpackage of jobsvc/ gets a row in MAY_IMPORT (and in docs/architecture.md, section 2).
    subpackages = {p.name for p in CORE.iterdir() if (p / "__init__.py").exists()}
    assert subpackages == {k.split(".")[0] for k in MAY_IMPORT}
