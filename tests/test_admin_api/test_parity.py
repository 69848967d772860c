"""Issue 16, part B: what clients of the admin APIs jobsvc replaces rely on, through the HTTP API -- stats filters
and grouping by several fields, cancel of running jobs (one job, a schedule's), request aliases, 404 for an
unknown queue, the function filter by registry name, counts with a listing."""
from __future__ import annotations

from jobsvc import State
from jobsvc.engine.functions import Registry
from tests.test_admin_api.support import ADMIN_KEY, NOOP, make_failed, make_running

ADD = "tests.jobfuncs.add"


# -- stats -------------------------------------------------------------------------------------------------


def test_stats_filter_by_queue_namespace_and_function(api, client, leases):
    make_failed(client, leases, queue="b", namespace="n2")
    client.enqueue(NOOP, queue="a", namespace="n1")
    client.enqueue(ADD, queue="b", namespace="n1")
    client.enqueue(ADD, queue="b", namespace="n1")
    out = api.get("/jobs/stats?queue=b").get_json()
    assert set(out["queue"]) == {"b"} and out["total"]["queued"] == 2 and out["total"]["failed"] == 1
    out = api.get("/stats?namespace=n1").get_json()
    assert out["total"]["queued"] == 3 and out["total"]["failed"] == 0
    assert out["queue"]["a"]["queued"] == 1 and out["queue"]["b"]["queued"] == 2
    out = api.get(f"/jobs/stats?function={ADD}&queue=b&by=namespace").get_json()
    assert set(out) == {"total", "namespace"} and out["total"]["queued"] == 2
    assert set(out["namespace"]) == {"n1"}
    assert api.get("/jobs/stats?queue=nothing-here").get_json()["total"]["queued"] == 0


def test_stats_group_by_several_fields(api, client, leases):
    make_failed(client, leases, queue="b")
    client.enqueue(NOOP, queue="a")
    client.enqueue(ADD, queue="b")
    client.enqueue(ADD, queue="b")
    out = api.get("/jobs/stats?group_by=queue,function").get_json()
    assert set(out) == {"total", "groups"}
    rows = {(g["queue"], g["function"]): g["counts"] for g in out["groups"]}
    assert set(rows) == {("a", NOOP), ("b", NOOP), ("b", ADD)}
    assert rows[("b", ADD)]["queued"] == 2 and rows[("b", NOOP)]["failed"] == 1 and rows[("a", NOOP)]["queued"] == 1
    assert "namespace" not in out["groups"][0]
    only_b = api.get("/stats?group_by=function,namespace&queue=b").get_json()["groups"]
    assert [(g["function"], g["namespace"]) for g in only_b] == [(ADD, "default"), (NOOP, "default")]


def test_stats_bad_group_by_is_422(api):
    for query in ("group_by=worker", "group_by=queue,queue", "group_by=", "group_by=queue&by=queue",
                  "namespace=bad name", "queue=bad/name"):
        assert api.get(f"/jobs/stats?{query}").status_code == 422, query


def test_stats_function_filter_takes_a_registry_name(api, client):
    Registry(client).register("mail", "digest", ADD, queue="mail")
    api.post("/jobs", {"function": "mail/digest", "args": [1, 2]})
    client.enqueue(NOOP, queue="mail")
    assert api.get("/jobs/stats?function=mail/digest").get_json()["total"]["queued"] == 1


# -- listing -------------------------------------------------------------------------------------------------


def test_listing_unknown_queue_is_404(api, client):
    client.enqueue(NOOP, queue="known")
    resp = api.get("/jobs?queue=knwon")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"
    assert api.get("/jobs?queue=known").status_code == 200


def test_listing_status_all_filters_nothing(api, client, leases):
    make_failed(client, leases)
    client.enqueue(NOOP)
    everything = api.get("/jobs").get_json()["jobs"]
    for query in ("status=all", "state=all"):
        assert api.get(f"/jobs?{query}").get_json()["jobs"] == everything
    assert len(everything) == 2


def test_listing_function_filter_by_registry_name_or_import_path(api, client):
    Registry(client).register("mail", "digest", ADD, queue="mail")
    job_id = api.post("/jobs", {"function": "mail/digest", "args": [1, 2]}).get_json()["id"]
    client.enqueue(NOOP, queue="mail")
    for ref in ("mail/digest", ADD):
        assert [j["id"] for j in api.get(f"/jobs?function={ref}").get_json()["jobs"]] == [job_id], ref


def test_listing_include_counts(api, client, leases):
    make_failed(client, leases, queue="q")
    client.enqueue(NOOP, queue="q")
    client.enqueue(ADD, queue="q")
    client.enqueue(ADD, queue="other")
    page = api.get("/jobs?queue=q&limit=1&include_counts=true").get_json()
    assert len(page["jobs"]) == 1 and page["counts"]["queued"] == 2 and page["counts"]["failed"] == 1
    assert api.get(f"/jobs?function={ADD}&include_counts=true").get_json()["counts"]["queued"] == 2
    assert "counts" not in api.get("/jobs").get_json()
    assert api.get("/jobs?include_counts=yes").status_code == 422


# -- one job: queue check, aliases -----------------------------------------------------------------------------


def test_get_and_retry_with_queue_must_match(api, client, leases):
    job_id = make_failed(client, leases, queue="q")
    assert api.get(f"/jobs/{job_id}?queue=q").get_json()["id"] == job_id
    assert api.get(f"/jobs/{job_id}?queue=other").status_code == 404
    assert api.post(f"/jobs/{job_id}/retry?queue=other").status_code == 404
    assert client.get(job_id).state == State.FAILED  # the refused retry changed nothing
    assert api.post(f"/jobs/{job_id}/retry?queue=q").get_json()["state"] == "queued"
    assert api.get(f"/jobs/{job_id}?queue=bad name").status_code == 422


def test_delay_seconds_is_an_alias_of_delay(api):
    job = api.post("/jobs", {"function": NOOP, "delay_seconds": 600}).get_json()
    assert (job["state"], job["trigger"]) == ("scheduled", "delayed")
    assert api.post("/jobs", {"function": NOOP, "delay_seconds": 5, "delay": 5}).status_code == 201
    for body in ({"delay_seconds": 5, "delay": 6}, {"delay_seconds": 5, "run_at": "2030-01-01T00:00:00Z"},
                 {"delay_seconds": -1}):
        assert api.post("/jobs", {"function": NOOP, **body}).status_code == 422, body


def test_x_api_key_is_an_alias_of_x_admin_key(api):
    anon = api.as_key(None)
    assert anon.get("/jobs", headers={"X-API-KEY": ADMIN_KEY}).status_code == 200
    assert anon.get("/jobs", headers={"x-api-key": ADMIN_KEY}).status_code == 200
    assert anon.get("/jobs", headers={"X-API-KEY": "wrong"}).status_code == 401


# -- cancel ------------------------------------------------------------------------------------------------------


def test_cancel_running_with_terminate_stops_it(api, client, leases):
    job_id = make_running(client, leases)
    resp = api.post(f"/jobs/{job_id}/cancel", {"terminate": True})
    assert resp.status_code == 200 and resp.get_json()["state"] == "cancelled"
    assert client.get(job_id).error == "Terminated: by an operator"


def test_cancel_running_without_terminate_says_which_call(api, client, leases):
    job_id = make_running(client, leases)
    for body in (None, {"terminate": False}):
        err = api.post(f"/jobs/{job_id}/cancel", body).get_json()["error"]
        assert err["code"] == "wrong_state" and err["details"]["state"] == "running"
        assert '"terminate": true' in err["message"] and f"/jobs/{job_id}/terminate" in err["message"]
    assert client.get(job_id).state == State.RUNNING


def test_cancel_with_terminate_still_cancels_a_queued_job(api, client):
    job_id = client.enqueue(NOOP).id
    assert api.post(f"/jobs/{job_id}/cancel", {"terminate": True}).get_json()["state"] == "cancelled"
    assert api.post(f"/jobs/{job_id}/cancel", {"terminate": "yes"}).status_code == 422


def test_schedule_cancel_stops_its_running_job(api, client, leases):
    assert api.post("/schedules", {"id": "nightly", "function": NOOP, "cron": "0 3 * * *",
                                   "queue": "reports"}).status_code == 201
    running = api.post("/schedules/nightly/execute").get_json()["job_id"]
    lease = leases.claim(["reports"], "host.1.w")
    assert lease is not None and lease.job_id == running
    waiting = api.post("/schedules/nightly/execute").get_json()["job_id"]
    other = make_running(client, leases, queue="elsewhere")  # not the schedule's: left running
    resp = api.post("/schedules/nightly/cancel")
    assert resp.status_code == 200
    assert resp.get_json() == {"schedule_id": "nightly", "terminated": [running]}
    assert client.get(running).state == State.CANCELLED
    assert client.get(waiting).state == State.QUEUED and client.get(other).state == State.RUNNING
    assert api.post("/schedules/nightly/cancel").get_json()["terminated"] == []  # safe to repeat
    assert api.post("/schedules/nope/cancel").status_code == 404
