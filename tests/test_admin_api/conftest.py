"""Admin API fixtures: the app on the session's real Redis, an HTTP helper that sends a key, scoped keys."""
from __future__ import annotations

import pytest

from admin_api import create_app
from jobsvc.admin import apikeys
from jobsvc.engine.leases import Leases
from tests.test_admin_api.support import ADMIN_KEY, Api


@pytest.fixture
def app(r, config):
    return create_app(config, r, admin_key=ADMIN_KEY)


@pytest.fixture
def api(app):
    """Calls with ADMIN_API_KEY."""
    return Api(app, ADMIN_KEY)


@pytest.fixture
def make_key(r, config):
    """make_key("jobs:read", namespaces=[...], queues=[...]) -> the secret of a new scoped key."""

    def make(*scopes: str, namespaces: list[str] | None = None, queues: list[str] | None = None) -> str:
        _, secret = apikeys.create(r, config.key_prefix, "test", scopes, namespaces, queues)
        return secret

    return make


@pytest.fixture
def leases(r, config):
    return Leases(r, config)

