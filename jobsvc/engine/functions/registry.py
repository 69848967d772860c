"""The functions registry in Redis (`Registry`: create, change, delete, read, list, sync; jobs from its
functions), and functions declared in code (`@function`, DECLARED) for `Registry.sync_declared()`."""
from __future__ import annotations

# Registry.list shadows the builtin in the class body: annotations there name builtins.list.
import builtins
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from ... import defaults
from ...errors import Disabled, NotFound, ValidationError
from ...http.urlguard import check_url
from .. import scripts
from ..client import Client
from ..connection import text
from ..enqueueing import Enqueued, enqueue
from ..job import DEFAULT_NAMESPACE
from ..keys import template
from ..versioned import Mode, VersionedStore, plan_sync
from ..versioned import SyncReport as _SyncReport
from . import copies
from .spec import DESCRIPTION_MAX, SPEC_FIELDS, Function, FunctionJob, check_name, parse_ref


@dataclass
class SyncReport(_SyncReport):
    """What a sync of one namespace did (or, for a dry run, would do): names per outcome."""

    namespace: str = DEFAULT_NAMESPACE


# -- declared in code ------------------------------------------------------------------------------------

DECLARED: dict[str, Function] = {}


def function(name: str | None = None, *, namespace: str = DEFAULT_NAMESPACE, queue: str | None = None,
             timeout: int | None = None, max_attempts: int | None = None, backoff: Any = None,
             priority: int | None = None, enabled: bool = True,
             description: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a module-level function as a registry function (name: the function's own by default).
    Declaring only records it in this process (DECLARED); `Registry.sync_declared()` stores the declared
    functions, e.g. at deploy time. The function itself is returned unchanged, with `jobsvc_ref` set."""
    from ..serialization import func_name

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


class Registry(VersionedStore):
    """Create, read, change and delete registry functions; build and enqueue jobs from them."""

    kind = "function"
    save_script = "function_save"

    def __init__(self, client: Client):
        super().__init__(client)
        # On a Redis Cluster every key of the registry's scripts is in its own slot (copies.FUNCTIONS_SLOT), the
        # master set of disabled refs included; each queue's slot holds a copy of that set for claim.lua (copies.py).
        self.slot = copies.FUNCTIONS_SLOT if client.cluster else None  # None: a single Redis, its names unchanged
        self.scope = scripts.scope_of(self.slot)  # the `keys` of a registry script's call

    # keys: named in keys.py (the Lua scripts build the same names)
    def _name(self, family: str, *names: object) -> str:
        return template(family, self.prefix, self.slot) % names

    def key(self, namespace: str, name: str) -> str:
        return self._name("function", namespace, name)

    def index(self, namespace: str) -> str:
        return self._name("function_names", namespace)

    @property
    def namespaces_key(self) -> str:
        return self._name("function_namespaces")

    @property
    def disabled_key(self) -> str:
        """The set of disabled refs (on a cluster the master set: claim.lua reads each queue's copy)."""
        return self._name("functions_disabled")

    # -- write -----------------------------------------------------------------------------------------

    def _save(self, fn: Function, mode: Mode, expected_version: int | None = None, copy: bool = True) -> Function:
        """Save `fn`; on a cluster, with `copy`, then write the disabled set's copies when the save can have changed
        it (disabled now, or changed: perhaps enabled), so a disable called again repairs copies left behind."""
        if fn.handler is not None:
            fn = replace(fn, handler=check_url(fn.handler, allow_private=self.client.config.allow_private_urls))
        # function_save.lua's own arguments: the queue whose workers to wake when the function is enabled (on a
        # cluster that queue's wake-up list is in its slot: functions_copy.lua wakes the queues where a ref left).
        wake = "" if self.slot else (fn.queue or "default")
        reply = self.save_entry(fn.ref, (fn.namespace, fn.name), fn.spec_json(), fn.enabled, mode, expected_version,
                                (wake, defaults.WAKE_TOKENS_MAX), self.scope)
        if copy and self.slot and (not fn.enabled or int(reply[2])):
            self.copy_disabled()
        return self.get(fn.namespace, fn.name)

    def copy_disabled(self) -> None:
        """On a Redis Cluster, write the set of disabled functions to every queue's slot, where claim.lua reads it
        (copies.py; registry writes do it themselves: this repairs copies a writer killed half-way left behind).
        Nothing on a single Redis."""
        if self.slot:
            copies.sync(self.redis, self.prefix)

    def register(self, namespace: str, name: str, path: str | None, *, replace_existing: bool = True,
                 **options: Any) -> Function:
        """Create a function, or (replace_existing) set every field of an existing one; the version goes up
        only when something changed. Options: queue, timeout, max_attempts, backoff, priority, enabled,
        description. AlreadyExists if it exists and replace_existing is False."""
        self.check_fields(options, SPEC_FIELDS)
        if options.get("description") is None:
            options["description"] = ""
        fn = Function(namespace=namespace, name=name, path=path, **options)
        return self._save(fn, "upsert" if replace_existing else "create")

    def patch(self, namespace: str, name: str, **changes: Any) -> Function:
        """Change some fields (SPEC_FIELDS); the version goes up if anything changed. NotFound if missing."""
        self.check_fields(changes, SPEC_FIELDS)
        # Giving one of path / handler switches the function to it: the other is cleared.
        if changes.get("handler") is not None and "path" not in changes:
            changes["path"] = None
        if changes.get("path") is not None and "handler" not in changes:
            changes["handler"] = None
        if changes.get("description", "") is None:
            changes["description"] = ""

        def attempt() -> Function:
            current = self.get(namespace, name)
            return self._save(replace(current, **changes), "update", expected_version=current.version)

        return self.retry_on_conflict(f"{namespace}/{name}", attempt)

    def enable(self, namespace: str, name: str) -> Function:
        return self.patch(namespace, name, enabled=True)

    def disable(self, namespace: str, name: str) -> Function:
        return self.patch(namespace, name, enabled=False)

    def delete(self, namespace: str, name: str) -> None:
        """Remove a function. Jobs already created from it keep their import path (and, if it was disabled,
        are no longer held)."""
        check_name(namespace, name)
        self._delete(namespace, name)
        self.copy_disabled()

    def _delete(self, namespace: str, name: str) -> None:
        scripts.check(scripts.call(self.redis, "function_delete", self.scope, (self.prefix, namespace, name)),
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
        report = plan_sync(SyncReport(dry_run, namespace=namespace), {n: fn.spec_json() for n, fn in wanted.items()},
                           {n: fn.spec_json() for n, fn in current.items()}, delete_missing)
        if dry_run:
            return report
        for name in report.created + report.updated:
            self._save(wanted[name], "upsert", copy=False)
        for name in report.deleted:
            with contextlib.suppress(NotFound):  # deleted meanwhile: already as wanted
                self._delete(namespace, name)
        # Once for the whole sync, after its writes to the master set; even when nothing changed, so that a sync run
        # again repairs copies an earlier one, killed half-way, left behind.
        self.copy_disabled()
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
        return enqueue(self.redis, self.client.config, [j.spec for j in jobs], [j.fields for j in jobs])
