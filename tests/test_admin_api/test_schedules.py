"""/api/v1/schedules: create, read, change, delete, run now and run history, over the core
(jobsvc.scheduling.schedules)."""
from __future__ import annotations

import time

from jobsvc import State
from jobsvc.admin import apikeys
from jobsvc.engine.functions import Registry
from tests.test_admin_api.support import NOOP, field_errors

NIGHTLY = {"id": "nightly", "function": "tests.jobfuncs.add", "args": [1, 2], "cron": "0 3 * * *",
           "timezone": "Europe/Paris", "queue": "reports", "misfire": "skip"}


def test_create_get_list_patch_delete(api):
    resp = api.post("/schedules", json=NIGHTLY)
    assert resp.status_code == 201, resp.get_json()
    sc = resp.get_json()
    assert (sc["id"], sc["cron"], sc["interval"], sc["timezone"], sc["status"], sc["version"], sc["runs"],
            sc["last_run"], sc["avg_runtime_ms"], sc["misfire"], sc["queue"]) == (
        "nightly", "0 3 * * *", None, "Europe/Paris", "idle", 1, 0, None, None, "skip", "reports")
    assert sc["next_run_at"].endswith("Z") and sc["created_at"].endswith("Z")
    assert api.get("/schedules/nightly").get_json() == sc

    every = api.post("/schedules", json={"function": NOOP, "interval": 30, "namespace": "ops"})
    assert every.status_code == 201
    generated = every.get_json()["id"]
    page = api.get("/schedules?limit=1").get_json()
    assert len(page["schedules"]) == 1 and page["next_cursor"]
    rest = api.get(f"/schedules?limit=1&cursor={page['next_cursor']}").get_json()
    assert {page["schedules"][0]["id"], rest["schedules"][0]["id"]} == {"nightly", generated}
    assert [x["id"] for x in api.get("/schedules?namespace=ops").get_json()["schedules"]] == [generated]

    off = api.patch("/schedules/nightly", json={"enabled": False})
    assert off.status_code == 200
    assert (off.get_json()["status"], off.get_json()["next_run_at"], off.get_json()["version"]) == ("disabled", None, 2)
    assert [x["id"] for x in api.get("/schedules?enabled=false").get_json()["schedules"]] == ["nightly"]
    moved = api.patch("/schedules/nightly", json={"interval": 60, "enabled": True}).get_json()
    assert (moved["cron"], moved["interval"], moved["status"]) == (None, 60.0, "idle")
    assert moved["next_run_at"] is not None

    assert api.delete("/schedules/nightly").status_code == 204
    assert api.get("/schedules/nightly").status_code == 404
    assert api.delete("/schedules/nightly").status_code == 404


def test_create_validation(api):
    assert "cron" in field_errors(api.post("/schedules", json={**NIGHTLY, "cron": "61 * * * *"}))
    assert "cron" in field_errors(api.post("/schedules", json={**NIGHTLY, "cron": "not cron"}))
    assert "timezone" in field_errors(api.post("/schedules", json={**NIGHTLY, "timezone": "Mars/Olympus"}))
    assert "code" in field_errors(api.post("/schedules", json={**NIGHTLY, "code": "print(1)"}))
    assert "interval" in field_errors(api.post("/schedules", json={**NIGHTLY, "interval": 5}))
    assert "cron" in field_errors(api.post("/schedules", json={"function": NOOP}))
    assert "interval" in field_errors(api.post("/schedules", json={"function": NOOP, "interval": 0.5}))
    assert "id" in field_errors(api.post("/schedules", json={**NIGHTLY, "id": "has space"}))
    assert "function" in field_errors(api.post("/schedules", json={**NIGHTLY, "function": "os.system('x')"}))
    assert "end_at" in field_errors(api.post("/schedules", json={**NIGHTLY, "start_at": "2030-01-02T00:00:00Z",
                                                            "end_at": "2030-01-01T00:00:00Z"}))
    resp = api.post("/schedules", json={**NIGHTLY, "function": "ops/missing"})
    assert resp.status_code == 422 and "not registered" in resp.get_json()["error"]["message"]
    assert api.post("/schedules", json=NIGHTLY).status_code == 201
    dup = api.post("/schedules", json=NIGHTLY)
    assert dup.status_code == 409 and dup.get_json()["error"]["code"] == "already_exists"


def test_patch_errors(api):
    assert api.patch("/schedules/nope", json={"enabled": False}).status_code == 404
    api.post("/schedules", json=NIGHTLY)
    assert api.patch("/schedules/nightly", json={}).status_code == 422
    assert "cron" in field_errors(api.patch("/schedules/nightly", json={"cron": "* * *"}))
    assert "timezone" in field_errors(api.patch("/schedules/nightly", json={"timezone": "Nowhere/City"}))
    assert "id" in field_errors(api.patch("/schedules/nightly", json={"id": "other"}))
    assert api.get("/schedules/nightly").get_json()["version"] == 1


def test_start_and_end_and_backoff_round_trip(api):
    body = {**NIGHTLY, "start_at": "2030-01-01T00:00:00Z", "end_at": "2031-01-01T00:00:00+01:00",
            "backoff": {"type": "linear", "base": 2, "cap": 10, "jitter": False}, "max_attempts": 4}
    sc = api.post("/schedules", json=body).get_json()
    assert (sc["start_at"], sc["end_at"]) == ("2030-01-01T00:00:00.000Z", "2030-12-31T23:00:00.000Z")
    assert sc["backoff"] == {"type": "linear", "base": 2.0, "cap": 10.0, "jitter": False}
    assert sc["next_run_at"].startswith("2030-01-01T02:00")  # 03:00 Paris
    cleared = api.patch("/schedules/nightly", json={"end_at": None, "backoff": None}).get_json()
    assert (cleared["end_at"], cleared["backoff"]) == (None, None)


def test_execute_and_runs(api, client, leases):
    api.post("/schedules", json={**NIGHTLY, "queue": "default"})
    resp = api.post("/schedules/nightly/execute")
    assert resp.status_code == 201
    job_id = resp.get_json()["job_id"]
    assert job_id.startswith("nightly:manual-") and resp.get_json()["schedule_id"] == "nightly"
    assert client.get(job_id).state == State.QUEUED
    run = api.get("/schedules/nightly/runs").get_json()
    assert run["next_cursor"] is None
    assert [(x["job_id"], x["trigger"], x["status"], x["finished_at"]) for x in run["runs"]] == [
        (job_id, "manual", "queued", None)]
    assert api.get("/schedules/nightly").get_json()["status"] == "running"

    lease = leases.claim(["default"], "host.1.w")
    assert lease.job_id == job_id
    now = time.time()
    leases.complete(lease, 3, "host.1.w", now - 0.25, now)
    done = api.get("/schedules/nightly/runs").get_json()["runs"][0]
    assert done["status"] == "completed" and done["finished_at"] and done["duration_ms"] is not None
    assert done["started_at"] <= done["finished_at"] and done["error"] is None
    sc = api.get("/schedules/nightly").get_json()
    assert sc["status"] == "idle" and sc["last_run"]["job_id"] == job_id and sc["last_run"]["status"] == "completed"
    assert sc["completed"] == 1

    second = api.post("/schedules/nightly/execute").get_json()["job_id"]
    page = api.get("/schedules/nightly/runs?limit=1").get_json()
    assert [x["job_id"] for x in page["runs"]] == [second] and page["next_cursor"]
    older = api.get(f"/schedules/nightly/runs?limit=1&cursor={page['next_cursor']}").get_json()
    assert [x["job_id"] for x in older["runs"]] == [job_id]


def test_execute_and_runs_errors(api, client):
    assert api.post("/schedules/nope/execute").status_code == 404
    assert api.get("/schedules/nope/runs").status_code == 404
    assert api.post("/schedules/nope/execute", json={"now": True}).status_code == 422
    api.post("/schedules", json=NIGHTLY)
    assert api.get("/schedules/nightly/runs?cursor=garbage").status_code == 422
    assert api.get("/schedules/nightly/runs?limit=0").status_code == 422
    assert api.get("/schedules/nightly/runs?bogus=1").status_code == 422
    assert api.get("/schedules?limit=501").status_code == 422


def test_registry_function_schedule_and_disabled_function_is_409(api, client):
    Registry(client).register("mail", "digest", "tests.jobfuncs.noop", queue="mail", max_attempts=3)
    sc = api.post("/schedules", json={"id": "digest", "function": "mail/digest", "cron": "@daily"}).get_json()
    assert sc["function"] == "mail/digest"
    job_id = api.post("/schedules/digest/execute").get_json()["job_id"]
    info = client.get(job_id)
    assert (info.queue, info.namespace, info.max_attempts) == ("mail", "mail", 3)
    Registry(client).disable("mail", "digest")
    resp = api.post("/schedules/digest/execute")
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "disabled"
    assert "namespace" in field_errors(api.post("/schedules", json={"function": "mail/digest", "cron": "@daily",
                                                               "namespace": "bad ns"}))


def test_limited_keys_see_only_their_schedules(api, make_key, client):
    api.post("/schedules", json={**NIGHTLY, "namespace": "a"})
    api.post("/schedules", json={**NIGHTLY, "id": "other", "namespace": "b"})
    limited = api.as_key(make_key(apikeys.ADMIN, namespaces=["a"]))
    assert [x["id"] for x in limited.get("/schedules").get_json()["schedules"]] == ["nightly"]
    assert limited.get("/schedules/other").status_code == 404
    assert limited.post("/schedules/other/execute").status_code == 404
    assert limited.delete("/schedules/other").status_code == 404
    assert limited.get("/schedules?namespace=b").status_code == 403
    assert limited.post("/schedules", json={**NIGHTLY, "id": "x", "namespace": "b"}).status_code == 403
    assert limited.patch("/schedules/nightly", json={"namespace": "b"}).status_code == 403
    assert limited.patch("/schedules/nightly", json={"description": "mine"}).status_code == 200
    queued = api.as_key(make_key(apikeys.WRITE, queues=["reports"]))
    assert {x["id"] for x in queued.get("/schedules").get_json()["schedules"]} == {"nightly", "other"}
    assert queued.post("/schedules", json={"function": NOOP, "interval": 5}).status_code == 403


def test_mutations_are_audited(api):
    api.post("/schedules", json=NIGHTLY)
    api.patch("/schedules/nightly", json={"enabled": False})
    api.post("/schedules/nightly/execute")
    api.delete("/schedules/nightly")
    entries = api.get("/audit").get_json()["entries"]
    assert [(e["action"], e["status"]) for e in entries][:4] == [
        ("schedules.delete", 204), ("schedules.execute", 201), ("schedules.patch", 200), ("schedules.create", 201)]
    assert entries[3]["params"]["id"] == "nightly" and entries[3]["counts"]["schedule_id"] == "nightly"


def test_documented(api):
    doc = api.get("/openapi.json").get_json()
    assert set(doc["paths"]["/api/v1/schedules"]) == {"get", "post"}
    assert set(doc["paths"]["/api/v1/schedules/{schedule_id}"]) == {"get", "patch", "delete"}
    assert doc["paths"]["/api/v1/schedules/{schedule_id}/execute"]["post"]["x-scope"] == apikeys.WRITE
    assert doc["paths"]["/api/v1/schedules/{schedule_id}"]["delete"]["x-scope"] == apikeys.ADMIN
    props = doc["components"]["schemas"]["Schedule"]["properties"]
    for name in ("status", "last_run", "next_run_at", "runs", "completed", "failed", "avg_runtime_ms"):
        assert name in props

