"""PATCH / DELETE /jobs/{id}, cancel, terminate, retry: allowed states, and 409 with the state otherwise."""
from datetime import datetime, timedelta, timezone

import pytest

from jobsvc import State
from jobsvc.engine.keys import Keys
from tests.test_admin_api.support import NOOP, make_failed, make_running

ADD = "tests.jobfuncs.add"


def _wrong_state(resp, state):
    assert resp.status_code == 409
    err = resp.get_json()["error"]
    assert err["code"] == "wrong_state"
    assert err["details"]["state"] == state


def test_patch_changes_args_priority_of_a_queued_job(api, client):
    job_id = client.enqueue(ADD, 1, 2).id
    resp = api.patch(f"/jobs/{job_id}", json={"args": [10, 20], "kwargs": {}, "priority": 1})
    assert resp.status_code == 200
    assert (resp.get_json()["args"], resp.get_json()["priority"]) == ([10, 20], 1)
    assert client.get(job_id).args == (10, 20)


def test_patch_run_at_schedules_a_queued_job(api, client):
    job_id = client.enqueue(NOOP).id
    at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=5)
    job = api.patch(f"/jobs/{job_id}", json={"run_at": at.isoformat()}).get_json()
    assert (job["state"], job["run_at"]) == ("scheduled", at.strftime("%Y-%m-%dT%H:%M:%S.000Z"))


def test_patch_delay_zero_queues_a_scheduled_job(api, client):
    job_id = client.enqueue(NOOP, delay=600).id
    assert api.patch(f"/jobs/{job_id}", json={"delay": 0}).get_json()["state"] == "queued"


def test_patch_of_a_running_job_is_409_with_its_state(api, client, leases):
    job_id = make_running(client, leases)
    _wrong_state(api.patch(f"/jobs/{job_id}", json={"priority": 1}), "running")


def test_patch_of_a_failed_job_is_409(api, client, leases):
    job_id = make_failed(client, leases)
    _wrong_state(api.patch(f"/jobs/{job_id}", json={"priority": 1}), "failed")


@pytest.mark.parametrize("body", [{}, {"priority": 11}, {"queue": "other"}, {"run_at": "2030-01-01", "delay": 1}])
def test_patch_bad_bodies_are_422(api, client, body):
    job_id = client.enqueue(NOOP).id
    assert api.patch(f"/jobs/{job_id}", json=body).status_code == 422


def test_patch_unknown_job_is_404(api):
    assert api.patch("/jobs/nope", json={"priority": 1}).status_code == 404


def test_delete_removes_a_queued_job(api, client, r):
    job_id = client.enqueue(NOOP).id
    assert api.delete(f"/jobs/{job_id}").status_code == 204
    assert not r.exists(Keys.job(job_id))
    assert api.get(f"/jobs/{job_id}").status_code == 404


def test_delete_of_a_running_job_is_409(api, client, leases, r):
    job_id = make_running(client, leases)
    _wrong_state(api.delete(f"/jobs/{job_id}"), "running")
    assert r.exists(Keys.job(job_id))


def test_delete_unknown_job_is_404(api):
    assert api.delete("/jobs/nope").status_code == 404


@pytest.mark.parametrize("delay", [None, 60])
def test_cancel_queued_or_scheduled(api, client, delay):
    job_id = client.enqueue(NOOP, delay=delay).id
    resp = api.post(f"/jobs/{job_id}/cancel")
    assert resp.status_code == 200
    assert resp.get_json()["state"] == "cancelled"


def test_cancel_running_is_409(api, client, leases):
    _wrong_state(api.post(f"/jobs/{make_running(client, leases)}/cancel"), "running")


def test_terminate_running_ends_cancelled(api, client, leases, r, config):
    job_id = make_running(client, leases)
    resp = api.post(f"/jobs/{job_id}/terminate")
    assert resp.status_code == 200
    assert resp.get_json()["state"] == "cancelled"
    assert r.lrange(Keys(config.key_prefix).terminate("host.1.w"), 0, -1) == [job_id.encode()]


def test_terminate_queued_is_409(api, client):
    _wrong_state(api.post(f"/jobs/{client.enqueue(NOOP).id}/terminate"), "queued")


def test_retry_failed_resets_attempts(api, client, leases):
    job_id = make_failed(client, leases)
    assert client.get(job_id).attempts == 1
    job = api.post(f"/jobs/{job_id}/retry").get_json()
    assert (job["state"], job["attempts"]) == ("queued", 0)


def test_retry_cancelled(api, client):
    job_id = client.enqueue(NOOP).id
    client.cancel(job_id)
    assert api.post(f"/jobs/{job_id}/retry").get_json()["state"] == "queued"


def test_retry_queued_is_409(api, client):
    _wrong_state(api.post(f"/jobs/{client.enqueue(NOOP).id}/retry"), "queued")


@pytest.mark.parametrize("action", ["cancel", "terminate", "retry"])
def test_actions_on_unknown_job_are_404(api, action):
    assert api.post(f"/jobs/nope/{action}").status_code == 404


def test_running_job_stays_running_after_refused_actions(api, client, leases):
    job_id = make_running(client, leases)
    for action in ("cancel", "retry"):
        api.post(f"/jobs/{job_id}/{action}")
    assert client.get(job_id).state == State.RUNNING
