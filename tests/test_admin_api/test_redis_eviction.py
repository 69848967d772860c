"""The admin API's side of the eviction check (jobsvc/redis_check.py): a WARNING when the app starts on a Redis
that may evict, and a banner on the dashboard overview while it does. /health's detail: test_health.py."""
import logging

from admin_api import create_app
from tests.eviction import evicting_policy
from tests.test_admin_api.support import ADMIN_KEY
from tests.test_admin_api.test_dashboard import Dash


def test_the_api_warns_at_startup_on_an_evicting_redis(r, config, caplog):
    with evicting_policy(r, "allkeys-lru"), caplog.at_level(logging.WARNING, logger="jobsvc.redis"):
        create_app(config, r, admin_key=ADMIN_KEY)
    [line] = [rec.getMessage() for rec in caplog.records if rec.name == "jobsvc.redis"]
    assert line.startswith("admin API: Redis evicts keys (maxmemory-policy allkeys-lru")
    assert "Set maxmemory-policy noeviction" in line


def test_the_api_says_nothing_on_a_noeviction_redis(r, config, caplog):
    with caplog.at_level(logging.WARNING, logger="jobsvc.redis"):
        create_app(config, r, admin_key=ADMIN_KEY)
    assert not [rec for rec in caplog.records if rec.name == "jobsvc.redis"]


def test_the_overview_shows_a_banner_while_redis_may_evict(app, r):
    dash = Dash(app)
    assert dash.login(ADMIN_KEY).status_code == 303
    assert 'data-region="redis-eviction"' not in dash.get("/dashboard/").get_data(as_text=True)
    with evicting_policy(r, "volatile-lru"):
        html = dash.get("/dashboard/").get_data(as_text=True)
    assert 'data-region="redis-eviction"' in html and "maxmemory-policy volatile-lru" in html
    assert "Set maxmemory-policy noeviction" in html
