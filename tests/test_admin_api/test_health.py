import redis

from admin_api import create_app


def test_health_reports_redis_up(r, config):
    resp = create_app(config, r).test_client().get("/health")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "redis": "up"}


def test_health_is_503_with_retry_after_when_redis_is_down(config):
    down = redis.Redis(port=1, socket_connect_timeout=0.1)
    resp = create_app(config, down).test_client().get("/health")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"]
    assert resp.get_json()["error"]["code"] == "redis_unavailable"
