"""Outcome notifications to a job's callback_url: signed, retried, at least once, never lost to the job's TTL."""
from __future__ import annotations

import pytest

from jobsvc import signing
from tests.conftest import HANDLER_SECRET
from workers.callbacks import Notifier

HTTP = dict(handler_secret=HANDLER_SECRET, allow_private_urls=True)


@pytest.fixture
def notifier(r, http_config):
    return Notifier(r, http_config, retry_base=0.0, attempts=3)


def test_completed_job_posts_its_result_signed(http_client, handler_server, run_worker, notifier):
    job = http_client.enqueue("tests.jobfuncs.add", 2, 3, callback_url=handler_server.url("/hook"))
    run_worker(**HTTP)
    assert notifier.run_once().delivered == 1
    (req,) = handler_server.to("/hook")
    assert signing.verify(HANDLER_SECRET, req.body, req.headers[signing.SIGNATURE_HEADER])
    assert req.headers[signing.JOB_ID_HEADER] == job.id
    body = req.json()
    assert body["job_id"] == job.id and body["state"] == "completed" and body["result"] == 5


def test_delivery_is_recorded_on_the_job_and_not_repeated(http_client, handler_server, run_worker, notifier, r):
    job = http_client.enqueue("tests.jobfuncs.add", 1, 1, callback_url=handler_server.url("/hook"))
    run_worker(**HTTP)
    notifier.run_once()
    assert notifier.run_once().total == 0
    assert len(handler_server.to("/hook")) == 1
    assert r.hget(f"rq:job:{job.id}", "js_notify").decode().startswith("delivered")


def test_failed_job_posts_its_error(http_client, handler_server, run_worker, notifier):
    http_client.enqueue("tests.jobfuncs.fatal", callback_url=handler_server.url("/hook"))
    run_worker(**HTTP)
    notifier.run_once()
    body = handler_server.to("/hook")[0].json()
    assert body["state"] == "failed" and "error" in body and "result" not in body


def test_retry_does_not_notify_until_the_job_ends(http_client, handler_server, run_worker, notifier):
    http_client.enqueue("tests.jobfuncs.boom", callback_url=handler_server.url("/hook"), max_attempts=2)
    run_worker(**HTTP)  # first attempt fails and is scheduled again
    assert notifier.run_once().total == 0


def test_cancelled_job_notifies(http_client, handler_server, notifier):
    job = http_client.enqueue("tests.jobfuncs.add", 1, 2, callback_url=handler_server.url("/hook"), delay=60)
    http_client.cancel(job.id)
    notifier.run_once()
    assert handler_server.to("/hook")[0].json()["state"] == "cancelled"


def test_result_survives_a_zero_result_ttl(http_client, handler_server, run_worker, notifier, r):
    job = http_client.enqueue("tests.jobfuncs.add", 4, 4, callback_url=handler_server.url("/hook"), result_ttl=0)
    run_worker(**HTTP)
    assert not r.exists(f"rq:job:{job.id}")
    notifier.run_once()
    assert handler_server.to("/hook")[0].json()["result"] == 8


def test_failing_receiver_is_retried_then_given_up(http_client, handler_server, run_worker, notifier, r):
    job = http_client.enqueue("tests.jobfuncs.add", 1, 1, callback_url=handler_server.url("/hook-fail"))
    run_worker(**HTTP)
    results = [notifier.run_once() for _ in range(4)]
    assert [x.retried for x in results] == [1, 1, 0, 0]
    assert results[2].gave_up == 1
    assert len(handler_server.to("/hook-fail")) == 3
    assert r.hget(f"rq:job:{job.id}", "js_notify").decode().startswith("gave up after 3")
    assert r.zcard("jobsvc:notify") == 0


def test_a_taken_notification_is_not_sent_twice_while_leased(http_client, handler_server, run_worker, r,
                                                             http_config):
    http_client.enqueue("tests.jobfuncs.add", 1, 1, callback_url=handler_server.url("/hook-fail"))
    run_worker(**HTTP)
    first = Notifier(r, http_config, retry_base=600.0)
    second = Notifier(r, http_config, retry_base=600.0)
    assert first.run_once().retried == 1
    assert second.run_once().total == 0
