"""The functions registry: named job functions with their defaults, by namespace.

A function is `namespace/name` -> the import path of a callable deployed with the workers, plus defaults
for its jobs (queue, timeout, max_attempts, backoff, priority), `enabled`, a description and a version that
goes up on every change. The registry stores import paths, never code: a worker that cannot import one
fails the job at once, not retried (workers/execution.py).

Register in code with the `@function(...)` decorator (then `Registry.sync_declared()`), from the admin API,
or from a declarative file (`jobsvc functions sync FILE`):

    >>> registry = Registry(client)
    >>> registry.register("billing", "charge", "app.billing.charge", queue="billing", max_attempts=5)
    >>> registry.enqueue("billing/charge", kwargs={"invoice": 42})    # takes the function's defaults
    >>> registry.patch("billing", "charge", enabled=False)           # new jobs refused; queued ones wait

A disabled function refuses new jobs (errors.Disabled) and its queued jobs stay queued, skipped by claims (one
SISMEMBER in claim.lua on jobs made from the registry), until it is enabled again.

Redis (under the key prefix): `function:<ns>/<name>` hash (spec JSON, version, created_ms, updated_ms),
`function_names:<ns>` and `function_namespaces` listing indexes, `functions:disabled` set of disabled refs
(jobsvc/keys.py: no namespace or name can spell the fixed `functions:disabled`).
"""
from __future__ import annotations

# Registry.list shadows the builtin in the class body: annotations there name builtins.list.
import builtins
import contextlib
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import redis

from . import defaults, scripts
from .backoff import Backoff
from .client import Client, Enqueued
from .connection import text
from .errors import Conflict, Disabled, NotFound, ValidationError
from .job import DEFAULT_NAMESPACE, JobSpec
from .keys import Keys
from .serialization import IMPORT_PATH
from .urlguard import check_url
from .validation import NAMESPACE_NAME, QUEUE_NAME, is_name

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
DESCRIPTION_MAX = 1000
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
    JobSpec(func="jobsvc.client.noop", queue=queue if queue is not None else "default",
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
        return json.dumps(spec, sort_keys=True, separators=(",", ":"))

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


@dataclass
class SyncReport:
    """What a sync did (or, for a dry run, would do): names per outcome."""

    namespace: str
    dry_run: bool
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "dry_run": self.dry_run, "created": self.created,
                "updated": self.updated, "deleted": self.deleted, "unchanged": self.unchanged}


# -- declared in code ------------------------------------------------------------------------------------

DECLARED: dict[str, Function] = {}


def function(name: str | None = None, *, namespace: str = DEFAULT_NAMESPACE, queue: str | None = None,
             timeout: int | None = None, max_attempts: int | None = None, backoff: Any = None,
             priority: int | None = None, enabled: bool = True,
             description: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a module-level function as a registry function (name: the function's own by default).
    Declaring only records it in this process (DECLARED); `Registry.sync_declared()` stores the declared
    functions, e.g. at deploy time. The function itself is returned unchanged, with `jobsvc_ref` set."""
    from .serialization import func_name

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            path = func_name(func)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        fn = Function(namespace=namespace, name=name or func.__name__, path=path, queue=queue,
                      timeout=timeout, max_attempts=max_attempts, backoff=backoff, priority=priority,
                      enabled=enabled, description=description if description is not None
                      else (func.__doc__ or "").strip().split("\n")[0][:DESCRIPTION_MAX])
        DECLARED[fn.ref] = fn
        func.jobsvc_ref = fn.ref  # type: ignore[attr-defined]
        return func

    return deco


# -- the registry ----------------------------------------------------------------------------------------


class Registry:
    """Create, read, change and delete registry functions; build and enqueue jobs from them."""

    def __init__(self, client: Client):
        self.client = client
        self.redis: redis.Redis = client.redis
        self.prefix = client.config.key_prefix

    # keys: named in keys.py (the Lua scripts build the same names)
    def key(self, namespace: str, name: str) -> str:
        return Keys(self.prefix).function(namespace, name)

    def index(self, namespace: str) -> str:
        return Keys(self.prefix).function_names(namespace)

    @property
    def namespaces_key(self) -> str:
        return Keys(self.prefix).function_namespaces

    @property
    def disabled_key(self) -> str:
        return Keys(self.prefix).functions_disabled

    # -- write -----------------------------------------------------------------------------------------

    def _save(self, fn: Function, mode: str, expected_version: int | None = None) -> Function:
        if fn.handler is not None:
            fn = replace(fn, handler=check_url(fn.handler, allow_private=self.client.config.allow_private_urls))
        reply = scripts.call(self.redis, "function_save", (), (
            self.prefix, fn.namespace, fn.name, fn.spec_json(), "1" if fn.enabled else "0", mode,
            "" if expected_version is None else expected_version, fn.queue or "default",
            defaults.WAKE_TOKENS_MAX))
        scripts.check(reply, what=f"function {fn.ref}")
        return self.get(fn.namespace, fn.name)

    def register(self, namespace: str, name: str, path: str | None, *, replace_existing: bool = True,
                 **options: Any) -> Function:
        """Create a function, or (replace_existing) set every field of an existing one; the version goes up
        only when something changed. Options: queue, timeout, max_attempts, backoff, priority, enabled,
        description. AlreadyExists if it exists and replace_existing is False."""
        unknown = set(options) - set(SPEC_FIELDS)
        if unknown:
            raise ValidationError(f"unknown function option(s): {', '.join(sorted(unknown))}")
        if options.get("description") is None:
            options["description"] = ""
        fn = Function(namespace=namespace, name=name, path=path, **options)
        return self._save(fn, "upsert" if replace_existing else "create")

    def patch(self, namespace: str, name: str, **changes: Any) -> Function:
        """Change some fields (SPEC_FIELDS); the version goes up if anything changed. NotFound if missing."""
        unknown = set(changes) - set(SPEC_FIELDS)
        if unknown:
            raise ValidationError(f"unknown function field(s): {', '.join(sorted(unknown))}")
        # Giving one of path / handler switches the function to it: the other is cleared.
        if changes.get("handler") is not None and "path" not in changes:
            changes["path"] = None
        if changes.get("path") is not None and "handler" not in changes:
            changes["handler"] = None
        for _ in range(10):
            current = self.get(namespace, name)
            if changes.get("description", "") is None:
                changes["description"] = ""
            new = replace(current, **changes)
            try:
                return self._save(new, "update", expected_version=current.version)
            except Conflict:
                continue  # changed by someone else meanwhile: apply the patch to the new version
        raise Conflict(f"function {namespace}/{name} keeps changing; try again")

    def enable(self, namespace: str, name: str) -> Function:
        return self.patch(namespace, name, enabled=True)

    def disable(self, namespace: str, name: str) -> Function:
        return self.patch(namespace, name, enabled=False)

    def delete(self, namespace: str, name: str) -> None:
        """Remove a function. Jobs already created from it keep their import path (and, if it was disabled,
        are no longer held)."""
        check_name(namespace, name)
        scripts.check(scripts.call(self.redis, "function_delete", (), (self.prefix, namespace, name)),
                      what=f"function {namespace}/{name}")

    # -- read ------------------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> Function:
        check_name(namespace, name)
        # Bytes replies (connect() never sets decode_responses: RQ reads bytes); redis-py types them bytes | str.
        raw = cast("dict[bytes, bytes]", self.redis.hgetall(self.key(namespace, name)))
        if not raw:
            raise NotFound(f"no function {namespace}/{name}")
        return Function._from_hash(namespace, name, raw)

    def resolve(self, ref: str) -> Function:
        """The function of a `namespace/name` reference."""
        return self.get(*parse_ref(ref))

    def list(self, namespace: str | None = None, cursor: str | None = None,
             limit: int = 100) -> tuple[list[Function], str | None]:
        """Functions by namespace then name; `cursor` is the `ns/name` of the last one seen (returned as the
        second value while more remain)."""
        if not 1 <= int(limit) <= 500:
            raise ValidationError("limit must be 1-500")
        after_ns, after_name = (parse_ref(cursor) if cursor else (None, None))
        if namespace is not None:
            check_name(namespace, "x")
            if after_ns is not None and after_ns != namespace:
                raise ValidationError("cursor is not from this namespace")
            spaces = [namespace]
        else:
            low = f"[{after_ns}" if after_ns else "-"
            spaces = [text(s) for s in self.redis.zrangebylex(self.namespaces_key, low, "+")]
        out: list[tuple[str, str]] = []
        for ns in spaces:
            low = f"({after_name}" if after_name and ns == after_ns else "-"
            names = self.redis.zrangebylex(self.index(ns), low, "+", start=0, num=limit + 1 - len(out))
            out += [(ns, text(n)) for n in names]
            if len(out) > limit:
                break
        more = len(out) > limit
        out = out[:limit]
        pipe = self.redis.pipeline(transaction=False)
        for ns, name in out:
            pipe.hgetall(self.key(ns, name))
        replies = pipe.execute()  # one HGETALL per function listed
        items = [Function._from_hash(ns, name, raw) for (ns, name), raw in zip(out, replies, strict=True) if raw]
        return items, (f"{out[-1][0]}/{out[-1][1]}" if more and out else None)

    def all(self, namespace: str | None = None) -> builtins.list[Function]:
        cursor: str | None = None
        out: builtins.list[Function] = []
        while True:
            items, cursor = self.list(namespace, cursor, 500)
            out += items
            if not cursor:
                return out

    def namespaces(self) -> builtins.list[dict[str, Any]]:
        """Namespaces that have functions, with how many and how many are disabled."""
        # Without withscores: members only; redis-py's one return type covers (member, score) pairs too.
        spaces = [text(s) for s in cast("builtins.list[bytes]", self.redis.zrange(self.namespaces_key, 0, -1))]
        pipe = self.redis.pipeline(transaction=False)
        for ns in spaces:
            pipe.zcard(self.index(ns))
        counts = pipe.execute()
        disabled: dict[str, int] = {}
        for ref in self.redis.smembers(self.disabled_key):
            ns = text(ref).partition("/")[0]
            disabled[ns] = disabled.get(ns, 0) + 1
        return [{"namespace": ns, "functions": int(n), "disabled": disabled.get(ns, 0)}
                for ns, n in zip(spaces, counts, strict=True)]  # one ZCARD reply per namespace

    # -- sync ------------------------------------------------------------------------------------------

    def sync(self, namespace: str, functions: Iterable[Mapping[str, Any] | Function], delete_missing: bool = False,
             dry_run: bool = False) -> SyncReport:
        """Make a namespace hold these functions: create the new, update the changed, and with
        delete_missing delete those not listed. A dry run reports the same and changes nothing."""
        check_name(namespace, "x")
        wanted: dict[str, Function] = {}
        for item in functions:
            fn = item if isinstance(item, Function) else Function.from_dict(item, namespace)
            if fn.namespace != namespace:
                raise ValidationError(f"function {fn.ref} is not in namespace {namespace!r}")
            if fn.name in wanted:
                raise ValidationError(f"function {fn.name!r} is listed twice")
            wanted[fn.name] = fn
        current = {fn.name: fn for fn in self.all(namespace)}
        report = SyncReport(namespace, dry_run)
        for name, fn in sorted(wanted.items()):
            old = current.get(name)
            if old is None:
                report.created.append(name)
            elif old.spec_json() != fn.spec_json():
                report.updated.append(name)
            else:
                report.unchanged.append(name)
        if delete_missing:
            report.deleted = sorted(set(current) - set(wanted))
        if dry_run:
            return report
        for name in report.created + report.updated:
            self._save(wanted[name], "upsert")
        for name in report.deleted:
            with contextlib.suppress(NotFound):  # deleted meanwhile: already as wanted
                self.delete(namespace, name)
        return report

    def sync_declared(self, delete_missing: bool = False, dry_run: bool = False) -> builtins.list[SyncReport]:
        """Store the functions declared with `@function` in this process, one sync per namespace."""
        by_ns: dict[str, builtins.list[Function]] = {}
        for fn in DECLARED.values():
            by_ns.setdefault(fn.namespace, []).append(fn)
        return [self.sync(ns, fns, delete_missing, dry_run) for ns, fns in sorted(by_ns.items())]

    # -- jobs from functions ---------------------------------------------------------------------------

    def job(self, ref: str | Function, *args: Any, kwargs: dict[str, Any] | None = None,
            **options: Any) -> FunctionJob:
        """A job of a registry function: its import path, with its defaults under the given options.
        Disabled if the function is disabled, NotFound if it does not exist."""
        fn = ref if isinstance(ref, Function) else self.resolve(ref)
        if not fn.enabled:
            raise Disabled(f"function {fn.ref} is disabled")
        if "namespace" in options and options["namespace"] not in (None, fn.namespace):
            raise ValidationError(f"function {fn.ref} makes jobs in namespace {fn.namespace!r}")
        merged = {**fn.job_options(), **{k: v for k, v in options.items() if v is not None}}
        if fn.handler is not None:
            if args or kwargs:
                raise ValidationError(f"function {fn.ref} is an HTTP handler: give a payload, not args or kwargs")
            spec = Client.handler_job(fn.handler, merged.pop("payload", None), **merged)
        else:
            assert fn.path is not None  # a function has an import path or a handler URL (Function.__post_init__)
            spec = Client.job(fn.path, *args, kwargs=kwargs, **merged)
        return FunctionJob(spec, {"js_fn": fn.ref})

    def enqueue(self, ref: str | Function, *args: Any, kwargs: dict[str, Any] | None = None,
                **options: Any) -> Enqueued:
        """Enqueue a job of a registry function (`"ns/name"`), with the function's defaults."""
        return self.enqueue_many([self.job(ref, *args, kwargs=kwargs, **options)])[0]

    def enqueue_many(self, jobs: Sequence[FunctionJob]) -> builtins.list[Enqueued]:
        calls = self.client.enqueue_calls([j.spec for j in jobs], [j.fields for j in jobs])
        return self.client.parse_enqueued(scripts.call_many(self.redis, calls) if calls else [])


def load_file(path: str) -> Any:
    """A declarative file: JSON, YAML (.yaml/.yml, needs PyYAML) or TOML (.toml)."""
    from pathlib import Path

    p = Path(path)
    try:
        content = p.read_text()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    suffix = p.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ValidationError("YAML files need PyYAML (pip install pyyaml); or use JSON or TOML") from None
            return yaml.safe_load(content)
        if suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # tomllib is new in 3.11; tomli is the same parser (a dependency on 3.10 only)
                import tomli as tomllib
            return tomllib.loads(content)
        return json.loads(content)
    except ValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - every parser has its own error type
        raise ValidationError(f"{path}: cannot parse: {exc}") from None


def sync_file_items(data: Any, field: str, shape: str) -> tuple[Any, list[Mapping[str, Any]]]:
    """The `namespace` (as given, None if absent) and the list under `field` of a sync file {namespace?, field:
    [...]} (functions and schedules files alike); `shape` shows the expected document in the error."""
    if not isinstance(data, Mapping) or field not in data:
        raise ValidationError(f"a {field} file is {shape}")
    unknown = set(data) - {"namespace", field}
    if unknown:
        raise ValidationError(f"unknown top-level field(s): {', '.join(sorted(unknown))}")
    items = data[field] or []
    if not isinstance(items, list):
        raise ValidationError(f"{field} must be a list")
    return data.get("namespace"), items


def functions_file(data: Any) -> tuple[str, list[Mapping[str, Any]]]:
    """The namespace and functions of a functions file: {namespace, functions: [{name, path, ...}]}."""
    namespace, items = sync_file_items(data, "functions", "{namespace: NS, functions: [{name, path, ...}, ...]}")
    return namespace or DEFAULT_NAMESPACE, items


__all__ = ["DECLARED", "Function", "FunctionJob", "Registry", "SyncReport", "function", "functions_file", "load_file",
           "parse_ref"]
