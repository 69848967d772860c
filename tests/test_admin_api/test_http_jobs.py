"""HTTP handler jobs through the API: created with a handler URL, refused when the URL is unsafe."""
from __future__ import annotations

import pytest

from admin_api import create_app
from tests.conftest import HANDLER_SECRET
from tests.test_admin_api.support import ADMIN_KEY, Api


@pytest.fixture
def local_api(r, http_config):
    """The API with loopback handler URLs allowed (local development setting)."""
    return Api(create_app(http_config, r, admin_key=ADMIN_KEY), ADMIN_KEY)


def test_create_handler_job_and_read_it_back(local_api, handler_server):
    resp = local_api.post("/jobs", json={"handler": handler_server.url("/ok"), "payload": {"x": [1, 2]},
                                                "callback_url": handler_server.url("/hook"), "queue": "hooks"})
    assert resp.status_code == 201, resp.get_json()
    job = local_api.get(f"/jobs/{resp.get_json()['id']}").get_json()
    assert job["handler"] == handler_server.url("/ok")
    assert job["payload"] == {"x": [1, 2]}
    assert job["callback_url"] == handler_server.url("/hook")
    assert job["timeout"] == 30
    assert job["function"] == handler_server.url("/ok")


@pytest.mark.parametrize("field", ["handler", "callback_url"])
@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "https://192.168.1.1/x", "https://0x7f000001/x",
                                 "https://[::ffff:127.0.0.1]/x", "https://169.254.169.254/latest"])
def test_unsafe_urls_are_422_and_store_nothing(api, r, field, url):
    body = {"handler": url} if field == "handler" else {"function": "tests.jobfuncs.noop", "callback_url": url}
    resp = api.post("/jobs", json=body)
    assert resp.status_code == 422, resp.get_json()
    assert r.keys("rq:job:*") == []


@pytest.mark.parametrize("body", [
    {"function": "tests.jobfuncs.noop", "handler": "https://hooks.example.com/x"},
    {},
    {"handler": "https://hooks.example.com/x", "args": [1]},
    {"handler": "https://hooks.example.com/x", "timeout": 60},
    {"handler": "https://hooks.example.com/x", "callback_timeout": 0},
])
def test_bad_handler_job_bodies_are_422(api, r, body):
    resp = api.post("/jobs", json=body)
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["error"]["code"] == "validation_error"
    assert r.keys("rq:job:*") == []


def test_202_then_callback_over_http_completes_the_job(local_api, handler_server, run_worker):
    created = local_api.post("/jobs", json={"handler": handler_server.url("/accept"), "payload": 1})
    job_id = created.get_json()["id"]
    run_worker(handler_secret=HANDLER_SECRET, allow_private_urls=True)
    assert local_api.get(f"/jobs/{job_id}").get_json()["state"] == "running"
    token = handler_server.to("/accept")[0].headers["X-Jobsvc-Token"]
    bad = local_api.post(f"/jobs/{job_id}/callback", json={"token": "0" * 32, "status": "completed"})
    assert bad.status_code == 409
    done = local_api.post(f"/jobs/{job_id}/callback",
                          json={"token": token, "status": "completed", "result": {"ok": True}})
    assert done.status_code == 200, done.get_json()
    job = local_api.get(f"/jobs/{job_id}?include_result=true").get_json()
    assert job["state"] == "completed" and job["result"] == {"ok": True}
    runs = local_api.get(f"/jobs/{job_id}/runs").get_json()
    assert runs["runs"][0]["outcome"] == "accepted" and runs["runs"][0]["http_status"] == 202


def test_function_with_handler_over_the_api(local_api, handler_server):
    resp = local_api.post("/functions", json={"namespace": "hooks", "name": "ping",
                                                     "handler": handler_server.url("/ok"), "timeout": 5})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["handler"] == handler_server.url("/ok") and resp.get_json()["path"] is None
    job = local_api.post("/jobs", json={"function": "hooks/ping", "payload": {"n": 1}})
    assert job.status_code == 201, job.get_json()
    got = local_api.get(f"/jobs/{job.get_json()['id']}").get_json()
    assert got["handler"] == handler_server.url("/ok") and got["payload"] == {"n": 1}


def test_schedule_with_handler_over_the_api(local_api, handler_server):
    resp = local_api.post("/schedules", json={"id": "ping", "handler": handler_server.url("/ok"),
                                                     "payload": [1], "interval": 60})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["handler"] == handler_server.url("/ok") and resp.get_json()["function"] is None
