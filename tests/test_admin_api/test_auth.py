"""Authentication and scopes: every endpoint x no key, wrong key, read-only, write and admin keys."""
import logging

import pytest

from jobsvc.admin import apikeys
from jobsvc.engine.functions import Registry
from jobsvc.scheduling.schedules import Schedules
from tests.test_admin_api.support import ADMIN_KEY, NOOP

READ, WRITE, ADMIN = apikeys.READ, apikeys.WRITE, apikeys.ADMIN
JOB = {"function": "ns/fn"}  # over HTTP a lesser key names a registry function, never an import path

# (method, path, body, scope needed); {job} and {key} are filled in per test.
ENDPOINTS = [
    ("GET", "/jobs", None, READ),
    ("POST", "/jobs", JOB, WRITE),
    ("POST", "/jobs/batch", {"jobs": [JOB]}, WRITE),
    ("GET", "/jobs/stats", None, READ),
    ("GET", "/stats", None, READ),
    ("GET", "/jobs/{job}", None, READ),
    ("PATCH", "/jobs/{job}", {"priority": 2}, WRITE),
    ("DELETE", "/jobs/{job}", None, WRITE),
    ("POST", "/jobs/{job}/cancel", None, WRITE),
    ("POST", "/jobs/{job}/terminate", None, WRITE),
    ("POST", "/jobs/{job}/retry", None, WRITE),
    ("GET", "/jobs/{job}/runs", None, READ),
    ("POST", "/jobs/{job}/trigger", None, WRITE),
    ("POST", "/jobs/{job}/disable", None, WRITE),
    ("POST", "/jobs/{job}/enable", None, WRITE),
    ("POST", "/jobs/claim", {"queue": "default"}, WRITE),
    ("POST", "/jobs/{job}/heartbeat", {"token": "not-the-token"}, WRITE),
    ("POST", "/jobs/{job}/ack", {"token": "not-the-token", "status": "completed"}, WRITE),
    ("POST", "/jobs/ack", {"acks": [{"id": "{job}", "token": "not-the-token", "status": "completed"}]}, WRITE),
    ("POST", "/jobs/batch/retry", {"dry_run": True}, ADMIN),
    ("POST", "/jobs/batch/requeue_quarantined", {"dry_run": True}, ADMIN),
    ("POST", "/jobs/prune", {"dry_run": True}, ADMIN),
    ("POST", "/jobs/ttl/sweep", {"dry_run": True}, ADMIN),
    ("POST", "/jobs/expired/delete", {"dry_run": True}, ADMIN),
    ("POST", "/jobs/stale/cancel", {"dry_run": True, "queued_for": 60}, ADMIN),
    ("POST", "/jobs/integrity/sweep", {"dry_run": True}, ADMIN),
    ("GET", "/queues", None, READ),
    ("GET", "/queues/default", None, READ),
    ("POST", "/queues/default/pause", None, ADMIN),
    ("POST", "/queues/default/resume", None, ADMIN),
    ("GET", "/workers", None, READ),
    ("GET", "/metrics", None, READ),
    ("POST", "/keys", {"name": "k", "scopes": [READ]}, ADMIN),
    ("GET", "/keys", None, ADMIN),
    ("GET", "/keys/{key}", None, ADMIN),
    ("DELETE", "/keys/{key}", None, ADMIN),
    ("GET", "/audit", None, ADMIN),
    ("GET", "/schedules", None, READ),
    ("POST", "/schedules", {"function": "ns/fn", "interval": 60}, WRITE),
    ("GET", "/schedules/{schedule}", None, READ),
    ("PATCH", "/schedules/{schedule}", {"description": "x"}, WRITE),
    ("DELETE", "/schedules/{schedule}", None, ADMIN),
    ("POST", "/schedules/{schedule}/execute", None, WRITE),
    ("POST", "/schedules/{schedule}/cancel", None, WRITE),
    ("GET", "/schedules/{schedule}/runs", None, READ),
    ("GET", "/functions", None, READ),
    ("POST", "/functions", {"namespace": "ns", "name": "other", "path": NOOP}, ADMIN),
    ("GET", "/functions/{fn}", None, READ),
    ("PATCH", "/functions/{fn}", {"timeout": 5}, WRITE),
    ("DELETE", "/functions/{fn}", None, ADMIN),
    ("GET", "/namespaces", None, READ),
    ("POST", "/functions/sync", {"namespace": "ns", "functions": [], "delete_missing": True, "dry_run": True}, ADMIN),
]
IDS = [f"{m} {p}" for m, p, _, _ in ENDPOINTS]


@pytest.fixture
def target(client, r, config):
    job = client.enqueue(NOOP).id
    key, _ = apikeys.create(r, config.key_prefix, "target", [READ])
    Registry(client).register("ns", "fn", NOOP)
    Schedules(client).create(id="target", interval=60, function=NOOP)
    return {"job": job, "key": key.id, "schedule": "target", "fn": "ns/fn"}


def _call(api, key, endpoint, target, bearer=False):
    method, path, body, _ = endpoint
    return api.as_key(key, bearer).call(method, path.format(**target), json=body)


def test_every_documented_operation_is_in_the_matrix(api):
    doc = api.as_key(None).http.get("/api/v1/openapi.json").get_json()
    documented = {(m.upper(), p.removeprefix("/api/v1").replace("{job_id}", "{job}").replace("{key_id}", "{key}")
                   .replace("{name}", "default").replace("{schedule_id}", "{schedule}")
                   .replace("{namespace}/{function_name}", "{fn}"))
                  for p, ops in doc["paths"].items() for m, op in ops.items() if op["security"]}
    assert documented == {(m, p) for m, p, _, _ in ENDPOINTS}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_no_key_is_401(api, target, endpoint):
    resp = _call(api, None, endpoint, target)
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_wrong_key_is_401(api, target, endpoint, make_key):
    real = make_key(ADMIN)
    for wrong in ("not-the-key", ADMIN_KEY + "x", real[:-1] + ("A" if real[-1] != "A" else "B")):
        assert _call(api, wrong, endpoint, target).status_code == 401


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_read_only_key_reads_and_is_403_elsewhere(api, target, endpoint, make_key):
    resp = _call(api, make_key(READ), endpoint, target)
    if endpoint[3] == READ:
        assert resp.status_code == 200
    else:
        assert resp.status_code == 403
        assert resp.get_json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_write_key_is_403_only_on_admin_endpoints(api, target, endpoint, make_key):
    resp = _call(api, make_key(WRITE), endpoint, target)
    if endpoint[3] == ADMIN:
        assert resp.status_code == 403
    else:
        assert resp.status_code not in (401, 403)
        assert resp.status_code < 500


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
@pytest.mark.parametrize("kind", ["admin_api_key", "scoped_admin_key", "bearer"])
def test_admin_keys_pass_everywhere(api, target, endpoint, make_key, kind):
    key = ADMIN_KEY if kind != "scoped_admin_key" else make_key(ADMIN)
    resp = _call(api, key, endpoint, target, bearer=kind == "bearer")
    assert resp.status_code not in (401, 403, 500)


def test_revoked_key_is_401_at_once(api, make_key):
    secret = make_key(READ)
    key_id = secret.split("_")[1]
    assert api.as_key(secret).get("/jobs").status_code == 200
    assert api.delete(f"/keys/{key_id}").status_code == 204
    assert api.as_key(secret).get("/jobs").status_code == 401


def test_bearer_scheme_is_case_insensitive(api):
    resp = api.as_key(None).get("/jobs", headers={"Authorization": f"bearer {ADMIN_KEY}"})
    assert resp.status_code == 200


def test_other_authorization_schemes_are_401(api):
    resp = api.as_key(None).get("/jobs", headers={"Authorization": f"Basic {ADMIN_KEY}"})
    assert resp.status_code == 401


def test_unknown_route_is_json_404_without_a_key(api):
    resp = api.as_key(None).get("/nope")
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "not_found"


def test_keys_never_reach_the_log(api, make_key, caplog):
    secret = make_key(READ)
    caplog.set_level(logging.DEBUG)
    for key in (ADMIN_KEY, secret, "jsk_000000000000_guess", "wrong-key"):
        api.as_key(key).get("/jobs")
        api.as_key(key).post("/jobs", json={"function": "bad path"})
        api.as_key(key, bearer=True).delete("/keys/000000000000")
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    for key in (ADMIN_KEY, secret, secret.split("_", 2)[2], "jsk_000000000000_guess", "wrong-key"):
        assert key not in text


def test_keys_never_reach_error_messages(api):
    resp = api.as_key("jsk_0123456789ab_secret-part").get("/jobs")
    assert "secret-part" not in resp.get_data(as_text=True)
