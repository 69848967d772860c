"""The eviction check workers, the scheduler and the API run at startup (jobsvc/redis_check.py)."""
import logging

import redis

from jobsvc.redis_check import EvictionCheck, eviction_check, warn_if_evicting
from tests.eviction import evicting_policy


def test_noeviction_is_safe_and_quiet(r, caplog):
    with caplog.at_level(logging.WARNING, logger="jobsvc.redis"):
        check = warn_if_evicting(r, "worker w1")
    assert check == EvictionCheck("noeviction", 0, "config") and check.safe is True
    assert not caplog.records


def test_an_evicting_policy_is_unsafe_and_warns_once_saying_what_to_set(r, caplog):
    with evicting_policy(r, "allkeys-lru"), caplog.at_level(logging.WARNING, logger="jobsvc.redis"):
        check = warn_if_evicting(r, "worker w1")
    assert check.policy == "allkeys-lru" and check.safe is False
    [line] = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert "worker w1" in line.getMessage() and "maxmemory-policy noeviction" in line.getMessage()
    assert r.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"  # reset by the helper


def test_volatile_policies_are_unsafe_too(r):
    # Leases and finished jobs carry TTLs: volatile-* policies evict exactly those.
    with evicting_policy(r, "volatile-ttl"):
        assert eviction_check(r).safe is False


class _NoConfig(redis.Redis):
    """A Redis whose CONFIG command is disabled, as on many managed services."""

    def config_get(self, *args, **kwargs):
        raise redis.ResponseError("ERR unknown command 'CONFIG', with args beginning with: 'GET'")


def test_without_config_the_policy_comes_from_info_memory(redis_url, r):
    conn = _NoConfig.from_url(redis_url)
    with evicting_policy(r, "allkeys-random"):
        check = eviction_check(conn)
    assert (check.policy, check.source, check.safe) == ("allkeys-random", "info", False)


class _NoConfigNoInfo(_NoConfig):
    def info(self, *args, **kwargs):
        raise redis.ResponseError("NOPERM this user has no permissions to run the 'info' command")


def test_unknown_policy_warns_and_is_not_called_safe(redis_url, caplog):
    with caplog.at_level(logging.WARNING, logger="jobsvc.redis"):
        check = warn_if_evicting(_NoConfigNoInfo.from_url(redis_url), "scheduler")
    assert check.policy is None and check.safe is None
    assert "could not read" in caplog.text


def test_redis_down_at_startup_is_not_an_error_here():
    down = redis.Redis(port=1, socket_connect_timeout=0.1, retry=None)
    assert warn_if_evicting(down) is None


def test_a_worker_is_told_when_no_scheduler_runs(r, config, caplog):
    from jobsvc.engine.keys import Keys
    from jobsvc.redis_check import warn_if_no_scheduler

    r.delete(Keys(config.key_prefix).scheduler_leader)
    assert warn_if_no_scheduler(r, config.key_prefix, "worker w") is False
    assert "no `jobsvc scheduler` is running" in caplog.text
    caplog.clear()
    r.set(Keys(config.key_prefix).scheduler_leader, "token")
    assert warn_if_no_scheduler(r, config.key_prefix, "worker w") is True
    assert caplog.text == ""
