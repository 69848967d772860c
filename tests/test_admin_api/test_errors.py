"""The error contract: one JSON shape, the right status for each failure, never a 500 page."""
import json

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from admin_api import create_app
from tests.test_admin_api.support import ADMIN_KEY, NOOP, Api


def _error(resp, status, code):
    assert resp.status_code == status
    body = resp.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


@pytest.mark.parametrize("raw", [b"{bad", b"[1,", b"\xff\xfe", b'{"function": NaN}', b'{"a": Infinity}',
                                 b"[" * 100_000, b'{"a": 1' + b"9" * 5000 + b"}"],
                         ids=["syntax", "truncated", "not-utf8", "nan", "infinity", "deep", "huge-int"])
def test_malformed_json_is_400(api, raw):
    resp = api.call("POST", "/jobs", data=raw, headers={"Content-Type": "application/json"})
    _error(resp, 400, "malformed_json")


def test_empty_body_where_one_is_required_is_400(api):
    _error(api.call("POST", "/jobs", data=b""), 400, "malformed_json")


@pytest.mark.parametrize("body", [[], "text", 3, None])
def test_json_that_is_not_an_object_is_422(api, body):
    resp = api.call("POST", "/jobs", data=json.dumps(body), headers={"Content-Type": "application/json"})
    _error(resp, 422, "validation_error")


def test_body_over_256_kb_is_413(api):
    big = {"function": NOOP, "args": ["x" * (256 * 1024)]}
    _error(api.post("/jobs", json=big), 413, "payload_too_large")


def test_body_just_under_256_kb_is_accepted(api):
    body = {"function": NOOP, "args": ["x" * (250 * 1024)]}
    assert api.post("/jobs", json=body).status_code == 201


def test_unknown_fields_are_422(api, client):
    job_id = client.enqueue(NOOP).id
    _error(api.patch(f"/jobs/{job_id}", json={"priority": 2, "color": "red"}), 422, "validation_error")


def test_wrong_method_is_405_json(api):
    resp = api.call("PUT", "/jobs")
    _error(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"]


def test_unknown_job_is_404(api):
    _error(api.get("/jobs/does-not-exist"), 404, "not_found")


def test_wrong_state_is_409_with_the_state(api, client):
    job_id = client.enqueue(NOOP).id
    err = _error(api.post(f"/jobs/{job_id}/retry"), 409, "wrong_state")
    assert err["details"] == {"state": "queued"}


def _down():
    return redis.Redis(port=1, socket_connect_timeout=0.1, socket_timeout=0.1, retry=Retry(NoBackoff(), 0))


def test_redis_down_is_503_with_retry_after(config):
    down = _down()
    api = Api(create_app(config, down, admin_key=ADMIN_KEY), ADMIN_KEY)
    for resp in (api.get("/jobs"), api.post("/jobs", json={"function": NOOP}), api.get("/queues"),
                 api.post("/jobs/x/cancel")):
        _error(resp, 503, "redis_unavailable")
        assert int(resp.headers["Retry-After"]) > 0


def test_redis_down_with_a_scoped_key_is_503_not_401(config):
    down = _down()
    api = Api(create_app(config, down, admin_key=ADMIN_KEY), "jsk_0123456789ab_whatever")
    _error(api.get("/jobs"), 503, "redis_unavailable")


def test_unexpected_exception_is_a_json_500(app, api, monkeypatch):
    from admin_api.blueprints import queues

    def broken(who):
        raise RuntimeError("bug")

    monkeypatch.setattr(queues, "queue_counts", broken)
    _error(api.get("/queues"), 500, "internal_error")


def test_no_html_error_pages(api):
    for resp in (api.get("/nope"), api.call("DELETE", "/queues"), api.as_key(None).get("/jobs")):
        assert resp.content_type == "application/json"


def test_unknown_query_parameter_on_an_endpoint_without_any_is_422(api):
    err = _error(api.get("/queues?verbose=1"), 422, "validation_error")
    assert err["details"]["fields"] == {"verbose": ["Unknown field."]}


def test_body_on_an_endpoint_that_takes_none_is_422(api, client):
    job_id = client.enqueue(NOOP).id
    _error(api.post(f"/jobs/{job_id}/cancel", json={"reason": "x"}), 422, "validation_error")
    assert api.post(f"/jobs/{job_id}/cancel", json={}).status_code == 200


def test_a_redis_script_error_is_a_500_with_a_logged_traceback_not_a_503(api, client, r, caplog):
    # A job hash that is not a hash: every script touching it fails with WRONGTYPE. Redis is up, so
    # "Redis is unavailable, retry" would be a lie; the bug or damaged key needs a person.
    job_id = client.enqueue(NOOP).id
    r.delete(f"rq:job:{job_id}")
    r.set(f"rq:job:{job_id}", "not a hash")
    with caplog.at_level("ERROR", logger="jobsvc.api"):
        resp = api.post(f"/jobs/{job_id}/cancel")
    err = _error(resp, 500, "internal_error")
    assert "Retry-After" not in resp.headers and "WRONGTYPE" not in err["message"]
    [record] = [rec for rec in caplog.records if rec.levelname == "ERROR"]
    assert record.exc_info and isinstance(record.exc_info[1], redis.ResponseError)
    assert "WRONGTYPE" in str(record.exc_info[1])


@pytest.mark.parametrize("exc", [redis.exceptions.BusyLoadingError("LOADING Redis is loading the dataset"),
                                 redis.exceptions.ReadOnlyError("READONLY You can't write against a replica"),
                                 redis.exceptions.OutOfMemoryError("OOM command not allowed"),
                                 redis.TimeoutError("Timeout reading from socket")],
                         ids=["loading", "readonly", "oom", "timeout"])
def test_redis_that_cannot_serve_for_now_is_503(api, monkeypatch, exc):
    from admin_api.blueprints import queues

    def refused(who):
        raise exc

    monkeypatch.setattr(queues, "queue_counts", refused)
    resp = api.get("/queues")
    _error(resp, 503, "redis_unavailable")
    assert resp.headers["Retry-After"]
