"""HTTP handler jobs run by a real worker against a real local HTTP server."""
from __future__ import annotations

import socket

import pytest

from jobsvc.engine.states import State
from jobsvc.errors import LeaseLost, ValidationError
from jobsvc.http import pull, signing
from jobsvc.maintenance.reaper import Reaper
from tests.conftest import HANDLER_SECRET, redis_ms, wait_for

HTTP = {"handler_secret": HANDLER_SECRET, "allow_private_urls": True}


def runs(http_client, job_id):
    return http_client.runs(job_id)


def test_2xx_completes_with_the_json_body_as_result(http_client, handler_server, run_worker):
    job = http_client.enqueue_handler(handler_server.url("/ok"), {"to": "ada"})
    run_worker(**HTTP)
    info = http_client.get(job.id)
    assert info.state == State.COMPLETED
    assert http_client.result(job.id) == {"echo": {"job_id": job.id, "attempt": 1, "namespace": "default",
                                                   "idempotency_key": job.id, "payload": {"to": "ada"}}}


def test_request_is_signed_and_carries_job_id_attempt_and_idempotency_key(http_client, handler_server, run_worker):
    job = http_client.enqueue_handler(handler_server.url("/ok"), [1, 2], idempotency_key="order-7")
    run_worker(**HTTP)
    req = handler_server.to("/ok")[0]
    assert signing.verify(HANDLER_SECRET, req.body, req.headers[signing.SIGNATURE_HEADER])
    assert not signing.verify("another-secret", req.body, req.headers[signing.SIGNATURE_HEADER])
    assert req.headers[signing.JOB_ID_HEADER] == job.id
    assert req.headers[signing.ATTEMPT_HEADER] == "1"
    assert req.headers[signing.IDEMPOTENCY_KEY_HEADER] == "order-7"
    assert req.json() == {"job_id": job.id, "attempt": 1, "namespace": "default", "idempotency_key": "order-7",
                          "payload": [1, 2]}


def test_run_records_handler_status_and_duration(http_client, handler_server, run_worker):
    job = http_client.enqueue_handler(handler_server.url("/text"))
    run_worker(**HTTP)
    (run,) = runs(http_client, job.id)
    assert run["outcome"] == "completed"
    assert run["http_status"] == 200
    assert run["duration_ms"] >= 0
    assert http_client.result(job.id) == "hello"


def test_big_body_is_capped(http_client, handler_server, run_worker):
    job = http_client.enqueue_handler(handler_server.url("/big"))
    run_worker(**HTTP)
    result = http_client.result(job.id)
    assert len(result) == 64 * 1024
    assert runs(http_client, job.id)[0]["result_truncated"] is True


def test_4xx_fails_at_once_without_retry(http_client, handler_server, run_worker):
    job = http_client.enqueue_handler(handler_server.url("/reject"), max_attempts=5)
    run_worker(**HTTP)
    info = http_client.get(job.id)
    assert info.state == State.FAILED
    assert info.attempts == 1
    (run,) = runs(http_client, job.id)
    assert run["http_status"] == 400 and run["exc_type"] == "HandlerRejected"
    assert "bad payload" in run["message"]


@pytest.mark.parametrize(("path", "exc_type"), [("/error", "HandlerHTTPError"),
                                                ("/request-timeout", "HandlerHTTPError"),
                                                ("/slow?t=3", "HandlerTimeout")])
def test_5xx_408_and_timeout_are_retried_with_backoff(http_client, handler_server, run_worker, path, exc_type):
    job = http_client.enqueue_handler(handler_server.url(path), timeout=1, max_attempts=3)
    run_worker(**HTTP)
    info = http_client.get(job.id)
    assert info.state == State.SCHEDULED
    assert runs(http_client, job.id)[0]["exc_type"] == exc_type


def test_connection_refused_is_retried(http_client, run_worker):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    job = http_client.enqueue_handler(f"http://127.0.0.1:{port}/x", max_attempts=2)
    run_worker(**HTTP)
    assert http_client.get(job.id).state == State.SCHEDULED
    assert runs(http_client, job.id)[0]["http_status"] is None


def test_429_honours_retry_after(http_client, handler_server, run_worker, r):
    from jobsvc.engine.backoff import Backoff

    job = http_client.enqueue_handler(handler_server.url("/busy?after=120"), backoff=Backoff("fixed", 0.01, 0.01))
    before = redis_ms(r)
    run_worker(**HTTP)
    info = http_client.get(job.id)
    assert info.state == State.SCHEDULED
    assert info.due_ms >= before + 120_000
    assert runs(http_client, job.id)[0]["http_status"] == 429


def test_redirect_is_not_followed_and_fails(http_client, handler_server, run_worker):
    job = http_client.enqueue_handler(handler_server.url("/redirect"))
    run_worker(**HTTP)
    assert http_client.get(job.id).state == State.FAILED
    assert handler_server.to("/ok") == []


def test_202_keeps_the_job_running_until_the_callback(http_client, handler_server, run_worker, r, http_config):
    job = http_client.enqueue_handler(handler_server.url("/accept"), {"n": 1}, callback_timeout=600)
    before = redis_ms(r)
    run_worker(**HTTP)
    info = http_client.get(job.id)
    assert info.state == State.RUNNING
    assert info.lease_expires_ms >= before + 600_000
    assert runs(http_client, job.id)[0]["outcome"] == "accepted"
    token = handler_server.to("/accept")[0].headers["X-Jobsvc-Token"]
    pull.ack(r, http_config, job.id, token, "completed", result={"done": True})
    assert http_client.get(job.id).state == State.COMPLETED
    assert http_client.result(job.id) == {"done": True}


def test_202_without_callback_is_retried_when_its_lease_ends(http_client, handler_server, run_worker, r,
                                                              http_config):
    job = http_client.enqueue_handler(handler_server.url("/accept"), callback_timeout=1, max_attempts=3)
    run_worker(**HTTP)
    token = handler_server.to("/accept")[0].headers["X-Jobsvc-Token"]
    reaper = Reaper(r, http_config)
    wait_for(lambda: reaper.run_once().total, timeout=10, what="callback lease to expire")
    info = http_client.get(job.id)
    assert info.state == State.QUEUED and info.attempts == 1 and info.lease_losses == 1
    with pytest.raises(LeaseLost):
        pull.ack(r, http_config, job.id, token, "completed", result="late")
    assert http_client.get(job.id).state == State.QUEUED


def test_worker_without_secret_refuses_to_send(http_client, handler_server, run_worker):
    job = http_client.enqueue_handler(handler_server.url("/ok"))
    run_worker(allow_private_urls=True)
    info = http_client.get(job.id)
    assert info.state == State.FAILED
    assert "JOBSVC_HANDLER_SECRET" in info.error
    assert handler_server.to("/ok") == []


def test_loopback_handler_is_refused_at_send_without_the_dev_setting(http_client, handler_server, run_worker):
    job = http_client.enqueue_handler(handler_server.url("/ok"))  # saved by a client allowed private URLs
    run_worker(handler_secret=HANDLER_SECRET)
    info = http_client.get(job.id)
    assert info.state == State.FAILED
    assert info.error.startswith("UnsafeURL")
    assert handler_server.to("/ok") == []


def test_dns_rebinding_is_refused_at_send(client, handler_server, run_worker, monkeypatch):
    real = socket.getaddrinfo
    answers = {"hooks.example.com": "93.184.216.34"}

    def fake(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port or 443))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    job = client.enqueue_handler("https://hooks.example.com/run")  # public when saved
    answers["hooks.example.com"] = "127.0.0.1"  # and loopback when sent
    run_worker(handler_secret=HANDLER_SECRET)
    info = client.get(job.id)
    assert info.state == State.FAILED
    assert info.error.startswith("UnsafeURL")


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "https://10.0.0.1/x", "https://169.254.169.254/latest",
                                 "https://[::1]/x", "ftp://example.com/x"])
def test_unsafe_handler_url_is_refused_when_saved(client, url, r):
    with pytest.raises(ValidationError):
        client.enqueue_handler(url)
    with pytest.raises(ValidationError):
        client.enqueue("tests.jobfuncs.noop", callback_url=url)
    assert r.dbsize() == 0


def test_metadata_address_is_refused_even_with_the_dev_setting(http_client):
    with pytest.raises(ValidationError):
        http_client.enqueue_handler("http://169.254.169.254/latest/meta-data")


def test_handler_job_takes_no_args_and_a_short_timeout(http_client, handler_server):
    from jobsvc import Client

    with pytest.raises(ValidationError):
        http_client.enqueue_many([Client.handler_job(handler_server.url("/ok"), timeout=60)])
    with pytest.raises(ValidationError):
        http_client.enqueue_many([Client.handler_job(handler_server.url("/ok"), payload=float("nan"))])


@pytest.mark.parametrize(("value", "expected"), [("5", 5.0), ("0", 0.0), ("999999", 3600.0), (None, None),
                                                 ("soon", None),
                                                 ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
                                                 ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0)])
def test_retry_after_reads_seconds_or_an_http_date_and_is_capped(value, expected):
    from datetime import datetime, timezone

    from workers.http_handler import retry_after

    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=timezone.utc).timestamp()
    assert retry_after(value, now=now) == expected


def test_heartbeat_of_an_accepted_job_extends_by_its_callback_timeout(http_client, handler_server, run_worker, r,
                                                                      http_config):
    job = http_client.enqueue_handler(handler_server.url("/accept"), callback_timeout=5000)
    run_worker(**HTTP)
    token = handler_server.to("/accept")[0].headers["X-Jobsvc-Token"]
    before = redis_ms(r)
    assert pull.heartbeat(r, http_config, job.id, token) >= before + 5_000_000
    assert pull.heartbeat(r, http_config, job.id, token, 60) < before + 61_000


def test_worker_heartbeat_cannot_shrink_a_callback_lease(http_client, handler_server, r, http_config):
    from jobsvc.engine import scripts
    from jobsvc.engine.leases import Leases

    job = http_client.enqueue_handler(handler_server.url("/accept"), callback_timeout=600)
    leases = Leases(r, http_config)
    lease = leases.claim(["default"], "w1")
    scripts.check(scripts.call(r, *leases.await_callback_call(lease, "w1", {"http_status": 202})))
    handed_over = r.zscore("jobsvc:leases", job.id)
    assert leases.renew([lease], holder="w1") == [job.id]  # a beat racing the hand-over
    assert r.zscore("jobsvc:leases", job.id) == handed_over


def test_a_callback_completed_job_takes_its_run_history_with_it(http_client, handler_server, run_worker, r,
                                                                 http_config):
    job = http_client.enqueue_handler(handler_server.url("/accept"), result_ttl=0)
    run_worker(**HTTP)
    token = handler_server.to("/accept")[0].headers["X-Jobsvc-Token"]
    pull.ack(r, http_config, job.id, token, "completed")
    assert not r.exists(f"rq:job:{job.id}") and not r.exists(f"jobsvc:runs:{job.id}")


def test_each_namespace_signs_with_its_own_secret(http_client, handler_server, run_worker):
    http_client.enqueue_handler(handler_server.url("/ok"), namespace="billing")
    http_client.enqueue_handler(handler_server.url("/ok"), namespace="reports")
    run_worker(handler_secret=HANDLER_SECRET, handler_secrets="billing=billing-secret", allow_private_urls=True)
    by_ns = {req.json()["namespace"]: req for req in handler_server.to("/ok")}
    billing, reports = by_ns["billing"], by_ns["reports"]
    assert billing.headers["X-Jobsvc-Namespace"] == "billing"
    assert signing.verify("billing-secret", billing.body, billing.headers[signing.SIGNATURE_HEADER])
    assert not signing.verify(HANDLER_SECRET, billing.body, billing.headers[signing.SIGNATURE_HEADER])
    assert signing.verify(HANDLER_SECRET, reports.body, reports.headers[signing.SIGNATURE_HEADER])


def test_malformed_namespace_secrets_are_refused_at_start():
    from jobsvc.config import Config

    with pytest.raises(ValidationError):
        Config(handler_secrets="billing")
