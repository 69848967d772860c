import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from admin_api import create_app

from tests.test_admin_api.support import ADMIN_KEY


def test_health_reports_redis_up(r, config):
    resp = create_app(config, r, admin_key=ADMIN_KEY).test_client().get("/health")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "redis": "up"}


def test_health_needs_no_key(api):
    anonymous = api.as_key(None)
    assert anonymous.get("/health").status_code == 200
    assert anonymous.get("/health").status_code == anonymous.http.get("/api/v1/health").status_code


def test_health_is_503_with_retry_after_when_redis_is_down(config):
    down = redis.Redis(port=1, socket_connect_timeout=0.1, retry=Retry(NoBackoff(), 0))
    resp = create_app(config, down, admin_key=ADMIN_KEY).test_client().get("/health")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"]
    assert resp.get_json()["error"]["code"] == "redis_unavailable"
