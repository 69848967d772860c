"""Bulk endpoints: dry run (count + sample, no change), X-Confirm (428 without), filters, counts, audit."""
import pytest

from jobsvc import State
from tests.test_admin_api.support import NOOP, make_failed

CONFIRM = {"X-Confirm": "true"}
OPERATIONS = ["/jobs/batch/retry", "/jobs/batch/requeue_quarantined", "/jobs/prune", "/jobs/expired/delete",
              "/jobs/ttl/sweep", "/jobs/integrity/sweep"]
# What makes each operation change something (the integrity sweep reports only unless asked to fix).
CHANGING = {"/jobs/integrity/sweep": {"fix": True}}


@pytest.fixture
def failed(client, leases):
    return [make_failed(client, leases, queue="q1", message="disk full"),
            make_failed(client, leases, queue="q1", message="timeout"),
            make_failed(client, leases, queue="q2", message="disk full")]


def test_dry_run_counts_and_samples_and_changes_nothing(api, client, failed):
    resp = api.post("/jobs/batch/retry", json={"dry_run": True})
    assert resp.status_code == 200
    out = resp.get_json()
    assert (out["operation"], out["dry_run"], out["matched"], out["changed"]) == ("bulk_retry", True, 3, 0)
    assert sorted(out["sample"]) == sorted(failed)
    assert all(client.get(j).state == State.FAILED for j in failed)


@pytest.mark.parametrize("path", OPERATIONS)
def test_without_x_confirm_is_428_and_changes_nothing(api, client, failed, path):
    resp = api.post(path, json=CHANGING.get(path, {}))
    assert resp.status_code == 428
    assert resp.get_json()["error"]["code"] == "confirmation_required"
    assert all(client.get(j).state == State.FAILED for j in failed)


@pytest.mark.parametrize("value", ["false", "yes", ""])
def test_x_confirm_must_be_true(api, failed, value):
    assert api.post("/jobs/batch/retry", json={}, headers={"X-Confirm": value}).status_code == 428


@pytest.mark.parametrize("path", OPERATIONS)
def test_dry_run_needs_no_confirmation(api, path):
    assert api.post(path, json={"dry_run": True, **CHANGING.get(path, {})}).status_code == 200


def test_retry_with_confirm_requeues_and_resets_attempts(api, client, failed):
    out = api.post("/jobs/batch/retry", json={}, headers=CONFIRM).get_json()
    assert (out["matched"], out["changed"], out["dry_run"]) == (3, 3, False)
    for job_id in failed:
        info = client.get(job_id)
        assert (info.state, info.attempts) == (State.QUEUED, 0)


def test_retry_filters_by_queue_and_error_text(api, client, failed):
    out = api.post("/jobs/batch/retry", json={"queue": "q1", "error_contains": "disk"}, headers=CONFIRM).get_json()
    assert out["changed"] == 1
    assert client.get(failed[0]).state == State.QUEUED
    assert [client.get(j).state for j in failed[1:]] == [State.FAILED, State.FAILED]


def test_retry_with_a_state_it_cannot_retry_is_422(api):
    assert api.post("/jobs/batch/retry", json={"state": "queued", "dry_run": True}).status_code == 422


def test_unknown_filter_field_is_422(api):
    assert api.post("/jobs/batch/retry", json={"dry_run": True, "color": "red"}).status_code == 422


def test_prune_deletes_matching_ended_jobs(api, client, failed):
    out = api.post("/jobs/prune", json={"state": "failed", "queue": "q2"}, headers=CONFIRM).get_json()
    assert out["changed"] == 1
    assert api.get(f"/jobs/{failed[2]}").status_code == 404
    assert api.get(f"/jobs/{failed[0]}").status_code == 200


def test_prune_never_touches_queued_jobs(api, client):
    job_id = client.enqueue(NOOP).id
    api.post("/jobs/prune", json={}, headers=CONFIRM)
    assert client.get(job_id).state == State.QUEUED


def test_ttl_sweep_reports_counts(api, failed):
    out = api.post("/jobs/ttl/sweep", json={"dry_run": True}).get_json()
    assert (out["operation"], out["matched"], out["changed"]) == ("ttl_sweep", 0, 0)


def test_integrity_sweep_dry_run_reports_a_clean_store(api, client, failed):
    client.enqueue(NOOP)
    out = api.post("/jobs/integrity/sweep", json={"dry_run": True}).get_json()
    assert (out["dry_run"], out["report"]["fixed"], out["report"]["clean"], out["report"]["total"]) == (
        True, False, True, 0)
    assert out["report"]["scanned"] == 4


def test_integrity_sweep_with_confirm_fixes(api, r, client):
    job_id = client.enqueue(NOOP).id
    r.lrem("rq:queue:default", 0, job_id)  # the job lost its place in its lane
    found = api.post("/jobs/integrity/sweep", json={"dry_run": True}).get_json()["report"]
    assert found["total"] >= 1
    fixed = api.post("/jobs/integrity/sweep", json={"fix": True}, headers=CONFIRM).get_json()["report"]
    assert fixed["fixed"] is True
    assert api.post("/jobs/integrity/sweep", json={"dry_run": True}).get_json()["report"]["clean"] is True


def test_bulk_calls_are_audited_with_counts(api, failed):
    api.post("/jobs/batch/retry", json={"queue": "q1"}, headers=CONFIRM)
    entry = api.get("/audit").get_json()["entries"][0]
    assert (entry["action"], entry["params"], entry["counts"]["matched"], entry["counts"]["changed"]) == (
        "bulk.retry", {"queue": "q1"}, 2, 2)


def test_namespace_key_bulk_is_limited_to_its_namespace(api, client, leases, make_key):
    mine = make_failed(client, leases, namespace="a")
    other = make_failed(client, leases, namespace="b")
    key = api.as_key(make_key("jobs:admin", namespaces=["a"]))
    out = key.post("/jobs/batch/retry", json={}, headers=CONFIRM).get_json()
    assert out["changed"] == 1
    assert (client.get(mine).state, client.get(other).state) == (State.QUEUED, State.FAILED)
    assert key.post("/jobs/batch/retry", json={"namespace": "b"}, headers=CONFIRM).status_code == 403


@pytest.mark.parametrize("path", ["/jobs/expired/delete", "/jobs/ttl/sweep"])
def test_expired_sweep_needs_an_unlimited_key(api, make_key, path):
    key = api.as_key(make_key("jobs:admin", queues=["q1"]))
    assert key.post(path, json={"dry_run": True}).status_code == 403


def test_older_and_newer_than_filter_by_end_time(api, failed):
    assert api.post("/jobs/batch/retry", json={"dry_run": True, "older_than": 3600}).get_json()["matched"] == 0
    assert api.post("/jobs/batch/retry", json={"dry_run": True, "newer_than": 3600}).get_json()["matched"] == 3
