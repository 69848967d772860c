"""GET /jobs (filters, cursor pages), GET /jobs/{id}, runs, stats."""
import base64
import json
import time
from datetime import datetime, timezone

import pytest

from jobsvc.admin.listing import JobFilter
from tests.test_admin_api.support import NOOP, make_failed, make_running

ADD = "tests.jobfuncs.add"


def _ids(resp):
    assert resp.status_code == 200, resp.get_json()
    return [j["id"] for j in resp.get_json()["jobs"]]


def test_get_returns_every_documented_field(api, client):
    job_id = client.enqueue(ADD, 1, 2, queue="q1", namespace="ns", max_attempts=4).id
    job = api.get(f"/jobs/{job_id}").get_json()
    assert set(job) == {"id", "function", "queue", "namespace", "trigger", "state", "args", "kwargs", "priority",
                        "progress", "progress_message", "attempts", "max_attempts", "timeout", "created_at",
                        "enqueued_at", "run_at", "started_at", "ended_at", "error", "worker", "lease_expires_at",
                        "handler", "payload", "callback_url", "notification", "disabled"}
    assert (job["id"], job["function"], job["queue"], job["namespace"], job["state"], job["attempts"],
            job["max_attempts"], job["disabled"]) == (job_id, ADD, "q1", "ns", "queued", 0, 4, False)
    assert job["created_at"].endswith("Z")
    datetime.fromisoformat(job["created_at"].replace("Z", "+00:00"))


def test_get_unknown_job_is_404(api):
    resp = api.get("/jobs/nope")
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "not_found"


def test_get_running_job_shows_worker_and_lease_expiry(api, client, leases):
    job_id = make_running(client, leases)
    job = api.get(f"/jobs/{job_id}").get_json()
    assert (job["state"], job["worker"], job["attempts"]) == ("running", "host.1.w", 1)
    expiry = datetime.fromisoformat(job["lease_expires_at"].replace("Z", "+00:00")).timestamp()
    assert time.time() < expiry < time.time() + 31
    assert job["started_at"] is not None


def test_get_failed_job_shows_the_reason(api, client, leases):
    job_id = make_failed(client, leases, message="disk full")
    job = api.get(f"/jobs/{job_id}").get_json()
    assert job["state"] == "failed"
    assert "disk full" in job["error"]
    assert job["ended_at"] is not None


def test_result_only_on_request(api, client, leases):
    job_id = client.enqueue(ADD, 2, 3).id
    lease = leases.claim(["default"], "w")
    leases.complete(lease, 5, "w", time.time(), time.time())
    assert "result" not in api.get(f"/jobs/{job_id}").get_json()
    assert api.get(f"/jobs/{job_id}?include_result=true").get_json()["result"] == 5
    listed = api.get("/jobs?include_result=true").get_json()["jobs"]
    assert [j["result"] for j in listed] == [5]


def test_non_json_arguments_are_shown_not_fatal(api, client):
    job_id = client.enqueue(ADD, (1, 2), {3}, kwargs={"when": datetime(2020, 1, 1, tzinfo=timezone.utc)}).id
    job = api.get(f"/jobs/{job_id}").get_json()
    assert job["args"][0] == [1, 2]
    assert job["args"][1] == "{3}"
    assert "datetime" in job["kwargs"]["when"]


def test_list_is_newest_first(api, client):
    ids = []
    for _ in range(3):
        ids.append(client.enqueue(NOOP).id)
        time.sleep(0.002)  # jobs of the same millisecond come in id order
    assert _ids(api.get("/jobs")) == ids[::-1]


@pytest.mark.parametrize(("query", "expect"), [
    ("queue=q2", ["b"]),
    ("state=scheduled", ["c"]),
    ("status=delayed", ["c"]),
    ("function=tests.jobfuncs.add", ["b"]),
    ("namespace=ns1", ["a"]),
    ("trigger=delayed", ["c"]),
    ("trigger_type=immediate&queue=default", ["a"]),
])
def test_list_filters(api, client, query, expect):
    made = {"a": client.enqueue(NOOP, namespace="ns1").id, "b": client.enqueue(ADD, queue="q2").id,
            "c": client.enqueue(NOOP, delay=60).id}
    assert _ids(api.get(f"/jobs?{query}")) == [made[k] for k in expect]


def test_list_created_after_and_before(api, client, r):
    old = client.enqueue(NOOP).id
    time.sleep(0.02)
    sec, usec = r.time()
    middle = datetime.fromtimestamp(sec + usec / 1e6, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    time.sleep(0.02)
    new = client.enqueue(NOOP).id
    assert _ids(api.get(f"/jobs?created_after={middle}")) == [new]
    assert _ids(api.get(f"/jobs?created_before={middle}")) == [old]


def test_cursor_pages_cover_every_job_once(api, client):
    ids = {client.enqueue(NOOP).id for _ in range(7)}
    seen, cursor, pages = [], None, 0
    while True:
        url = "/jobs?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(url).get_json()
        seen += [j["id"] for j in page["jobs"]]
        cursor, pages = page["next_cursor"], pages + 1
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and pages == 3


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=x", "state=bogus", "trigger=cron",
                                   "cursor=!!notacursor", "queue=bad%20queue", "created_after=yesterday",
                                   "state=queued&status=failed", "unknown=1"])
def test_bad_list_queries_are_422(api, query):
    resp = api.get(f"/jobs?{query}")
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "validation_error"


def test_limit_500_is_allowed(api):
    assert api.get("/jobs?limit=500").status_code == 200


def test_cursor_of_another_listing_is_422(api, client):
    for _ in range(3):
        client.enqueue(NOOP)
    cursor = api.get("/jobs?limit=1").get_json()["next_cursor"]
    assert api.get(f"/jobs?limit=1&state=queued&cursor={cursor}").status_code == 422


def test_runs_lists_failed_attempts(api, client, leases):
    job_id = make_failed(client, leases, message="nope")
    runs = api.get(f"/jobs/{job_id}/runs").get_json()["runs"]
    assert len(runs) == 1
    assert (runs[0]["attempt"], runs[0]["outcome"], runs[0]["exc_type"], runs[0]["message"]) == (
        1, "failed", "RuntimeError", "nope")


def test_runs_of_unknown_job_is_404(api):
    assert api.get("/jobs/nope/runs").status_code == 404


def test_stats_by_queue_namespace_and_function(api, client, leases):
    make_failed(client, leases, queue="b", namespace="n2")
    client.enqueue(NOOP, queue="a", namespace="n1")
    client.enqueue(ADD, queue="b", namespace="n1")
    out = api.get("/jobs/stats").get_json()
    assert out["total"]["queued"] == 2 and out["total"]["failed"] == 1
    assert out["queue"]["b"]["failed"] == 1 and out["queue"]["a"]["queued"] == 1
    assert out["namespace"]["n1"]["queued"] == 2
    assert out["function"][ADD]["queued"] == 1


def test_stats_by_one_grouping(api, client):
    client.enqueue(NOOP, queue="a")
    out = api.get("/jobs/stats?by=queue").get_json()
    assert set(out) == {"total", "queue"}


def test_stats_answers_at_api_v1_stats_too(api, client):
    client.enqueue(NOOP, queue="a")
    assert api.get("/stats?by=queue").get_json() == api.get("/jobs/stats?by=queue").get_json()
    assert api.get("/stats").get_json()["queue"]["a"]["queued"] == 1


def test_stats_bad_grouping_is_422(api):
    assert api.get("/jobs/stats?by=worker").status_code == 422


def _cursor(kind, flt, pos):
    raw = json.dumps({"k": kind, "f": flt.fingerprint(), "p": pos})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(("kind", "state", "pos"), [
    ("created", None, ["abc", "x"]), ("created", None, []), ("created", None, [None, None]),
    ("created", None, "str"), ("created", None, ["nan", "x"]), ("created", None, [{"a": 1}, "x"]),
    ("queued", "queued", ["default"]), ("queued", "queued", ["default", "x", "y"]),
])
def test_forged_cursor_of_the_right_listing_is_422(api, client, kind, state, pos):
    client.enqueue(NOOP)
    cursor = _cursor(kind, JobFilter(state=state), pos)
    resp = api.get(f"/jobs?cursor={cursor}" + (f"&state={state}" if state else ""))
    assert resp.status_code == 422
