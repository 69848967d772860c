"""A registry function's definition: `Function` (namespace/name, import path or handler URL, job defaults,
validated when made), the names' rules (`check_name`, `parse_ref`), and `FunctionJob`, a job made from one."""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ... import defaults
from ...defaults import DESCRIPTION_MAX as DESCRIPTION_MAX  # re-exported by jobsvc.engine.functions
from ...errors import ValidationError
from ...validation import NAMESPACE_NAME, QUEUE_NAME, is_name
from ..backoff import Backoff
from ..job import DEFAULT_NAMESPACE, JobSpec
from ..serialization import IMPORT_PATH
from ..versioned import canonical_json

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
# Fields a caller may set; the rest (version, times) are the registry's.
SPEC_FIELDS = ("path", "queue", "timeout", "max_attempts", "backoff", "priority", "enabled", "description",
               "handler")
# Optional spec fields left out of the stored JSON when unset, so functions stored before they existed
# keep the same JSON (and version) on the next sync.
_OMIT_WHEN_NONE = ("path", "handler")


def _backoff_dict(value: Any) -> dict[str, Any] | None:
    """A backoff option as stored: {kind, base, cap, jitter}; accepts a kind name, a dict or a Backoff."""
    if value is None:
        return None
    if isinstance(value, str):
        value = Backoff(kind=value)
    elif isinstance(value, Mapping):
        unknown = set(value) - {"kind", "base", "cap", "jitter"}
        if unknown:
            raise ValidationError(f"unknown backoff field(s): {', '.join(sorted(unknown))}")
        try:
            value = Backoff(**value)
        except TypeError as exc:
            raise ValidationError(f"backoff: {exc}") from None
    if not isinstance(value, Backoff):
        raise ValidationError("backoff must be fixed | linear | exponential, or {kind, base, cap, jitter}")
    return {"kind": value.kind, "base": float(value.base), "cap": float(value.cap), "jitter": bool(value.jitter)}


def check_job_defaults(queue: Any = None, timeout: Any = None, max_attempts: Any = None, priority: Any = None,
                       backoff: Any = None) -> dict[str, Any] | None:
    """Validate job options the way JobSpec does; returns the backoff as stored."""
    for name, value in (("timeout", timeout), ("max_attempts", max_attempts), ("priority", priority)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValidationError(f"{name} must be an integer")
    bo = _backoff_dict(backoff)
    JobSpec(func="jobsvc.engine.client.noop", queue=queue if queue is not None else "default",
            timeout=timeout, max_attempts=max_attempts,
            priority=priority if priority is not None else defaults.PRIORITY)
    return bo


def parse_ref(ref: str) -> tuple[str, str]:
    """`namespace/name` -> (namespace, name); a bare name is in the default namespace."""
    if not isinstance(ref, str) or not ref:
        raise ValidationError("a function reference is 'namespace/name'")
    ns, sep, name = ref.partition("/")
    if not sep:
        ns, name = DEFAULT_NAMESPACE, ref
    check_name(ns, name)
    return ns, name


def check_name(namespace: Any, name: Any) -> None:
    # fullmatch: the patterns end in `$`, which `match` lets through before a final newline ("ns\n").
    if not is_name(namespace, NAMESPACE_NAME):
        raise ValidationError(f"namespace {namespace!r} must be 1-64 of A-Z a-z 0-9 _ . -")
    if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(name):
        raise ValidationError(f"function name {name!r} must be 1-128 of A-Z a-z 0-9 _ . -")


@dataclass(frozen=True)
class Function:
    """One registry entry. `version` is 0 until stored."""

    namespace: str
    name: str
    path: str | None = None
    queue: str | None = None
    timeout: int | None = None
    max_attempts: int | None = None
    backoff: dict[str, Any] | None = None
    priority: int | None = None
    enabled: bool = True
    description: str = ""
    handler: str | None = None  # an HTTP handler URL instead of an import path (docs/http.md)
    version: int = 0
    created_ms: int | None = None
    updated_ms: int | None = None

    def __post_init__(self) -> None:
        check_name(self.namespace, self.name)
        if (self.path is None) == (self.handler is None):
            raise ValidationError("a function has an import path or a handler URL (one of them)")
        if self.handler is not None:
            if not isinstance(self.handler, str) or not 0 < len(self.handler) <= defaults.URL_MAX:
                raise ValidationError(f"handler must be an https URL of at most {defaults.URL_MAX} characters")
            if self.timeout is not None and not (
                defaults.HANDLER_TIMEOUT_MIN <= self.timeout <= defaults.HANDLER_TIMEOUT_MAX
            ):
                raise ValidationError(f"a handler's timeout must be {defaults.HANDLER_TIMEOUT_MIN}-"
                                      f"{defaults.HANDLER_TIMEOUT_MAX} seconds")
        elif not isinstance(self.path, str) or not IMPORT_PATH.fullmatch(self.path):
            raise ValidationError(f"path {self.path!r} must be an import path like 'package.module.function' "
                                  "(the registry stores import paths, never code)")
        if self.queue is not None and not is_name(self.queue, QUEUE_NAME):
            raise ValidationError(f"queue name {self.queue!r} must be 1-128 of A-Z a-z 0-9 _ . : -")
        object.__setattr__(self, "backoff", check_job_defaults(self.queue, self.timeout, self.max_attempts,
                                                               self.priority, self.backoff))
        if not isinstance(self.enabled, bool):
            raise ValidationError("enabled must be true or false")
        if not isinstance(self.description, str) or len(self.description) > DESCRIPTION_MAX:
            raise ValidationError(f"description must be text of at most {DESCRIPTION_MAX} characters")

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def spec_json(self) -> str:
        """The caller-set fields as canonical JSON: equal JSON means unchanged (no new version)."""
        spec = {k: getattr(self, k) for k in SPEC_FIELDS}
        for k in _OMIT_WHEN_NONE:
            if spec[k] is None:
                del spec[k]
        return canonical_json(spec)

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "name": self.name, "ref": self.ref,
                **{k: getattr(self, k) for k in SPEC_FIELDS},
                "version": self.version, "created_ms": self.created_ms, "updated_ms": self.updated_ms}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], namespace: str | None = None) -> Function:
        """From API / file input: namespace, name, path and the SPEC_FIELDS; anything else is refused."""
        if not isinstance(data, Mapping):
            raise ValidationError("a function is an object with name and path")
        allowed = {"namespace", "name", *SPEC_FIELDS}
        unknown = set(data) - allowed
        if unknown:
            raise ValidationError(f"unknown function field(s): {', '.join(sorted(unknown))}")
        values = dict(data)
        if namespace is not None:
            if values.get("namespace", namespace) != namespace:
                raise ValidationError(f"function {values.get('name')!r} is in namespace {values['namespace']!r}, "
                                      f"not {namespace!r}")
            values["namespace"] = namespace
        values.setdefault("namespace", DEFAULT_NAMESPACE)
        if "name" not in values:
            raise ValidationError("function field 'name' is required")
        if "path" not in values and "handler" not in values:
            raise ValidationError("function field 'path' (or 'handler') is required")
        values.setdefault("description", "")
        if values["description"] is None:
            values["description"] = ""
        return cls(**values)

    @classmethod
    def _from_hash(cls, namespace: str, name: str, raw: dict[bytes, bytes]) -> Function:
        spec = json.loads(raw[b"spec"])
        return cls(namespace=namespace, name=name, **spec, version=int(raw[b"version"]),
                   created_ms=int(raw[b"created_ms"]), updated_ms=int(raw[b"updated_ms"]))

    def job_options(self) -> dict[str, Any]:
        """This function's defaults as JobSpec options."""
        out: dict[str, Any] = {"namespace": self.namespace}
        for k in ("queue", "timeout", "max_attempts", "priority"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        if self.backoff is not None:
            out["backoff"] = Backoff(**self.backoff)
        return out


@dataclass(frozen=True)
class FunctionJob:
    """A job to create from a registry function: the JobSpec with the function's defaults, and the hash
    fields that tie the job to the function (claim.lua holds it while the function is disabled)."""

    spec: JobSpec
    fields: dict[str, str]
