"""admin_api.client.AdminClient against a live server (werkzeug, in a thread): the client speaks the API."""
import threading

import pytest
from werkzeug.serving import make_server

from admin_api.client import AdminApiError, AdminClient
from jobsvc import State
from tests.test_admin_api.support import ADMIN_KEY, NOOP, make_failed


@pytest.fixture
def admin(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield AdminClient(f"http://127.0.0.1:{server.server_port}", ADMIN_KEY, timeout=10)
    finally:
        server.shutdown()
        thread.join(5)


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
    assert admin.ttl_sweep(dry_run=True, limit=10)["operation"] == "ttl_sweep"
    key = admin.create_key("ci", ["jobs:read"])
    assert [k["id"] for k in admin.list_keys()["keys"]] == [key["id"]]
    admin.revoke_key(key["id"])
    assert admin.audit(limit=1)["entries"][0]["action"] == "keys.revoke"
