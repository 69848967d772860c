import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from admin_api import create_app
from tests.eviction import evicting_policy
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


def test_health_without_a_key_says_only_up_or_down(api, redis_server):
    resp = api.as_key(None).get("/health")
    assert resp.get_json() == {"status": "ok", "redis": "up"}
    assert str(redis_server.port) not in resp.get_data(as_text=True)


def test_health_without_a_key_does_not_name_the_redis_it_cannot_reach(config):
    down = redis.Redis(host="redis.internal.example", port=6390, socket_connect_timeout=0.1,
                       retry=Retry(NoBackoff(), 0))
    resp = create_app(config, down, admin_key=ADMIN_KEY).test_client().get("/health")
    assert resp.status_code == 503
    text = resp.get_data(as_text=True)
    assert "6390" not in text and "redis.internal" not in text
    assert resp.get_json()["error"]["message"] == "Redis is unavailable"


def test_health_with_any_valid_key_shows_the_redis_detail(api, make_key, redis_server):
    for who in (api, api.as_key(make_key("jobs:read")), api.as_key(make_key("jobs:write", queues=["q"]), bearer=True)):
        body = who.get("/health").get_json()
        detail = body["detail"]["redis"]
        assert detail["address"] == f"127.0.0.1:{redis_server.port}/0"
        assert detail["version"] and detail["maxmemory_policy"] == "noeviction"
        assert detail["eviction_safe"] is True and detail["eviction_warning"] is None


def test_health_detail_shows_an_evicting_policy(api, r):
    with evicting_policy(r, "allkeys-lru"):
        detail = api.get("/health").get_json()["detail"]["redis"]
    assert detail["maxmemory_policy"] == "allkeys-lru" and detail["eviction_safe"] is False
    assert "maxmemory-policy noeviction" in detail["eviction_warning"]


def test_health_with_a_wrong_key_is_401(api):
    assert api.as_key("wrong-key-0123456789").get("/health").status_code == 401


def test_health_detail_when_redis_is_down_says_why_to_a_key_holder(config):
    down = redis.Redis(port=1, socket_connect_timeout=0.1, retry=Retry(NoBackoff(), 0))
    resp = create_app(config, down, admin_key=ADMIN_KEY).test_client().get(
        "/health", headers={"X-Admin-Key": ADMIN_KEY})
    assert resp.status_code == 503
    detail = resp.get_json()["detail"]["redis"]
    assert detail["address"] == "localhost:1/0" and "ConnectionError" in detail["error"]
