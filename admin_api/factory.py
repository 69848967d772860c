"""create_app(): the admin API's Flask app (imported through the package: `from admin_api import create_app`)."""
from __future__ import annotations

import logging
import os

import redis
from flask import Flask, Response, request
from flask.json.provider import DefaultJSONProvider

from jobsvc import Client, JobsvcError
from jobsvc.config import Config
from jobsvc.engine.connection import connect
from jobsvc.redis_check import EvictionCheck, eviction_check, refuse_cluster, warn_if_evicting

from . import api, blueprints, dashboard, errors

log = logging.getLogger("jobsvc.api")

ADMIN_KEY_ENV = "ADMIN_API_KEY"
DEV_ENV = "JOBSVC_DEV"


class _JSONProvider(DefaultJSONProvider):
    sort_keys = False  # answers keep the order their code builds them in


class AdminApp(Flask):
    json_provider_class = _JSONProvider

    def make_default_options_response(self) -> Response:
        """OPTIONS advertises the methods of the path's own route only (errors.own_methods says why)."""
        resp = self.response_class()
        resp.allow.update(errors.own_methods())
        return resp

    def answer_options(self) -> Response | None:
        """before_request, ahead of every blueprint's: an automatic OPTIONS only describes the route, so it is
        answered the same everywhere, before the dashboard's sign-in gate would redirect it."""
        rule = request.url_rule
        # Flask.add_url_rule sets provide_automatic_options on every rule; werkzeug's Rule does not declare it.
        automatic = getattr(rule, "provide_automatic_options", False)
        if request.method == "OPTIONS" and rule is not None and automatic:
            return self.make_default_options_response()
        return None


class MissingAdminKey(JobsvcError, RuntimeError):
    """The API will not serve without ADMIN_API_KEY unless it is a local dev run (a JobsvcError, so the CLI
    prints it as one line)."""


def create_app(config: Config | None = None, connection: redis.Redis | None = None, *,
               admin_key: str | None = None, dev: bool | None = None) -> Flask:
    """App factory. The admin key comes from `admin_key` or $ADMIN_API_KEY; without one it refuses to
    start (MissingAdminKey) unless `dev=True` or $JOBSVC_DEV=1, and then a request without a key is let in."""
    admin_key = admin_key if admin_key is not None else (os.environ.get(ADMIN_KEY_ENV) or None)
    if dev is None:
        dev = os.environ.get(DEV_ENV, "").strip().lower() in ("1", "true", "yes")
    if not admin_key and not dev:
        raise MissingAdminKey(f"set {ADMIN_KEY_ENV} (a long random secret) before serving the admin API, "
                              f"or {DEV_ENV}=1 for a local dev run without a key")
    if admin_key is not None and not admin_key.strip():
        raise MissingAdminKey(f"{ADMIN_KEY_ENV} is empty")
    config = config or Config.from_env()
    app = AdminApp("admin_api")
    app.config["JOBSVC"] = config
    app.config["JOBSVC_ADMIN_KEY"] = admin_key or None
    app.config["JOBSVC_DEV"] = bool(dev)
    app.config["ADMIN_API_KEY_SET"] = bool(admin_key)
    conn = connection or connect(config.redis_url, config)
    # A cluster client runs (docs/cluster.md 2.6); a plain redis:// URL to a cluster node is told to say so.
    refuse_cluster(conn)
    app.extensions["jobsvc_redis"] = conn
    app.extensions["jobsvc_client"] = Client(conn, config)
    errors.register(app)
    app.before_request(app.answer_options)
    api.install(app)
    blueprints.register(app)
    dashboard.register(app)  # /dashboard: the operator UI over the same core
    warn_if_evicting(conn, "admin API")
    app.add_template_global(redis_eviction)  # the dashboard overview's banner
    if not admin_key:
        log.warning("admin API in dev mode without %s: requests without a key act as admin", ADMIN_KEY_ENV)
    elif len(admin_key) < 16:
        log.warning("%s is shorter than 16 characters: use a long random secret", ADMIN_KEY_ENV)
    return app


def redis_eviction() -> EvictionCheck | None:
    """Redis' eviction settings now, for the dashboard's warning banner (None while Redis does not answer)."""
    from flask import current_app

    try:
        return eviction_check(current_app.extensions["jobsvc_redis"])
    except redis.RedisError:
        return None


__all__ = ["ADMIN_KEY_ENV", "DEV_ENV", "AdminApp", "MissingAdminKey", "create_app"]
