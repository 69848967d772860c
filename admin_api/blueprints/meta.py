"""Health (public), the OpenAPI document and its docs page (public: they describe, they reveal no data)."""
from __future__ import annotations

import redis
from flask import Blueprint, Response, current_app, jsonify

from .. import openapi
from .. import schemas as s
from ..api import conn, operation, reply
from ..errors import RETRY_AFTER

bp = Blueprint("meta", __name__)

SPEC_URL = "/api/v1/openapi.json"


@bp.get("/health")
@bp.get("/api/v1/health")
@operation("Is the API up, and can it reach Redis?", scope=None,
           responses={200: ("up", s.HealthSchema), 503: ("Redis is down (see Retry-After)", s.HealthSchema)})
def health(who: None) -> Response:
    try:
        conn().ping()
    except redis.RedisError as exc:
        resp = reply(s.HealthSchema, {"status": "unavailable", "redis": "down",
                                      "error": {"code": "redis_unavailable", "message": str(exc), "details": {}}},
                     503)
        resp.headers["Retry-After"] = RETRY_AFTER
        return resp
    return reply(s.HealthSchema, {"status": "ok", "redis": "up"})


def document() -> dict:
    doc = current_app.extensions.get("jobsvc_openapi")
    if doc is None:
        doc = current_app.extensions["jobsvc_openapi"] = openapi.build(current_app)
    return doc


@bp.get(SPEC_URL)
def openapi_json() -> Response:
    return jsonify(document())


@bp.get("/api/v1/docs")
def docs() -> Response:
    return Response(openapi.docs_page(document(), SPEC_URL), mimetype="text/html")
