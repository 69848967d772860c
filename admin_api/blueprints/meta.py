"""Health (public: up or down only; with any valid key, the Redis details an operator needs), the OpenAPI
document and its docs page (public: they describe, they reveal no data)."""
from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory
from marshmallow import fields
from werkzeug.exceptions import NotFound

from jobsvc import redis_check

from .. import openapi
from .. import schemas as s
from ..api import conn, operation, reply
from ..auth import authenticate, dev_without_key
from ..errors import RETRY_AFTER

bp = Blueprint("meta", __name__)

SPEC_URL = "/api/v1/openapi.json"
ASSET_MAX_AGE = 3600  # seconds; an upgrade's new Swagger UI shows within the hour


class RedisDetailSchema(s.Base):
    address = fields.String(required=True, metadata={"description": "host:port/db (or unix socket) the API uses"})
    version = fields.String(allow_none=True)
    maxmemory_policy = fields.String(allow_none=True, metadata={"description": "null when Redis would not say"})
    maxmemory = fields.Integer(allow_none=True, metadata={"description": "bytes; 0 = no limit"})
    eviction_safe = fields.Boolean(allow_none=True, metadata={
        "description": "false: Redis may evict jobs, leases and queues (any policy but noeviction)"})
    eviction_warning = fields.String(allow_none=True, metadata={"description": "what to set, when not safe"})
    error = fields.String(metadata={"description": "why Redis is down"})


class HealthDetailSchema(s.Base):
    redis = fields.Nested(RedisDetailSchema, required=True)


class HealthReportSchema(s.HealthSchema):
    detail = fields.Nested(HealthDetailSchema, metadata={"description": "only with a valid key (any scope)"})


HEALTH_TEXT = ("Public: up or down, nothing else (load balancers call it without a key). With any valid key "
               "(any scope) the answer adds `detail.redis`: the address the API uses, the Redis version and "
               "its eviction policy (`eviction_safe: false` when Redis may evict jobs). A wrong key is 401.")


@bp.get("/health")
@bp.get("/api/v1/health")
@operation("Is the API up, and can it reach Redis?", scope=None, description=HEALTH_TEXT,
           responses={200: ("up", HealthReportSchema), 503: ("Redis is down (see Retry-After)", HealthReportSchema)},
           errors=(401,))
def health(who: None) -> Response:
    detailed = _may_see_detail()
    c = conn()
    try:
        redis_check.ensure_reachable(c)
        body: dict[str, Any] = {"status": "ok", "redis": "up"}
        if detailed:
            body["detail"] = {"redis": redis_check.server_detail(c)}
        return reply(HealthReportSchema, body)
    except redis.RedisError as exc:
        # Never the exception text here: redis-py names the host and port it could not reach.
        body = {"status": "unavailable", "redis": "down",
                "error": {"code": "redis_unavailable", "message": "Redis is unavailable", "details": {}}}
        if detailed:
            body["detail"] = {"redis": {"address": redis_check.address(c), "error": f"{type(exc).__name__}: {exc}"}}
        resp = reply(HealthReportSchema, body, 503)
        resp.headers["Retry-After"] = RETRY_AFTER
        return resp


def _may_see_detail() -> bool:
    """A valid key of any scope (or a keyless dev run) sees the detail; no key sees up / down only; a wrong
    key is 401 (authenticate raises). A scoped key cannot be checked while Redis is down: no detail then."""
    if not (request.headers.get("X-Admin-Key") or request.headers.get("Authorization")) and not dev_without_key():
        return False
    try:
        authenticate()
    except redis.RedisError:
        return False
    return True


def document() -> dict[str, Any]:
    doc = current_app.extensions.get("jobsvc_openapi")
    if doc is None:
        doc = current_app.extensions["jobsvc_openapi"] = openapi.build(current_app)
    return doc


@bp.get(SPEC_URL)
def openapi_json() -> Response:
    return jsonify(document())


@bp.get("/api/v1/docs")
def docs() -> Response:
    resp = Response(openapi.docs_page(document(), SPEC_URL), mimetype="text/html")
    resp.headers["Content-Security-Policy"] = openapi.DOCS_CSP
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


@bp.get(f"{openapi.ASSETS_URL}/<name>")
def docs_asset(name: str) -> Response:
    """The docs page's scripts, styles and icon: Swagger UI's files from its package, and the page's own."""
    if name in openapi.OWN_ASSETS:
        text, mimetype = openapi.OWN_ASSETS[name]
        resp = Response(text, mimetype=mimetype)
    elif name in openapi.SWAGGER_FILES:
        resp = send_from_directory(openapi.swagger_ui_dir(), name, max_age=ASSET_MAX_AGE)
    else:
        raise NotFound()
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.cache_control.max_age = ASSET_MAX_AGE
    resp.cache_control.public = True
    return resp
