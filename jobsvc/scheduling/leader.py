"""The leader lock: of any number of scheduler processes one leads (promotes, reaps, sweeps, fires schedules);
a standby takes over when the leader's lock TTL runs out."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import redis

from ..config import Config
from ..engine import scripts
from ..engine.connection import is_cluster
from ..engine.keys import Keys, cluster_name


def leader_key(conn: object, prefix: str) -> str:
    """The leader lock's name: on a Redis Cluster in a slot of its own, `{#scheduler}` (docs/cluster.md 2.4), so
    one master holds it whatever queues there are."""
    return cluster_name(prefix, "scheduler_leader") if is_cluster(conn) else Keys(prefix).scheduler_leader


@dataclass
class LeaderLock:
    """A lock with a token and a TTL: one scheduler leads; a standby takes over when the TTL runs out."""

    redis: redis.Redis
    config: Config
    token: str = field(default_factory=lambda: secrets.token_hex(16))

    @property
    def key(self) -> str:
        return leader_key(self.redis, self.config.key_prefix)

    def run_once(self) -> bool:
        """Acquire or renew; True while this process leads."""
        ttl_ms = int(self.config.leader_ttl * 1000)
        return bool(scripts.call(self.redis, "leader_acquire", (self.key,), (self.token, ttl_ms)))

    def release(self) -> bool:
        return bool(scripts.call(self.redis, "leader_release", (self.key,), (self.token,)))
