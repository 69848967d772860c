"""The `operation` decorator every endpoint wears: authentication and scope, query and body parsing
by their schemas, the audit entry of a mutating call, and the metadata the OpenAPI document is
built from (admin_api.openapi). One declaration per endpoint, so docs and behaviour agree."""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import wraps
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import Flask, Response, current_app, g, jsonify, request
from marshmallow import Schema

from jobsvc import Client, validation
from jobsvc.admin import audit
from jobsvc.config import Config

from .auth import Principal, require
from .errors import ApiError

log = logging.getLogger("jobsvc.api")


@dataclass
class Operation:
    summary: str
    scope: str | None  # None: public
    query: Schema | None = None
    body: Schema | None = None
    body_required: bool = True
    responses: dict[int, tuple[str, Schema | None]] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    action: str | None = None  # audit action of a mutating call
    description: str = ""
    public_if: Callable[[], bool] | None = None  # the scope is waived while this returns True
    deprecated: bool = False  # an old path kept working: marked so in the OpenAPI document


def operation(summary: str, *, scope: str | None, query: type[Schema] | None = None,
              body: type[Schema] | None = None, body_required: bool = True,
              responses: Mapping[int, tuple[str, type[Schema] | None]] | None = None, errors: tuple[int, ...] = (),
              action: str | None = None, description: str = "",
              public_if: Callable[[], bool] | None = None, deprecated: bool = False) -> Callable[..., Any]:
    """Declare an endpoint. The view is called as view(**path_args, who=Principal|None, q=dict, body=dict)
    (q and body only when declared) and returns a Response."""
    op = Operation(summary=summary, scope=scope, query=query() if query else None, body=body() if body else None,
                   body_required=body_required,
                   responses={s: (d, sch() if sch else None) for s, (d, sch) in (responses or {}).items()},
                   errors=errors, action=action, description=description, public_if=public_if,
                   deprecated=deprecated)

    def deco(fn: Callable[..., Response]) -> Callable[..., Response]:
        @wraps(fn)
        def view(**path: Any) -> Response:
            if op.action:
                g.audit = {"action": op.action, "params": dict(path), "counts": {}}
            who = _caller(op)
            kwargs: dict[str, Any] = dict(path, who=who)
            if op.query is not None:
                check_query_text()
                raw_query = request.args.to_dict(flat=True)
                if op.action:
                    g.audit["params"].update(raw_query)
                kwargs["q"] = op.query.load(raw_query)
            elif op.scope is not None and request.args:
                raise _unknown(request.args, "takes no query parameters")
            if op.body is not None:
                raw_body = read_json(required=op.body_required)
                if op.action and isinstance(raw_body, dict):
                    g.audit["params"].update(raw_body)
                kwargs["body"] = op.body.load(raw_body)
            elif op.scope is not None and request.method in ("POST", "PUT", "PATCH", "DELETE"):
                extra = read_json(required=False)
                if extra != {}:
                    raise _unknown(extra if isinstance(extra, dict) else {"_schema": 1}, "takes no request body")
            return fn(**kwargs)

        _OPERATIONS[view] = op
        return view

    return deco


# The Operation of each view `operation` made, for the OpenAPI document (admin_api.openapi).
_OPERATIONS: dict[Callable[..., Any], Operation] = {}


def operation_of(view: Callable[..., Any] | None) -> Operation | None:
    """The Operation a view was declared with; None for a view `operation` did not make."""
    return _OPERATIONS.get(view) if view is not None else None


def _caller(op: Operation) -> Principal | None:
    """The key calling an operation, checked for its scope; None when the operation is public (now)."""
    if op.scope is None or (op.public_if is not None and op.public_if()):
        return None
    return require(op.scope)


def _unknown(names: Any, what: str) -> ApiError:
    return ApiError(422, f"this endpoint {what}", "validation_error",
                    {"fields": {str(k): ["Unknown field."] for k in names}})


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def read_json(required: bool = True) -> Any:
    """The request body as JSON: {} when empty and optional; 400 when it is not JSON."""
    data = request.get_data(cache=True)  # MAX_CONTENT_LENGTH: 413 before anything is read
    if not data.strip():
        if required:
            raise ApiError(400, "request body must be a JSON object", "malformed_json")
        return {}
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ApiError(400, f"malformed JSON: {str(exc)[:200]}", "malformed_json") from None
    _check_text(value)
    return value


def _check_text(value: Any) -> None:
    """422 naming the first string (key or value, at any depth) that UTF-8 cannot encode. JSON's `\\udc00`
    escape parses to a lone surrogate, which no Redis command, header or JSON answer can carry: refused here,
    where all input enters, before any schema or write sees it."""
    found = validation.unencodable(value)
    if found is None:
        return
    path, is_key = found
    fields: Any = [validation.text_problem(is_key)]
    for part in reversed(path or ["_schema"]):  # nested like marshmallow's errors: {"kwargs": {"a": [...]}}
        fields = {validation.shown(str(part)): fields}
    where = validation.dotted(path) or "the request"
    raise ApiError(422, f"request failed validation: {where} is not valid Unicode text", "validation_error",
                   {"fields": fields})


def check_query_text() -> None:
    """The query string's names and values must be UTF-8 once percent-decoded (werkzeug would keep a bad
    escape such as `%ED%B0%80`, a UTF-8-encoded surrogate, as literal text): 422 naming the parameter."""
    for part in request.query_string.split(b"&"):
        name, _, value = (unquote_to_bytes(x.replace(b"+", b" ")).decode("utf-8", "surrogateescape")
                          for x in part.partition(b"="))
        _check_text({name: value})


def audit_counts(**counts: Any) -> None:
    """Counts of the current mutating call for its audit entry."""
    if getattr(g, "audit", None) is not None:
        g.audit["counts"].update(counts)


def confirm(dry_run: bool) -> None:
    """A change (not a dry run) needs `X-Confirm: true`: 428 without it."""
    if not dry_run and request.headers.get("X-Confirm", "").strip().lower() != "true":
        raise ApiError(428, "this changes jobs: send X-Confirm: true, or dry_run: true to preview",
                       "confirmation_required")


def reply(schema: type[Schema], data: Any, status: int = 200) -> Response:
    resp = jsonify(schema().dump(data))
    resp.status_code = status
    return resp


def no_content() -> Response:
    return Response(status=204)


def conn() -> Any:
    return current_app.extensions["jobsvc_redis"]


def config() -> Config:
    return current_app.config["JOBSVC"]


def client() -> Client:
    return current_app.extensions["jobsvc_client"]


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of a job's args, kwargs or result (Python callers may store any picklable value):
    tuples become lists, other objects their repr, non-finite floats strings."""
    if depth > 64:
        return "..."
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k if isinstance(k, str) else repr(k): jsonable(v, depth + 1) for k, v in value.items()}
    return repr(value)


def write_audit(response: Response) -> Response:
    """after_request: one audit entry per mutating call that got past authentication."""
    entry = getattr(g, "audit", None)
    principal = getattr(g, "principal", None)
    if entry is None or principal is None or response.status_code == 503:
        return response
    try:
        audit.record(conn(), config().key_prefix, principal.key_id, entry["action"], entry["params"],
                     entry["counts"], response.status_code)
    except Exception:  # the call itself is done; say so loudly, but answer it
        log.exception("could not write the audit entry of %s", entry["action"])
    return response


def install(app: Flask) -> None:
    app.after_request(write_audit)


__all__ = ["ApiError", "Operation", "audit_counts", "client", "config", "confirm", "conn",
           "jsonable", "no_content", "operation", "read_json", "reply"]
