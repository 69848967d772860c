"""GET /metrics: auth (a jobs:read key unless public), Prometheus text that parses, and counters, gauges and
histograms that move as jobs really run through a worker."""
from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from admin_api import create_app
from jobsvc.engine.keys import Keys
from jobsvc.scheduling.promotion import Promoter
from tests.test_admin_api.support import ADMIN_KEY, NOOP, Api


def get(api: Api):
    return api.http.get("/metrics", headers=api.headers())


def scrape(api: Api) -> dict[str, dict[tuple, float]]:
    """Every sample of a scrape: {sample name: {sorted label pairs: value}}."""
    resp = get(api)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.content_type.startswith("text/plain")
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def group(queue: str, function: str, namespace: str = "default", **extra: str) -> tuple:
    return tuple(sorted({"queue": queue, "namespace": namespace, "function": function, **extra}.items()))


def test_needs_a_key_with_jobs_read(app, make_key):
    resp = get(Api(app, None))
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthorized"
    assert get(Api(app, "wrong")).status_code == 401
    assert get(Api(app, make_key("jobs:read"))).status_code == 200


def test_public_when_configured(r, config):
    app = create_app(config.with_(metrics_public=True), r, admin_key=ADMIN_KEY)
    resp = get(Api(app, None))
    assert resp.status_code == 200
    assert "jobsvc_workers" in resp.get_data(as_text=True)


def test_public_setting_reads_the_environment():
    from jobsvc.config import Config

    assert Config.from_env({"JOBSVC_METRICS_PUBLIC": "1"}).metrics_public is True
    assert Config.from_env({"JOBSVC_METRICS_PUBLIC": "true"}).metrics_public is True
    assert Config.from_env({}).metrics_public is False


def test_empty_system_parses(api):
    samples = scrape(api)
    assert samples["jobsvc_workers"][()] == 0
    assert samples["jobsvc_scheduler_last_pass_age_seconds"][()] == float("inf")


def test_counters_and_histograms_move_as_jobs_run(api, client, r, run_worker):
    for _ in range(3):
        client.enqueue(NOOP, queue="m")
    client.enqueue("tests.jobfuncs.fatal", queue="m")
    client.enqueue("tests.jobfuncs.boom", queue="m", max_attempts=3)
    client.enqueue(NOOP, queue="m", namespace="billing")
    client.cancel(client.enqueue(NOOP, queue="m", delay=600).id)
    time.sleep(0.03)  # a measurable wait before the jobs start

    before = scrape(api)
    assert before["jobsvc_jobs_enqueued_total"][group("m", NOOP)] == 4
    assert before["jobsvc_queue_depth"][(("queue", "m"),)] == 6
    assert before["jobsvc_queue_oldest_job_age_seconds"][(("queue", "m"),)] >= 0.03
    assert before["jobsvc_jobs"][(("queue", "m"), ("state", "queued"))] == 6

    run_worker(queues=("m",), backoff_base=60)
    after = scrape(api)
    assert after["jobsvc_jobs_completed_total"][group("m", NOOP)] == 3
    assert after["jobsvc_jobs_completed_total"][group("m", NOOP, namespace="billing")] == 1
    assert after["jobsvc_jobs_failed_total"][group("m", "tests.jobfuncs.fatal")] == 1
    assert after["jobsvc_jobs_retried_total"][group("m", "tests.jobfuncs.boom")] == 1
    assert after["jobsvc_jobs_cancelled_total"][group("m", NOOP)] == 1
    assert after["jobsvc_jobs_quarantined_total"][group("m", NOOP)] == 0
    assert after["jobsvc_lease_expiries_total"][group("m", NOOP)] == 0
    assert after["jobsvc_queue_depth"][(("queue", "m"),)] == 0
    assert after["jobsvc_queue_oldest_job_age_seconds"][(("queue", "m"),)] == 0
    assert after["jobsvc_jobs_running"][(("queue", "m"),)] == 0
    assert after["jobsvc_jobs"][(("queue", "m"), ("state", "completed"))] == 4

    run_count = after["jobsvc_job_run_duration_seconds_count"]
    assert run_count[group("m", NOOP)] == 3
    assert run_count[group("m", "tests.jobfuncs.boom")] == 1  # the failed attempt ran too
    wait = after["jobsvc_job_enqueue_to_start_seconds_count"][group("m", NOOP)]
    assert wait == 3
    assert after["jobsvc_job_enqueue_to_start_seconds_sum"][group("m", NOOP)] >= 3 * 0.03
    inf_bucket = after["jobsvc_job_enqueue_to_start_seconds_bucket"][group("m", NOOP, le="+Inf")]
    assert inf_bucket == 3
    # Buckets are cumulative: never decreasing towards +Inf.
    buckets = sorted((float(dict(k)["le"]), v) for k, v in after["jobsvc_job_run_duration_seconds_bucket"].items()
                     if dict(k)["function"] == NOOP and dict(k)["namespace"] == "default")
    assert [v for _, v in buckets] == sorted(v for _, v in buckets) and buckets[-1][1] == 3


def test_scheduler_lag(api, client, r, config):
    client.enqueue(NOOP, queue="s", delay=0.05)
    time.sleep(0.15)
    assert scrape(api)["jobsvc_scheduler_overdue_seconds"][()] >= 0.1
    Promoter(r, config).run_once()
    samples = scrape(api)
    assert samples["jobsvc_scheduler_lag_seconds"][()] >= 0.1
    assert samples["jobsvc_scheduler_overdue_seconds"][()] == 0
    assert samples["jobsvc_scheduler_last_pass_age_seconds"][()] < 5
    assert r.hget(Keys(config.key_prefix).scheduler_stats, "last_pass_ms") is not None


def test_lease_expiry_is_counted(api, client, r, config, leases):
    from jobsvc.maintenance.reaper import Reaper

    client.enqueue(NOOP, queue="x")
    job = leases.claim(["x"], "w1")
    assert job is not None
    r.zadd(Keys(config.key_prefix).leases, {job.job_id: 0})  # its lease has run out
    Reaper(r, config).run_once()
    samples = scrape(api)
    assert samples["jobsvc_lease_expiries_total"][group("x", NOOP)] == 1
    assert samples["jobsvc_job_run_duration_seconds_count"][group("x", NOOP)] == 1


@pytest.mark.parametrize("limits", [{"queues": ["a"]}, {"namespaces": ["billing"]}])
def test_a_limited_key_sees_only_its_series(app, client, make_key, limits):
    client.enqueue(NOOP, queue="a", namespace="billing")
    client.enqueue(NOOP, queue="b")
    samples = scrape(Api(app, make_key("jobs:read", **limits)))
    enqueued = samples["jobsvc_jobs_enqueued_total"]
    assert list(enqueued) == [group("a", NOOP, namespace="billing")]
    depth_queues = {dict(k)["queue"] for k in samples.get("jobsvc_queue_depth", {})}
    assert depth_queues == ({"a"} if "queues" in limits else set())


def test_listed_in_the_openapi_document(api):
    doc = api.get("/openapi.json").get_json()
    assert doc["paths"]["/metrics"]["get"]["x-scope"] == "jobs:read"
