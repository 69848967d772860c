"""Which Python code a job that came through the HTTP API may run.

The trust boundary is the HTTP API. Code that can write to Redis is trusted, as with RQ: jobs enqueued from
Python (`Client`, `Registry`, plain RQ) run any importable function. A job created over HTTP is marked
`js_origin=api`, and a worker runs its function only when the import path lies inside the allow-list of
module prefixes (`JOBSVC_ALLOWED_MODULES`, `jobsvc worker --allow-modules`): the path is checked before
anything is imported, and the object it resolves to must be defined in an allowed module too, so a path
that walks through an allowed module into `os.system` (`app.tasks.os.system`) or a re-exported
`subprocess.run` is refused. A deny-list could not do this: `builtins.exec`, `pickle.loads` and attribute
traversal get round any list of bad names.

The API uses the same list: a raw import path over HTTP needs an admin key and an allowed path; creating a
registry function or changing its path is an admin action (admin_api)."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import NotAllowed, ValidationError

# Hash field and value that mark a job created through the HTTP API.
ORIGIN_FIELD = "js_origin"
ORIGIN_API = "api"

_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def parse_prefixes(raw: str | Iterable[str]) -> tuple[str, ...]:
    """Module prefixes from "app.tasks, billing" (commas or spaces) or a list; each a dotted module name."""
    items = raw.replace(",", " ").split() if isinstance(raw, str) else [p.strip() for p in raw]
    out = []
    for item in filter(None, items):
        if not _PREFIX.fullmatch(item):
            raise ValidationError(f"allowed module {item!r} is not a dotted module name such as 'app.tasks'")
        out.append(item)
    return tuple(dict.fromkeys(out))


def module_of(obj: Any) -> str:
    """The module an object was defined in (a bound method's function's; a callable instance's class's)."""
    target = getattr(obj, "__func__", obj)
    module = getattr(target, "__module__", None)
    return module if isinstance(module, str) else type(target).__module__


@dataclass(frozen=True)
class ModuleAllowList:
    prefixes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str | Iterable[str]) -> ModuleAllowList:
        return cls(parse_prefixes(raw))

    def _covers(self, dotted: str) -> bool:
        return any(dotted == p or dotted.startswith(f"{p}.") for p in self.prefixes)

    def describe(self) -> str:
        return ", ".join(self.prefixes) if self.prefixes else "none"

    def _refusal(self, what: str) -> NotAllowed:
        return NotAllowed(f"{what} is outside the allowed modules ({self.describe()}): jobs created through the "
                          f"HTTP API run only functions from modules listed in JOBSVC_ALLOWED_MODULES "
                          f"(`jobsvc worker --allow-modules`)")

    def check_path(self, path: str) -> None:
        """Before importing: the path lies under an allowed prefix and walks no dunder attribute."""
        if any(part.startswith("__") for part in path.split(".")):
            raise NotAllowed(f"{path!r}: jobs created through the HTTP API may not name dunder attributes")
        if not self._covers(path):
            raise self._refusal(repr(path))

    def check_object(self, path: str, obj: Any) -> None:
        """After resolving: the callable itself was defined in an allowed module."""
        module = module_of(obj)
        if not self._covers(module):
            raise self._refusal(f"{path!r} resolves to an object of module {module!r}, which")
