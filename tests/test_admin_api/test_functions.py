"""/api/v1/functions and /api/v1/namespaces (the functions registry), and POST /jobs by function reference."""
from __future__ import annotations

from jobsvc.admin import apikeys
from jobsvc.engine.functions import Registry
from tests.test_admin_api.support import field_errors

CHARGE = {"namespace": "billing", "name": "charge", "path": "tests.jobfuncs.echo", "queue": "billing",
          "max_attempts": 5, "priority": 2, "timeout": 40,
          "backoff": {"type": "linear", "base": 2, "cap": 10, "jitter": False}, "description": "charge a card"}


def test_register_get_patch_delete(api):
    resp = api.post("/functions", json=CHARGE)
    assert resp.status_code == 201, resp.get_json()
    fn = resp.get_json()
    assert (fn["ref"], fn["path"], fn["queue"], fn["max_attempts"], fn["version"], fn["enabled"]) == (
        "billing/charge", "tests.jobfuncs.echo", "billing", 5, 1, True)
    assert fn["backoff"] == {"type": "linear", "base": 2.0, "cap": 10.0, "jitter": False}
    assert fn["created_at"].endswith("Z")
    assert api.get("/functions/billing/charge").get_json() == fn
    again = api.post("/functions", json={**CHARGE, "replace": True})
    assert again.status_code == 200 and again.get_json()["version"] == 1  # unchanged: same version

    changed = api.patch("/functions/billing/charge", json={"timeout": 60, "description": None})
    assert changed.status_code == 200
    assert (changed.get_json()["timeout"], changed.get_json()["description"], changed.get_json()["version"]) == (
        60, "", 2)
    off = api.patch("/functions/billing/charge", json={"enabled": False}).get_json()
    assert (off["enabled"], off["version"]) == (False, 3)

    assert api.delete("/functions/billing/charge").status_code == 204
    assert api.get("/functions/billing/charge").status_code == 404
    assert api.delete("/functions/billing/charge").status_code == 404
    assert api.patch("/functions/billing/charge", json={"timeout": 3}).status_code == 404


def test_register_validation(api):
    assert "path" in field_errors(api.post("/functions", json={**CHARGE, "path": "lambda: 1"}))
    assert "path" in field_errors(api.post("/functions", json={**CHARGE, "path": "os.system('x')"}))
    assert "code" in field_errors(api.post("/functions", json={**CHARGE, "code": "print(1)"}))
    assert "name" in field_errors(api.post("/functions", json={**CHARGE, "name": "has/slash"}))
    assert "namespace" in field_errors(api.post("/functions", json={**CHARGE, "namespace": "bad ns"}))
    assert "priority" in field_errors(api.post("/functions", json={**CHARGE, "priority": 11}))
    assert "path" in field_errors(api.post("/functions", json={"name": "x"}))
    api.post("/functions", json=CHARGE)
    assert api.patch("/functions/billing/charge", json={}).status_code == 422
    assert "name" in field_errors(api.patch("/functions/billing/charge", json={"name": "other"}))
    assert api.get("/functions/billing/nope").status_code == 404
    assert api.get("/functions/bad%20ns/x").status_code in (404, 422)


def test_list_with_cursor_and_namespaces(api, client):
    reg = Registry(client)
    for ns, name in [("a", "x"), ("a", "y"), ("a", "z"), ("b", "x")]:
        reg.register(ns, name, "tests.jobfuncs.noop")
    reg.disable("a", "y")
    page = api.get("/functions?limit=2").get_json()
    assert [f["ref"] for f in page["functions"]] == ["a/x", "a/y"] and page["next_cursor"] == "a/y"
    page = api.get(f"/functions?limit=2&cursor={page['next_cursor']}").get_json()
    assert [f["ref"] for f in page["functions"]] == ["a/z", "b/x"] and page["next_cursor"] is None
    assert [f["ref"] for f in api.get("/functions?namespace=b").get_json()["functions"]] == ["b/x"]
    assert api.get("/namespaces").get_json() == {"namespaces": [{"namespace": "a", "functions": 3, "disabled": 1},
                                                                {"namespace": "b", "functions": 1, "disabled": 0}]}
    assert api.get("/functions?namespace=b&cursor=a/x").status_code == 422
    assert api.get("/functions?limit=0").status_code == 422


def test_sync_dry_run_then_confirmed(api, client):
    reg = Registry(client)
    reg.register("ops", "keep", "tests.jobfuncs.noop")
    reg.register("ops", "change", "tests.jobfuncs.noop", timeout=10)
    reg.register("ops", "drop", "tests.jobfuncs.noop")
    body = {"namespace": "ops", "delete_missing": True,
            "functions": [{"name": "keep", "path": "tests.jobfuncs.noop"},
                          {"name": "change", "path": "tests.jobfuncs.noop", "timeout": 20},
                          {"name": "new", "path": "tests.jobfuncs.add", "backoff": {"type": "fixed"}}]}
    dry = api.post("/functions/sync", json={**body, "dry_run": True})
    assert dry.status_code == 200
    assert dry.get_json() == {"namespace": "ops", "dry_run": True, "created": ["new"], "updated": ["change"],
                              "deleted": ["drop"], "unchanged": ["keep"]}
    assert sorted(f.name for f in reg.all("ops")) == ["change", "drop", "keep"]

    refused = api.post("/functions/sync", json=body)
    assert refused.status_code == 428 and refused.get_json()["error"]["code"] == "confirmation_required"
    assert sorted(f.name for f in reg.all("ops")) == ["change", "drop", "keep"]

    real = api.post("/functions/sync", json=body, headers={"X-Confirm": "true"})
    assert real.status_code == 200 and real.get_json() == {**dry.get_json(), "dry_run": False}
    assert sorted(f.name for f in reg.all("ops")) == ["change", "keep", "new"]
    assert reg.get("ops", "new").backoff["kind"] == "fixed"

    # Without delete_missing nothing is deleted, so no confirmation is needed.
    plain = api.post("/functions/sync", json={"namespace": "ops", "functions": [{"name": "more",
                                                                                  "path": "tests.jobfuncs.noop"}]})
    assert plain.status_code == 200 and plain.get_json()["created"] == ["more"]
    assert plain.get_json()["deleted"] == []


def test_sync_validation(api):
    assert "functions" in field_errors(api.post("/functions/sync", json={"namespace": "ops"}))
    dup = api.post("/functions/sync", json={"namespace": "ops", "functions": [
        {"name": "a", "path": "tests.x.y"}, {"name": "a", "path": "tests.x.z"}]})
    assert dup.status_code == 422 and "twice" in dup.get_json()["error"]["message"]
    assert api.post("/functions/sync", json={"functions": [{"name": "a", "path": "x.y", "namespace": "o"}]}
                    ).status_code == 422


def test_job_from_a_function_reference_takes_its_defaults(api, client):
    api.post("/functions", json=CHARGE)
    resp = api.post("/jobs", json={"function": "billing/charge", "args": ["ada"], "kwargs": {"x": 1}})
    assert resp.status_code == 201, resp.get_json()
    job = resp.get_json()
    assert (job["function"], job["queue"], job["namespace"], job["max_attempts"], job["priority"], job["timeout"],
            job["args"], job["kwargs"]) == ("tests.jobfuncs.echo", "billing", "billing", 5, 2, 40, ["ada"], {"x": 1})
    assert client.get(job["id"]).raw["js_fn"] == "billing/charge"
    override = api.post("/jobs", json={"function": "billing/charge", "queue": "urgent", "priority": 1}).get_json()
    assert (override["queue"], override["priority"], override["max_attempts"]) == ("urgent", 1, 5)
    batch = api.post("/jobs/batch",
                     json={"jobs": [{"function": "billing/charge"}, {"function": "tests.jobfuncs.noop"}]})
    assert batch.status_code == 201
    assert [j["queue"] for j in batch.get_json()["jobs"]] == ["billing", "default"]
    assert client.get(batch.get_json()["jobs"][0]["id"]).raw["js_fn"] == "billing/charge"


def test_job_from_a_disabled_or_missing_function(api, client):
    api.post("/functions", json=CHARGE)
    assert api.post("/jobs", json={"function": "billing/charge", "namespace": "other"}).status_code == 422
    api.patch("/functions/billing/charge", json={"enabled": False})
    resp = api.post("/jobs", json={"function": "billing/charge"})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "disabled"
    assert api.post("/jobs/batch", json={"jobs": [{"function": "billing/charge"}]}).status_code == 409
    missing = api.post("/jobs", json={"function": "billing/nope"})
    assert missing.status_code == 422 and "not registered" in missing.get_json()["error"]["message"]
    assert api.post("/jobs", json={"function": "billing/charge/x"}).status_code == 422
    assert api.get("/jobs").get_json()["jobs"] == []


def test_limited_keys(api, make_key, client):
    reg = Registry(client)
    reg.register("a", "f", "tests.jobfuncs.noop")
    reg.register("b", "f", "tests.jobfuncs.noop", queue="bq")
    key = api.as_key(make_key(apikeys.ADMIN, namespaces=["a"]))
    assert [f["ref"] for f in key.get("/functions").get_json()["functions"]] == ["a/f"]
    assert [n["namespace"] for n in key.get("/namespaces").get_json()["namespaces"]] == ["a"]
    assert key.get("/functions/b/f").status_code == 404
    assert key.delete("/functions/b/f").status_code == 404
    assert key.post("/functions", json={"namespace": "b", "name": "g", "path": "x.y"}).status_code == 403
    created = key.post("/functions", json={"name": "g", "path": "tests.jobfuncs.add"})  # its one namespace
    assert created.status_code == 201 and created.get_json()["ref"] == "a/g"
    assert key.post("/jobs", json={"function": "b/f"}).status_code == 403
    assert key.post("/jobs", json={"function": "a/f"}).status_code == 201
    assert key.post("/functions/sync", json={"namespace": "b", "functions": [], "dry_run": True}).status_code == 403
    queued = api.as_key(make_key(apikeys.WRITE, queues=["bq"]))
    assert [f["ref"] for f in queued.get("/functions").get_json()["functions"]] == ["b/f"]
    assert queued.post("/jobs", json={"function": "a/f"}).status_code == 403


def test_mutations_are_audited(api):
    api.post("/functions", json=CHARGE)
    api.patch("/functions/billing/charge", json={"timeout": 9})
    api.post("/functions/sync", json={"namespace": "billing", "functions": [], "delete_missing": True},
             headers={"X-Confirm": "true"})
    entries = api.get("/audit").get_json()["entries"]
    assert [(e["action"], e["status"]) for e in entries][:3] == [
        ("functions.sync", 200), ("functions.patch", 200), ("functions.register", 201)]
    assert entries[0]["counts"]["deleted"] == 1


def test_documented(api):
    doc = api.get("/openapi.json").get_json()
    assert set(doc["paths"]["/api/v1/functions"]) == {"get", "post"}
    assert set(doc["paths"]["/api/v1/functions/{namespace}/{function_name}"]) == {"get", "patch", "delete"}
    assert doc["paths"]["/api/v1/functions/sync"]["post"]["x-scope"] == apikeys.ADMIN
    assert "428" in doc["paths"]["/api/v1/functions/sync"]["post"]["responses"]
    assert doc["paths"]["/api/v1/namespaces"]["get"]["x-scope"] == apikeys.READ


def test_register_of_a_taken_name_is_refused_unless_replace(api):
    """POST on an existing name never resets the fields it leaves out: 409 (use PATCH), or `replace: true`,
    which sets exactly the body (fields left out to their defaults)."""
    api.post("/functions", json=CHARGE)
    taken = api.post("/functions", json={"namespace": "billing", "name": "charge", "path": "tests.jobfuncs.echo"})
    assert taken.status_code == 409, taken.get_json()
    assert taken.get_json()["error"]["code"] == "already_exists" and "PATCH" in taken.get_json()["error"]["message"]
    assert api.get("/functions/billing/charge").get_json()["timeout"] == 40  # unchanged
    replaced = api.post("/functions", json={"namespace": "billing", "name": "charge", "path": "tests.jobfuncs.echo",
                                            "replace": True})
    assert replaced.status_code == 200
    assert (replaced.get_json()["timeout"], replaced.get_json()["version"]) == (None, 2)
    assert "replace" in field_errors(api.post("/functions", json={**CHARGE, "replace": "yes"}))
    entries = api.get("/audit").get_json()["entries"]
    assert [e["status"] for e in entries if e["action"] == "functions.register"][:3] == [422, 200, 409]
