"""The admin HTTP API (Flask). This package grows one blueprint per resource."""
from __future__ import annotations

import os

import redis
from flask import Flask, jsonify

from jobsvc.config import Config
from jobsvc.connection import connect


def create_app(config: Config | None = None, connection: redis.Redis | None = None) -> Flask:
    """App factory: `gunicorn 'admin_api:create_app()'`."""
    config = config or Config.from_env()
    app = Flask("admin_api")
    app.config["JOBSVC"] = config
    conn = connection or connect(config.redis_url, config)
    app.extensions["jobsvc_redis"] = conn
    app.config["ADMIN_API_KEY_SET"] = bool(os.environ.get("ADMIN_API_KEY"))

    @app.get("/health")
    @app.get("/api/v1/health")
    def health():  # type: ignore[no-untyped-def]
        try:
            conn.ping()
        except redis.RedisError as exc:
            body = {"status": "unavailable", "redis": "down",
                    "error": {"code": "redis_unavailable", "message": str(exc), "details": {}}}
            resp = jsonify(body)
            resp.status_code = 503
            resp.headers["Retry-After"] = "5"
            return resp
        return jsonify({"status": "ok", "redis": "up"})

    return app
