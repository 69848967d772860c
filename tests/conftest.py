"""Shared fixtures: one real redis-server per test session on a free port (never 6379), flushed per test."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jobsvc import Client, Config  # noqa: E402
from jobsvc.embedded import EmbeddedRedis  # noqa: E402


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    return redis_server.url


@pytest.fixture
def r(redis_server):
    conn = redis.Redis.from_url(redis_server.url)
    conn.flushdb()  # our own server on our own port: safe to flush
    yield conn
    conn.close()


@pytest.fixture
def config(redis_url):
    return Config(redis_url=redis_url)


@pytest.fixture
def client(r, config):
    return Client(r, config)


@pytest.fixture
def subprocess_env(redis_url):
    """Environment for worker/scheduler child processes: the test Redis, and tests/ importable."""
    env = dict(os.environ)
    env["REDIS_URL"] = redis_url
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env
