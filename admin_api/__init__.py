"""The admin HTTP API (Flask): one blueprint per resource under /api/v1, marshmallow schemas for every
request and response, OpenAPI 3 at /api/v1/openapi.json (docs page at /api/v1/docs).

    gunicorn -c python:admin_api.gunicorn_conf   # production (Procfile `web`, `jobsvc up`); ADMIN_API_KEY set
    JOBSVC_DEV=1 jobsvc api --port 8000          # local run; without ADMIN_API_KEY no key is needed

`create_app` and its companions live in admin_api.factory and are loaded on first use. gunicorn's master
process imports this package for its settings and worker class (gunicorn_conf, gunicorn_worker) before each
gevent worker patches the standard library; Flask, redis and urllib3 must only be imported after that patch
(imported before it, urllib3 keeps the unpatched ssl classes).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .factory import ADMIN_KEY_ENV, DEV_ENV, AdminApp, MissingAdminKey, create_app

_FACTORY_NAMES = ("ADMIN_KEY_ENV", "DEV_ENV", "AdminApp", "MissingAdminKey", "create_app")


def __getattr__(name: str) -> Any:
    if name in _FACTORY_NAMES:
        from . import factory

        return getattr(factory, name)
    raise AttributeError(f"module 'admin_api' has no attribute {name!r}")


__all__ = ["ADMIN_KEY_ENV", "DEV_ENV", "AdminApp", "MissingAdminKey", "create_app"]
