"""The OpenAPI 3 document, generated from the routes and their `operation` declarations: the same
marshmallow schemas that validate requests and shape responses (apispec's MarshmallowPlugin turns
them into JSON Schema). Errors every authenticated call can answer are added here, once."""
from __future__ import annotations

import html
import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

from jobsvc import __version__

from .api import Operation, operation_of
from .schemas import ErrorSchema

SECURITY: list[dict[str, list[str]]] = [{"AdminKey": []}, {"Bearer": []}]
_PATH_ARG = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")

ERROR_TEXT = {
    400: "malformed JSON",
    401: "no API key, or a wrong one",
    403: "the key lacks the scope, or the job / queue is outside its limits",
    404: "no such job, queue, key, schedule or function",
    409: "wrong state: `details.state` is the current one",
    413: "request body over 256 KB",
    422: "validation failed (unknown fields too): `details.fields`",
    428: "X-Confirm: true missing (or send dry_run: true)",
    503: "Redis is unavailable: retry after Retry-After seconds",
}


def _error(status: int) -> dict[str, Any]:
    out: dict[str, Any] = {"description": ERROR_TEXT.get(status, "error"),
                           "content": {"application/json": {"schema": ErrorSchema}}}
    if status == 503:
        out["headers"] = {"Retry-After": {"description": "seconds", "schema": {"type": "string"}}}
    return out


def _to(targets: tuple[str, ...], parameters: dict[str, str]) -> dict[str, Any]:
    return {target: {"operationId": target, "parameters": parameters} for target in targets}


# OpenAPI links: which calls take the id a response returns (clients, and the stateful schemathesis test,
# follow them). operationId -> status -> link name -> link.
_JOB_CALLS = ("jobs_get", "job_runs_runs", "jobs_patch", "jobs_cancel", "jobs_retry", "jobs_delete",
              "job_runs_disable", "job_runs_enable", "job_runs_trigger")
_CREATED_JOB = _to(_JOB_CALLS, {"job_id": "$response.body#/id"})
LINKS: dict[str, dict[str, dict[str, Any]]] = {
    "jobs_create_job": {"201": _CREATED_JOB, "200": _CREATED_JOB},
    "jobs_create_batch": {"201": _to(_JOB_CALLS, {"job_id": "$response.body#/jobs/0/id"})},
    "schedules_create": {"201": _to(("schedules_get", "schedules_runs", "schedules_patch", "schedules_execute",
                                     "schedules_delete"), {"schedule_id": "$response.body#/id"})},
    "schedules_execute": {"201": _to(("jobs_get", "jobs_cancel"), {"job_id": "$response.body#/job_id"})},
    "keys_create": {"201": _to(("keys_get", "keys_revoke"), {"key_id": "$response.body#/id"})},
    "functions_register": {s: _to(("functions_get", "functions_patch", "functions_delete"),
                                  {"namespace": "$response.body#/namespace",
                                   "function_name": "$response.body#/name"}) for s in ("201", "200")},
}


def _add_links(entry: dict[str, Any]) -> None:
    for status, links in LINKS.get(entry["operationId"], {}).items():
        if status in entry["responses"]:
            entry["responses"][status]["links"] = links


def _operation(rule_path: str, method: str, endpoint: str, op: Operation, tag: str) -> dict[str, Any]:
    params = [{"in": "path", "name": name, "required": True, "schema": {"type": "string", "minLength": 1}}
              for name in _PATH_ARG.findall(rule_path)]
    if op.query is not None:
        params.append({"in": "query", "schema": op.query})
    if 428 in op.errors:
        params.append({"in": "header", "name": "X-Confirm", "required": False,
                       "description": "`true` to make the change; not needed with `dry_run: true`",
                       "schema": {"type": "string", "enum": ["true"]}})
    responses: dict[str, Any] = {}
    for status, (text, schema) in sorted(op.responses.items()):
        entry: dict[str, Any] = {"description": text}
        if schema is not None:
            entry["content"] = {"application/json": {"schema": schema}}
        responses[str(status)] = entry
    errors = set(op.errors)
    if op.scope is not None:
        errors |= {401, 403, 503}
    if op.scope is not None or op.query is not None or op.body is not None:
        errors.add(422)  # unknown query parameters or body fields too
    if op.body is not None or (op.scope is not None and method in ("POST", "PUT", "PATCH", "DELETE")):
        errors |= {400, 413}
    if params and any(p["in"] == "path" for p in params):
        errors.add(404)
    for status in sorted(errors):
        responses.setdefault(str(status), _error(status))
    out: dict[str, Any] = {"operationId": endpoint.replace(".", "_"), "summary": op.summary, "tags": [tag],
                           "responses": responses}
    if op.description:
        out["description"] = op.description
    if op.deprecated:
        out["deprecated"] = True
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": op.body_required,
                              "content": {"application/json": {"schema": op.body}}}
    out["security"] = SECURITY if op.scope is not None else []
    if op.scope is not None:
        out["x-scope"] = op.scope
        out["description"] = (out.get("description", "") + f"\n\nScope: `{op.scope}`.").strip()
    return out


def build(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title="jobsvc admin API", version=__version__, openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Every admin operation of jobsvc over HTTP. Authenticate with `X-Admin-Key: <key>` "
                             "(alias `X-API-KEY`) or `Authorization: Bearer <key>`. Errors are "
                             "`{\"error\": {\"code\", \"message\", \"details\"}}`."},
    )
    spec.components.security_scheme("AdminKey", {"type": "apiKey", "in": "header", "name": "X-Admin-Key"})
    spec.components.security_scheme("Bearer", {"type": "http", "scheme": "bearer"})
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        op = operation_of(view)
        if op is None:
            continue
        path = _PATH_ARG.sub(r"{\1}", rule.rule)
        tag = rule.endpoint.split(".", 1)[0]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            entry = _operation(rule.rule, method, rule.endpoint, op, tag)
            _add_links(entry)
            while entry["operationId"] in used:  # one view on two paths (/health and /api/v1/health)
                entry["operationId"] += "_alias"
            used.add(entry["operationId"])
            # Two rules of one path and method: werkzeug serves the first registered, so that is the one shown.
            paths.setdefault(path, {}).setdefault(method.lower(), entry)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


# Swagger UI comes from the swagger-ui-bundle package (setup.cfg), served by this app: the page where admins
# paste their key loads no code from another host, and works offline. The CSP lets nothing else in.
ASSETS_URL = "/api/v1/docs/assets"
SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>jobsvc admin API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="stylesheet" href="{assets}/docs.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png"></head>
<body><div id="swagger-ui" data-spec-url="{spec_url}"></div>
<div id="fallback"><h1>jobsvc admin API</h1>
<p>Machine-readable document: <a href="{spec_url}">{spec_url}</a>. Send <code>X-Admin-Key</code> or
<code>Authorization: Bearer</code> with every call.</p>
<table>{rows}</table></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/docs.js"></script>
</body></html>
"""

# Own assets of the page (inline code would need 'unsafe-inline' in the CSP).
DOCS_CSS = """body{font-family:system-ui,sans-serif;margin:0} #fallback{margin:1em 2em}
#fallback td{padding:2px 12px 2px 0;vertical-align:top} code{font-size:.95em}
"""
# validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io for a badge.
DOCS_JS = """(function () {
  var root = document.getElementById("swagger-ui");
  if (!window.SwaggerUIBundle || !root) { return; }
  document.getElementById("fallback").style.display = "none";
  window.ui = window.SwaggerUIBundle({url: root.getAttribute("data-spec-url"), dom_id: "#swagger-ui",
                                      persistAuthorization: false, validatorUrl: null});
})();
"""
OWN_ASSETS = {"docs.css": (DOCS_CSS, "text/css"), "docs.js": (DOCS_JS, "text/javascript")}


def swagger_ui_dir() -> str:
    from swagger_ui_bundle import swagger_ui_path  # imported here: only the docs page needs it

    return str(swagger_ui_path)


def docs_page(doc: dict[str, Any], spec_url: str) -> str:
    """Swagger UI (served from the package) over the document; a plain table of operations without JavaScript."""
    rows = []
    for path, ops in sorted(doc.get("paths", {}).items()):
        for method, op in ops.items():
            scope = op.get("x-scope", "public")
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                        f"<td>{html.escape(op.get('summary', ''))}</td><td><code>{html.escape(scope)}</code></td></tr>")
    return DOCS_PAGE.format(spec_url=html.escape(spec_url), assets=ASSETS_URL, rows="\n".join(rows))
