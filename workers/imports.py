"""Finding a job's function from its import path, with errors that say what is wrong.

`rq.utils.import_attribute` reports a missing module, a missing attribute and a module whose import raised
all as "Invalid attribute name"; an operator then cannot tell a deployment problem (the module is not on
the worker's path) from a typo or a bug in the module. Here each is its own message, and an import that
raised keeps its traceback."""
from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from jobsvc.allowlist import ModuleAllowList


class FunctionImportError(Exception):
    """A job's function could not be found or imported. The job fails at once: retrying cannot help."""


def add_import_paths(paths: Iterable[str]) -> list[str]:
    """Put `paths` (made absolute, in order) at the front of sys.path, as `rq worker --path` does, so
    that modules beside the worker's working directory import whichever way the worker was started
    (the `jobsvc` console script does not put the current directory on the path; `python -m` does).
    Returns the directories added."""
    added = [os.path.abspath(p) for p in paths]
    for directory in reversed(added):
        if directory in sys.path:
            sys.path.remove(directory)
        sys.path.insert(0, directory)
    return added


def _missing_is(exc: ModuleNotFoundError, module: str) -> bool:
    """Whether `exc` says that `module` itself (or a package above it) does not exist, rather than that
    something the module imports is missing."""
    return bool(exc.name) and (module == exc.name or module.startswith(f"{exc.name}."))


def _import_longest_module(parts: list[str]) -> tuple[Any, int]:
    """Import the longest leading run of `parts` that is a module: (module, how many parts it took)."""
    for n in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:n])
        try:
            return importlib.import_module(module_name), n
        except ModuleNotFoundError as exc:
            if _missing_is(exc, module_name):
                continue
            raise FunctionImportError(f"importing module {module_name!r} raised "
                                      f"ModuleNotFoundError: {exc}") from exc
        except Exception as exc:  # the module's own code raised: report it as such
            raise FunctionImportError(f"importing module {module_name!r} raised "
                                      f"{type(exc).__name__}: {exc}") from exc
    raise FunctionImportError(f"no module named {parts[0]!r} on the worker's import path "
                              f"(working directory {os.getcwd()}; add directories with "
                              f"`jobsvc worker --path DIR` or JOBSVC_PATH)")


def import_function(path: str, allow: ModuleAllowList | None = None) -> Callable[..., Any]:
    """The callable at `path` ("package.module.function", or "module.Class.method"). With `allow` (a job that
    came through the HTTP API), the path must lie inside it before anything is imported, and the object found
    must be defined inside it (jobsvc.allowlist)."""
    parts = path.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise FunctionImportError(f"{path!r} is not an import path such as 'app.tasks.send_email'")
    if allow is not None:
        allow.check_path(path)
    obj = _resolve(parts, path)
    if allow is not None:
        allow.check_object(path, obj)
    return obj


def _resolve(parts: list[str], path: str) -> Any:
    obj, n = _import_longest_module(parts)
    where = ".".join(parts[:n])
    kind = "module"
    for part in parts[n:]:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise FunctionImportError(f"{kind} {where!r} has no attribute {part!r}") from None
        where, kind = f"{where}.{part}", type(obj).__name__
    if not callable(obj):
        raise FunctionImportError(f"{path!r} is a {type(obj).__name__}, not a function")
    return obj
