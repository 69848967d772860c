"""Run part of a test with the session Redis set to an evicting maxmemory-policy, always reset afterwards
(the server is shared by the whole session: a policy left behind would change other tests)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis


@contextmanager
def evicting_policy(conn: redis.Redis, policy: str = "allkeys-lru") -> Iterator[None]:
    before = conn.config_get("maxmemory-policy")["maxmemory-policy"]
    conn.config_set("maxmemory-policy", policy)
    try:
        yield
    finally:
        conn.config_set("maxmemory-policy", before)
