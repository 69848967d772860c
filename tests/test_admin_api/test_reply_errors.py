"""What the API answers for each refusal a script's reply code (jobsvc/engine/replies.py) or the core raises: 409 for a
change that conflicts with what is stored, with its own error code; a reply no caller expects is a bug (500)."""
from __future__ import annotations

import pytest

from admin_api.errors import status_of
from jobsvc.engine.functions import Registry
from jobsvc.errors import AlreadyExists, Conflict, Disabled, FunctionMissing, LeaseLost, ScriptError, WrongState
from tests.test_admin_api.support import NOOP

NIGHTLY = {"id": "nightly", "function": NOOP, "cron": "0 3 * * *"}


def _error(resp, status, code):
    assert resp.status_code == status
    return resp.get_json()["error"]


def test_a_taken_schedule_id_is_409_already_exists(api):
    assert api.post("/schedules", json=NIGHTLY).status_code == 201
    err = _error(api.post("/schedules", json=NIGHTLY), 409, "already_exists")
    assert err["code"] == "already_exists" and err["details"] == {}
    assert err["message"] == "schedule nightly already exists"


def test_a_function_that_keeps_changing_is_409_conflict(api, monkeypatch):
    api.post("/functions", json={"namespace": "ops", "name": "f", "path": NOOP})

    def moved(self, fn, mode, expected_version=None):
        raise Conflict("moved")

    monkeypatch.setattr(Registry, "_save", moved)
    err = _error(api.patch("/functions/ops/f", json={"timeout": 5}), 409, "conflict")
    assert err["code"] == "conflict" and err["details"] == {} and "keeps changing" in err["message"]


def test_a_disabled_or_missing_registry_function_is_409_with_its_own_code(api, client):
    Registry(client).register("ops", "f", NOOP)
    assert api.post("/schedules", json={"id": "s", "function": "ops/f", "cron": "@daily"}).status_code == 201
    Registry(client).disable("ops", "f")
    err = _error(api.post("/schedules/s/execute"), 409, "disabled")
    assert err["code"] == "disabled" and err["details"] == {}
    Registry(client).delete("ops", "f")
    err = _error(api.post("/schedules/s/execute"), 409, "function_missing")
    assert err["code"] == "function_missing" and "no function ops/f" in err["message"]


def test_a_wrong_state_still_names_the_state(api, client):
    job_id = client.enqueue(NOOP).id
    err = _error(api.post(f"/jobs/{job_id}/retry"), 409, "wrong_state")
    assert (err["code"], err["details"]) == ("wrong_state", {"state": "queued"})


def test_a_script_reply_no_caller_expects_is_a_logged_500(api, client, monkeypatch, caplog):
    from jobsvc.engine.client import Client

    def broken(self, job_id):
        raise ScriptError(f"job {job_id}: unexpected script code -99")

    monkeypatch.setattr(Client, "cancel", broken)
    job_id = client.enqueue(NOOP).id
    with caplog.at_level("ERROR", logger="jobsvc.api"):
        err = _error(api.post(f"/jobs/{job_id}/cancel"), 500, "internal_error")
    assert err["code"] == "internal_error" and "-99" not in err["message"]
    assert any(isinstance(rec.exc_info[1], ScriptError) for rec in caplog.records if rec.exc_info)


@pytest.mark.parametrize(("exc", "status"), [
    (WrongState("x", "queued"), 409), (LeaseLost("x", None), 409), (AlreadyExists("x"), 409), (Conflict("x"), 409),
    (Disabled("x"), 409), (FunctionMissing("x"), 409), (ScriptError("x"), 500),
])
def test_every_refusal_has_its_status(exc, status):
    assert status_of(exc) == status
