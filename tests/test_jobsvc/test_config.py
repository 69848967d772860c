import pytest

from jobsvc import Config, defaults
from jobsvc.errors import ValidationError


def test_defaults_come_from_defaults_module():
    c = Config()
    assert (c.lease_ttl, c.heartbeat_interval, c.max_lease_losses) == (
        defaults.LEASE_TTL, defaults.HEARTBEAT_INTERVAL, defaults.MAX_LEASE_LOSSES)


def test_env_overrides_defaults():
    c = Config.from_env({"REDIS_URL": "redis://x:1/2", "JOBSVC_LEASE_TTL": "12", "JOBSVC_MAX_LEASE_LOSSES": "5",
                         "JOBSVC_HEARTBEAT_INTERVAL": "4"})
    assert (c.redis_url, c.lease_ttl, c.max_lease_losses, c.heartbeat_interval) == ("redis://x:1/2", 12.0, 5, 4.0)


def test_flags_override_env():
    c = Config.from_env({"JOBSVC_LEASE_TTL": "12"}, lease_ttl=6.0, heartbeat_interval=2.0)
    assert c.lease_ttl == 6.0


def test_heartbeat_must_be_shorter_than_lease():
    with pytest.raises(ValidationError):
        Config(lease_ttl=5, heartbeat_interval=5)


def test_non_numeric_env_is_a_clear_error():
    with pytest.raises(ValidationError, match="JOBSVC_LEASE_TTL"):
        Config.from_env({"JOBSVC_LEASE_TTL": "soon"})


@pytest.mark.parametrize("prefix", ["app%s:", "a%"])
def test_a_prefix_that_would_break_key_templates_is_refused(prefix):
    """'%' is a name slot in keys.py's templates; braces stay allowed on a single Redis (`{app}:`, a common way to
    keep every key of an app in one cluster slot)."""
    with pytest.raises(ValidationError, match="key_prefix must not contain '%'"):
        Config(key_prefix=prefix)
    assert Config(key_prefix="{app}:").key_prefix == "{app}:"
