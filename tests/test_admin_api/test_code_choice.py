"""Over HTTP, only an admin key decides what code runs: lesser keys name registry functions or handler URLs;
an admin's raw import path, a function's path and a schedule's function must lie in JOBSVC_ALLOWED_MODULES
(the suite's deployment allows `tests`). Every refusal changes nothing."""
from __future__ import annotations

import pytest

from jobsvc.admin import apikeys
from jobsvc.allowlist import ORIGIN_API, ORIGIN_FIELD
from jobsvc.engine.functions import Registry
from jobsvc.scheduling.schedules import Schedules

WRITE, ADMIN = apikeys.WRITE, apikeys.ADMIN
EVIL = ["subprocess.getoutput", "os.system", "builtins.eval", "builtins.exec", "os.path.os.system", "pickle.loads"]


@pytest.fixture
def writer(api, make_key):
    return api.as_key(make_key(WRITE))


@pytest.fixture
def limited_writer(api, make_key):
    return api.as_key(make_key(WRITE, namespaces=["default"]))


def snapshot(r):
    return sorted(k for k in r.keys("*") if b"audit" not in k)


@pytest.mark.parametrize("path", [*EVIL, "tests.jobfuncs.add"])
def test_a_write_key_cannot_name_an_import_path(writer, limited_writer, r, path):
    before = snapshot(r)
    for key in (writer, limited_writer):
        for method, url, body in (("POST", "/jobs", {"function": path, "args": ["id"]}),
                                  ("POST", "/jobs/batch", {"jobs": [{"function": path}]}),
                                  ("POST", "/schedules", {"function": path, "interval": 60})):
            resp = key.call(method, url, json=body)
            assert resp.status_code == 403, (url, resp.get_json())
            assert "only an admin key may" in resp.get_json()["error"]["message"]
    assert snapshot(r) == before


@pytest.mark.parametrize("path", EVIL)
def test_an_admin_key_cannot_name_code_outside_the_allowed_modules(api, r, path):
    before = snapshot(r)
    for method, url, body in (("POST", "/jobs", {"function": path}),
                              ("POST", "/schedules", {"function": path, "interval": 60}),
                              ("POST", "/functions", {"namespace": "ns", "name": "x", "path": path}),
                              ("POST", "/functions/sync", {"namespace": "ns",
                                                           "functions": [{"name": "x", "path": path}],
                                                           "dry_run": True})):
        resp = api.call(method, url, json=body)
        assert resp.status_code == 422, (url, resp.get_json())
        assert resp.get_json()["error"]["code"] == "module_not_allowed"
    assert snapshot(r) == before


def test_an_admin_key_may_name_allowed_code_and_the_job_is_marked_as_from_the_api(api, client):
    resp = api.post("/jobs", json={"function": "tests.jobfuncs.add", "args": [1, 2]})
    assert resp.status_code == 201
    assert client.get(resp.get_json()["id"]).raw[ORIGIN_FIELD] == ORIGIN_API


def test_a_write_key_runs_registry_functions_and_handlers(writer, client):
    Registry(client).register("ns", "add", "tests.jobfuncs.add")
    by_ref = writer.post("/jobs", json={"function": "ns/add", "args": [1, 2]})
    handler = writer.post("/jobs", json={"handler": "https://8.8.8.8/hook"})
    assert (by_ref.status_code, handler.status_code) == (201, 201)
    assert client.get(by_ref.get_json()["id"]).raw[ORIGIN_FIELD] == ORIGIN_API


def test_creating_or_repointing_a_function_is_an_admin_action(writer, api, client):
    Registry(client).register("ns", "add", "tests.jobfuncs.add")
    Schedules(client).create(id="nightly", interval=60, function="ns/add")
    assert writer.post("/functions", json={"namespace": "ns", "name": "x", "path": "tests.jobfuncs.add"}
                       ).status_code == 403
    assert writer.post("/functions", json={"namespace": "ns", "name": "add", "path": "os.system"}).status_code == 403
    assert writer.patch("/functions/ns/add", json={"path": "os.system"}).status_code == 403
    assert writer.patch("/functions/ns/add", json={"path": "tests.jobfuncs.echo"}).status_code == 403
    assert writer.patch("/functions/ns/add", json={"handler": "https://8.8.8.8/x"}).status_code == 403
    assert writer.patch("/schedules/nightly", json={"function": "os.system"}).status_code == 403
    fn = Registry(client).get("ns", "add")
    assert (fn.path, fn.version) == ("tests.jobfuncs.add", 1)
    assert Schedules(client).get("nightly").function == "ns/add"
    # what a write key may still change: defaults and the enabled flag
    assert writer.patch("/functions/ns/add", json={"timeout": 5}).status_code == 200
    # and an admin may repoint within the allowed modules
    assert api.patch("/functions/ns/add", json={"path": "tests.jobfuncs.echo"}).status_code == 200
    assert api.patch("/functions/ns/add", json={"path": "os.system"}).status_code == 422


def test_a_schedule_made_or_changed_over_http_fires_jobs_the_workers_check(writer, client, run_worker, tmp_path,
                                                                           monkeypatch):
    """A registry function registered from Python outside the allowed modules runs for Python callers; wrapped
    in a schedule created (or patched) by a write key, its fires are the API's jobs and the worker refuses them."""
    (tmp_path / "outside_sched.py").write_text("def mark():\n    return 'ran'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    Registry(client).register("ops", "mark", "outside_sched.mark")
    assert writer.post("/schedules", json={"id": "s1", "function": "ops/mark", "interval": 3600}).status_code == 201
    Schedules(client).create(id="s2", function="ops/mark", interval=3600)  # from Python: trusted
    assert writer.patch("/schedules/s2", json={"description": "touched"}).status_code == 200
    Schedules(client).create(id="s3", function="ops/mark", interval=3600)
    fired = {sid: writer.post(f"/schedules/{sid}/execute").get_json()["job_id"] for sid in ("s1", "s2")}
    trusted = Schedules(client).execute("s3")
    run_worker()
    for sid, job_id in fired.items():
        assert client.get(job_id).raw[ORIGIN_FIELD] == ORIGIN_API, sid
        assert client.state(job_id).value == "failed", sid
        assert "outside the allowed modules" in client.runs(job_id)[0]["message"]
    assert client.result(trusted) == "ran"


def test_a_write_key_cannot_change_the_arguments_of_a_job_enqueued_from_python(writer, api, client):
    trusted = client.enqueue("tests.jobfuncs.add", 1, 2, delay=60)
    assert writer.patch(f"/jobs/{trusted.id}", json={"args": [5, 5]}).status_code == 403
    assert writer.patch(f"/jobs/{trusted.id}", json={"priority": 1}).status_code == 200
    assert client.get(trusted.id).args == (1, 2)
    assert api.patch(f"/jobs/{trusted.id}", json={"args": [5, 5]}).status_code == 200
    Registry(client).register("ns", "add", "tests.jobfuncs.add")
    from_api = writer.post("/jobs", json={"function": "ns/add", "args": [1, 2], "delay": 60}).get_json()["id"]
    assert writer.patch(f"/jobs/{from_api}", json={"args": [3, 4]}).status_code == 200
    assert client.get(from_api).args == (3, 4)
