"""/api/v1/functions and /api/v1/namespaces: the functions registry -- named job functions (`ns/name` -> an
import path) with their job defaults. List, register, get, patch, delete, namespaces, and a declarative sync.

The work is jobsvc.engine.functions' (`Registry`). A key limited to namespaces or queues sees only the functions
whose jobs it could see (a function's queue is its default queue, else `default`)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from jobsvc.admin.apikeys import ADMIN, READ, WRITE
from jobsvc.engine.functions import Function, Registry
from jobsvc.errors import AlreadyExists, NotFound

from .. import schemas as s
from ..api import audit_counts, client, confirm, no_content, operation, reply
from ..auth import Principal, forbidden, require_code_choice, require_unlimited

bp = Blueprint("functions", __name__, url_prefix="/api/v1")

FUNCTION = ("the function", s.FunctionSchema)


def registry() -> Registry:
    return Registry(client())


def backoff_in(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """The API's backoff {type, base, cap, jitter} as the core's {kind, ...}."""
    if value is None:
        return None
    out = {k: v for k, v in value.items() if k != "type"}
    out["kind"] = value["type"]
    return out


def backoff_out(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if not value:
        return None
    return {"type": value["kind"], "base": value["base"], "cap": value["cap"], "jitter": value["jitter"]}


def function_dict(fn: Function) -> dict[str, Any]:
    d = fn.to_dict()
    out = {k: d.get(k) for k in ("namespace", "name", "ref", "path", "handler", "queue", "timeout", "max_attempts",
                                 "priority", "enabled", "description", "version")}
    out["description"] = out["description"] or ""
    out.update(backoff=backoff_out(d.get("backoff")), created_at=d.get("created_ms"), updated_at=d.get("updated_ms"))
    return out


def _sees(who: Principal, fn: Function) -> bool:
    return who.sees(fn.queue or "default", fn.namespace)


def visible_function(who: Principal, namespace: str, name: str) -> Function:
    fn = registry().get(namespace, name)
    if not _sees(who, fn):
        raise NotFound(f"no function {namespace}/{name}")
    return fn


def _options(body: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in body.items() if k not in ("namespace", "name", "path", "replace")}
    if "backoff" in values:
        values["backoff"] = backoff_in(values["backoff"])
    return values


@bp.get("/functions")
@operation("List registry functions", scope=READ, query=s.FunctionListQuery,
           responses={200: ("one page", s.FunctionPageSchema)},
           description="By namespace, then name. Pass `next_cursor` back as `cursor`.")
def list_(who: Principal, q: dict[str, Any]) -> Response:
    namespace = who.narrow("namespace", q.get("namespace"))
    items, cursor = registry().list(namespace, q.get("cursor"), q["limit"])
    rows = [function_dict(fn) for fn in items if _sees(who, fn)]
    return reply(s.FunctionPageSchema, {"functions": rows, "next_cursor": cursor})


@bp.post("/functions")
@operation("Register a function", scope=ADMIN, body=s.FunctionCreateSchema, action="functions.register",
           responses={201: ("registered", s.FunctionSchema),
                      200: ("it existed and `replace` was true: every field replaced", s.FunctionSchema)},
           errors=(409,),
           description="Creates `namespace/name`. An existing name is refused (409 already_exists: change it with "
                       "PATCH) unless the body says `replace: true`, which sets every field to the body's, a field "
                       "left out to its default (the version goes up only when something changed). A POST never "
                       "merges: a retried create must not quietly reset a function someone else changed. "
                       "The registry stores import paths, never code. An admin "
                       "action: a function decides what code runs (its `path` must lie inside "
                       "JOBSVC_ALLOWED_MODULES) or which service is called (`handler`).")
def register(who: Principal, body: dict[str, Any]) -> Response:
    namespace = body.get("namespace") or who.narrow("namespace", None) or "default"
    fn = Function(namespace=namespace, name=body["name"], path=body.get("path"), **{
        **_options(body), "description": body.get("description") or ""})
    if not _sees(who, fn):
        raise forbidden("this key may not register functions outside its namespaces or queues")
    try:
        old = registry().get(namespace, body["name"])
    except NotFound:
        old = None
    if old is not None and not _sees(who, old):
        raise forbidden("this function is outside the key's namespaces or queues")
    if body.get("path"):
        require_code_choice(who, body["path"], "a function")
    try:
        # Refused inside function_save.lua when the name is taken (not only by the read above): atomic.
        saved = registry().register(namespace, body["name"], body.get("path"), replace_existing=body["replace"],
                                    **_options(body))
    except AlreadyExists:
        raise AlreadyExists(f"function {namespace}/{body['name']} exists: change it with PATCH "
                            f"/api/v1/functions/{namespace}/{body['name']}, or send \"replace\": true") from None
    audit_counts(created=int(old is None), version=saved.version)
    return reply(s.FunctionSchema, function_dict(saved), 201 if old is None else 200)


@bp.get("/functions/<namespace>/<function_name>")
@operation("Get a function", scope=READ, responses={200: FUNCTION}, errors=(404,))
def get(namespace: str, function_name: str, who: Principal) -> Response:
    return reply(s.FunctionSchema, function_dict(visible_function(who, namespace, function_name)))


@bp.patch("/functions/<namespace>/<function_name>")
@operation("Change a function", scope=WRITE, body=s.FunctionPatchSchema, action="functions.patch",
           responses={200: FUNCTION}, errors=(404, 409),
           description="Some fields; `enabled: false` disables it: new jobs of it are refused (409) and its queued "
                       "jobs wait until it is enabled again. Changing `path` or `handler` needs an admin key.")
def patch(namespace: str, function_name: str, who: Principal, body: dict[str, Any]) -> Response:
    visible_function(who, namespace, function_name)
    changes = _options(body)
    if "handler" in body and not who.grants(ADMIN):
        raise forbidden("changing a function's handler is an admin action: it decides which service is called")
    if "path" in body:
        if body["path"]:
            require_code_choice(who, body["path"], "a function")
        elif not who.grants(ADMIN):
            raise forbidden("changing a function's path is an admin action")
        changes["path"] = body["path"]
    if who.queues is not None and "queue" in changes and not who.sees(changes["queue"] or "default", namespace):
        raise forbidden("this key may not move a function outside its queues")
    fn = registry().patch(namespace, function_name, **changes)
    audit_counts(changed=1, version=fn.version)
    return reply(s.FunctionSchema, function_dict(fn))


@bp.delete("/functions/<namespace>/<function_name>")
@operation("Delete a function", scope=ADMIN, action="functions.delete", responses={204: ("deleted", None)},
           errors=(404,), description="Jobs already made from it keep their import path.")
def delete(namespace: str, function_name: str, who: Principal) -> Response:
    visible_function(who, namespace, function_name)
    registry().delete(namespace, function_name)
    audit_counts(deleted=1)
    return no_content()


def _counted_for(who: Principal, namespaces: set[str]) -> list[dict[str, Any]]:
    """Namespaces with the functions a queue-limited key may see, counted as /namespaces counts them (the
    registry is admin-declared and small: reading it whole is fine)."""
    rows: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        items, cursor = registry().list(None, cursor, 500)
        for fn in items:
            if fn.namespace in namespaces and _sees(who, fn):
                row = rows.setdefault(fn.namespace, {"namespace": fn.namespace, "functions": 0, "disabled": 0})
                row["functions"] += 1
                row["disabled"] += int(not fn.enabled)
        if not cursor:
            return [rows[n] for n in sorted(rows)]


@bp.get("/namespaces")
@operation("Namespaces that have functions", scope=READ, responses={200: ("namespaces", s.NamespaceListSchema)},
           description="Each with how many functions it has and how many are disabled.")
def namespaces(who: Principal) -> Response:
    rows = [n for n in registry().namespaces() if who.namespaces is None or n["namespace"] in who.namespaces]
    if who.queues is not None:  # a key limited to queues learns only of namespaces whose functions it sees
        rows = _counted_for(who, {n["namespace"] for n in rows})
    return reply(s.NamespaceListSchema, {"namespaces": rows})


@bp.post("/functions/sync")
@operation("Make a namespace hold exactly these functions", scope=ADMIN, body=s.FunctionSyncSchema,
           action="functions.sync", responses={200: ("what was (or, dry run, would be) done",
                                                     s.FunctionSyncResultSchema)}, errors=(428,),
           description="Creates the new, updates the changed and, with `delete_missing`, deletes those not listed. "
                       "A dry run reports the same and changes nothing. A real run with `delete_missing` needs "
                       "`X-Confirm: true`.")
def sync(who: Principal, body: dict[str, Any]) -> Response:
    if who.queues is not None:
        require_unlimited(who, "a functions sync")
    namespace = who.narrow("namespace", body.get("namespace")) or "default"
    if body["delete_missing"]:
        confirm(body["dry_run"])
    items = []
    for item in body["functions"]:
        if item.get("path"):
            require_code_choice(who, item["path"], f"function {item.get('name')!r}")
        values = dict(item)
        if "backoff" in values:
            values["backoff"] = backoff_in(values["backoff"])
        items.append(values)
    report = registry().sync(namespace, items, delete_missing=body["delete_missing"], dry_run=body["dry_run"])
    audit_counts(created=len(report.created), updated=len(report.updated), deleted=len(report.deleted),
                 unchanged=len(report.unchanged))
    return reply(s.FunctionSyncResultSchema, report.to_dict())


__all__ = ["backoff_in", "backoff_out", "bp", "function_dict", "visible_function"]
