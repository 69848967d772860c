"""admin_api.client.AdminClient against a live server (werkzeug, in a thread): the client speaks the API."""

import pytest

from admin_api.client import AdminApiError
from jobsvc import State
from tests.test_admin_api.support import NOOP, live_admin_client, make_failed


@pytest.fixture
def admin(app):
    with live_admin_client(app) as client:
        yield client


def test_create_get_list_and_cancel(admin):
    job = admin.create_job(NOOP, queue="mail", delay=60)
    assert admin.get_job(job["id"])["state"] == "scheduled"
    assert [j["id"] for j in admin.iter_jobs(queue="mail")] == [job["id"]]
    assert admin.cancel_job(job["id"])["state"] == "cancelled"


def test_errors_carry_status_code_and_state(admin):
    job = admin.create_job(NOOP)
    with pytest.raises(AdminApiError) as err:
        admin.retry_job(job["id"])
    assert (err.value.status, err.value.code, err.value.details) == (409, "wrong_state", {"state": "queued"})


def test_bulk_retry_dry_run_then_confirmed(admin, client, leases):
    job_id = make_failed(client, leases, message="disk full")
    assert admin.bulk_retry(dry_run=True, error_contains="disk")["matched"] == 1
    assert admin.bulk_retry(error_contains="disk", older_than=0)["changed"] == 1
    assert client.get(job_id).state == State.QUEUED


def test_sweeps_and_keys(admin):
    assert admin.integrity_sweep()["report"]["clean"] is True
    assert admin.integrity_sweep(fix=True)["report"]["fixed"] is True
    assert admin.integrity_sweep(queue="default", namespace="default")["report"]["fixed"] is False
    assert admin.ttl_sweep(dry_run=True, limit=10)["operation"] == "ttl_sweep"
    assert admin.delete_expired(dry_run=True)["operation"] == "ttl_sweep"
    assert admin.cancel_stale(queued_for=3600, running_for=3600)["operation"] == "cancel_stale"
    key = admin.create_key("ci", ["jobs:read"])
    assert [k["id"] for k in admin.list_keys()["keys"]] == [key["id"]]
    admin.revoke_key(key["id"])
    assert admin.audit(limit=1)["entries"][0]["action"] == "keys.revoke"


def test_schedules(admin, client):
    sc = admin.create_schedule(NOOP, cron="0 3 * * *", id="nightly", timezone="Europe/Paris")
    assert (sc["id"], sc["status"]) == ("nightly", "idle")
    assert admin.patch_schedule("nightly", enabled=False)["status"] == "disabled"
    assert [s["id"] for s in admin.iter_schedules(enabled=False)] == ["nightly"]
    job_id = admin.execute_schedule("nightly")["job_id"]
    assert client.get(job_id).state == State.QUEUED
    assert [r["job_id"] for r in admin.schedule_runs("nightly")["runs"]] == [job_id]
    assert admin.get_schedule("nightly")["runs"] == 1
    with pytest.raises(AdminApiError) as err:
        admin.create_schedule(NOOP, cron="0 3 * * *", timezone="Nowhere/City")
    assert err.value.status == 422 and "timezone" in err.value.details["fields"]
    admin.delete_schedule("nightly")
    with pytest.raises(AdminApiError) as err:
        admin.get_schedule("nightly")
    assert err.value.status == 404


def test_functions_and_jobs_by_reference(admin):
    fn = admin.register_function("charge", "tests.jobfuncs.add", namespace="billing", queue="billing")
    assert fn["ref"] == "billing/charge"
    assert admin.create_job("billing/charge", args=[1, 2])["queue"] == "billing"
    admin.patch_function("billing", "charge", enabled=False)
    with pytest.raises(AdminApiError) as err:
        admin.create_job("billing/charge")
    assert (err.value.status, err.value.code) == (409, "disabled")
    assert admin.namespaces()["namespaces"] == [{"namespace": "billing", "functions": 1, "disabled": 1}]
    dry = admin.sync_functions("billing", [], delete_missing=True, dry_run=True)
    assert dry["deleted"] == ["charge"] and admin.get_function("billing", "charge")["enabled"] is False
    assert admin.sync_functions("billing", [], delete_missing=True)["deleted"] == ["charge"]
    assert admin.list_functions()["functions"] == []
    admin.register_function("x", "tests.jobfuncs.noop")
    admin.delete_function("default", "x")


def test_create_handler_job_and_unsafe_url_error(admin):
    with pytest.raises(AdminApiError) as err:
        admin.create_handler_job("https://10.0.0.1/hook", {"n": 1})
    assert (err.value.status, err.value.code) == (422, "unsafe_url")
    job = admin.create_handler_job("https://93.184.216.34/hook", {"n": 1}, queue="hooks")
    got = admin.get_job(job["id"])
    assert (got["handler"], got["payload"], got["queue"]) == ("https://93.184.216.34/hook", {"n": 1}, "hooks")


def test_pull_claim_and_batch_ack(admin, client):
    for _ in range(3):
        client.enqueue_pull(NOOP, queue="pq")
    jobs = admin.claim("pq", count=3)
    results = admin.ack_many([{"id": j["id"], "token": j["token"], "status": "completed"} for j in jobs])
    assert [row["state"] for row in results] == ["completed"] * 3


def test_job_runs_disable_enable_trigger(admin, client, leases):
    job = admin.create_job(NOOP, delay=60)
    assert admin.disable_job(job["id"])["disabled"] is True
    assert admin.enable_job(job["id"])["disabled"] is False
    triggered = admin.trigger_job(job["id"])
    assert triggered["run_id"] == f"{job['id']}.1"
    failed = make_failed(client, leases, queue="other")
    page = admin.job_runs(failed, limit=1)
    assert [r["id"] for r in page["runs"]] == [f"{failed}.1"] and page["next_cursor"] is None
