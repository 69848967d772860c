"""Is this Redis safe to keep jobs in? A Redis with an eviction policy other than `noeviction` drops keys
when it reaches `maxmemory`: a job hash, a lease or a queue list can vanish without an error. Workers, the
scheduler and the admin API check once when they start (`warn_if_evicting`) and say so in one WARNING line;
the API also shows the result in the authenticated /health detail and on the dashboard overview."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis

from .engine.connection import address, is_cluster, text
from .errors import ValidationError
from .scheduling.leader import leader_key

log = logging.getLogger("jobsvc.redis")

SAFE_POLICY = "noeviction"


@dataclass(frozen=True)
class EvictionCheck:
    """What Redis says about eviction. `policy` is None when neither CONFIG nor INFO would tell."""

    policy: str | None
    maxmemory: int | None  # bytes; 0 = no limit
    source: str  # "config", "info" or "unknown"

    @property
    def safe(self) -> bool | None:
        """True for noeviction, False for any evicting policy (even with no maxmemory yet: eviction starts as
        soon as a limit is set, and managed Redis services set one), None when unknown."""
        return None if self.policy is None else self.policy == SAFE_POLICY

    def advice(self) -> str:
        """One sentence for a log line or a banner: what is wrong and what to set."""
        if self.policy is None:
            return ("could not read Redis' maxmemory-policy (CONFIG and INFO refused): make sure it is "
                    f"{SAFE_POLICY}, or Redis may evict jobs, leases and queues when it is full")
        limit = "no maxmemory limit yet" if not self.maxmemory else f"maxmemory {self.maxmemory} bytes"
        return (f"Redis evicts keys (maxmemory-policy {self.policy}, {limit}): jobs, leases and queues can "
                f"vanish silently when it is full. Set maxmemory-policy {SAFE_POLICY} "
                f"(redis.conf, or CONFIG SET maxmemory-policy {SAFE_POLICY})")

    def as_dict(self) -> dict[str, Any]:
        return {"maxmemory_policy": self.policy, "maxmemory": self.maxmemory, "eviction_safe": self.safe,
                "source": self.source}



def _from_config(conn: redis.Redis) -> EvictionCheck:
    # One command for both settings; Redis answers a pattern with every matching parameter.
    found = {text(k): text(v) for k, v in conn.config_get("maxmemory*").items()}
    return EvictionCheck(found["maxmemory-policy"], int(found.get("maxmemory", 0)), "config")


def _from_info(conn: redis.Redis) -> EvictionCheck:
    # Managed Redis services often disable or rename CONFIG; INFO memory carries the same two values.
    info = conn.info("memory")
    policy = info.get("maxmemory_policy")
    return EvictionCheck(text(policy), int(info.get("maxmemory", 0)), "info") if policy is not None \
        else EvictionCheck(None, None, "unknown")


def eviction_check(conn: redis.Redis) -> EvictionCheck:
    """Redis' eviction settings: from CONFIG GET, else INFO memory, else unknown. Connection errors propagate
    (Redis is down: the caller decides); a refused command only moves on to the next source."""
    for read in (_from_config, _from_info):
        try:
            return read(conn)
        except (redis.ConnectionError, redis.TimeoutError):
            raise
        except (redis.ResponseError, KeyError, ValueError):  # CONFIG renamed / ACL NOPERM / odd reply
            continue
    return EvictionCheck(None, None, "unknown")


def ensure_reachable(conn: redis.Redis) -> None:
    """Is Redis reachable? Raises redis.RedisError when it is not."""
    conn.ping()


def server_detail(conn: redis.Redis) -> dict[str, Any]:
    """What an operator needs to know of this Redis (the authenticated /health detail): its address, version and
    eviction settings, and what to set when they are not safe. Raises redis.RedisError when Redis is down."""
    check = eviction_check(conn)
    try:
        version = str(conn.info("server").get("redis_version")) or None
    except redis.ResponseError:  # INFO disabled: the version is only nice to have
        version = None
    return {"address": address(conn), "version": version, "maxmemory_policy": check.policy,
            "maxmemory": check.maxmemory, "eviction_safe": check.safe,
            "eviction_warning": None if check.safe else check.advice()}


def refuse_cluster(conn: redis.Redis) -> None:
    """The startup check every process and CLI command makes before its first script: a cluster node reached
    through a plain redis:// URL would fail later, job by job (CROSSSLOT, MOVED); this says so at once
    (ValidationError), with what to do: name it with a redis+cluster:// URL. A cluster client passes (it is what
    that URL gives); a Redis that will not answer INFO, or is down, is left to the caller."""
    if is_cluster(conn):
        return
    try:
        enabled = conn.info("cluster").get("cluster_enabled")
    except redis.RedisError:
        return
    if str(enabled) == "1":
        raise ValidationError(f"{address(conn)} is a Redis Cluster node. Name the cluster with a "
                              f"redis+cluster://{address(conn).rsplit('/', 1)[0]} URL: jobsvc then sends each call "
                              "to the node of its queue's slot (docs/cluster.md)")


def warn_if_evicting(conn: redis.Redis, who: str = "jobsvc") -> EvictionCheck | None:
    """The startup check: one WARNING line when Redis may evict (or will not say). Never raises: a Redis that
    is down at startup is the caller's own business (it retries or reports it), so this returns None."""
    try:
        check = eviction_check(conn)
    except redis.RedisError as exc:
        log.debug("%s: could not check Redis' eviction policy: %s", who, exc)
        return None
    if not check.safe:
        log.warning("%s: %s", who, check.advice())
    return check


def warn_if_no_scheduler(conn: redis.Redis, prefix: str, who: str = "jobsvc") -> bool:
    """The worker's startup check: one WARNING line when no scheduler holds the leader lock. Workers run jobs
    without one, but delayed jobs, retries after a wait and cron fire only through it, and its TTL sweep is what
    deletes finished jobs (they get no Redis expiry). Returns whether one runs; never raises."""
    try:
        running = bool(conn.exists(leader_key(conn, prefix)))
    except redis.RedisError as exc:
        log.debug("%s: could not check for a scheduler: %s", who, exc)
        return True
    if not running:
        log.warning("%s: no `jobsvc scheduler` is running: delayed jobs, retries after a wait and cron schedules "
                    "wait for one, and finished jobs are deleted at their TTL only by its sweep", who)
    return running


__all__ = ["SAFE_POLICY", "EvictionCheck", "address", "ensure_reachable", "eviction_check", "refuse_cluster",
           "server_detail",
           "warn_if_evicting", "warn_if_no_scheduler"]
