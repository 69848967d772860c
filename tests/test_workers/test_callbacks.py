"""Outcome notifications to a job's callback_url: signed, retried, at least once, never lost to the job's TTL."""
from __future__ import annotations

import pytest

from jobsvc.http import signing
from tests.conftest import HANDLER_SECRET
from workers.callbacks import Notifier

HTTP = {"handler_secret": HANDLER_SECRET, "allow_private_urls": True}


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
    assert body["namespace"] == "default" and req.headers["X-Jobsvc-Namespace"] == "default"


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
    result = notifier.run_once()  # retry_base 0: each retry is due at once, within the same pass
    assert (result.retried, result.gave_up, result.delivered) == (2, 1, 0)
    assert notifier.run_once().total == 0
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


def test_a_late_settle_does_not_touch_a_newer_notification(http_client, handler_server, run_worker, r, http_config):
    from jobsvc.engine import scripts
    from jobsvc.engine.replies import Reply

    job = http_client.enqueue("tests.jobfuncs.fatal", callback_url=handler_server.url("/hook"))
    run_worker(**HTTP)  # failed: its notification waits in the outbox
    old = scripts.call(r, "notify_claim", (), ("jobsvc:", 1, 60_000, "old-claim"))
    assert old[0].decode() == job.id
    http_client.requeue(job.id)
    run_worker(**HTTP)  # failed again: a newer notification replaces the taken one
    late = scripts.call(r, "notify_settle", (), ("jobsvc:", job.id, "old-claim", "delivered", 0, "late"))
    assert late == [Reply.LEASE_LOST]
    assert r.hexists(f"jobsvc:notify:{job.id}", "url") and r.zscore("jobsvc:notify", job.id) is not None


def test_a_trickling_receiver_is_cut_off_at_the_deadline(r, http_config, http_client, run_worker):
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def trickle():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b"x")
            except OSError:
                break
            stop.wait(0.2)
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    job_id = http_client.enqueue("tests.jobfuncs.add", 1, 1, callback_url=url).id
    run_worker(**HTTP)
    notifier = Notifier(r, http_config, deadline=1.0, retry_base=600.0)
    try:
        # The body would take 100,000 x 0.2 s: run_once returns only because the deadline cut it.
        assert notifier.run_once().retried == 1
    finally:
        stop.set()
        listener.close()
    assert "no complete answer within 1s" in r.hget(f"jobsvc:notify:{job_id}", "last_error").decode()


def test_a_stale_outbox_entry_does_not_end_the_pass(http_client, handler_server, run_worker, notifier, r):
    http_client.enqueue("tests.jobfuncs.add", 1, 1, callback_url=handler_server.url("/hook"))
    run_worker(**HTTP)
    r.zadd("jobsvc:notify", {"gone-job": 0})  # due first, and its notification hash is gone
    assert notifier.run_once().delivered == 1
    assert r.zscore("jobsvc:notify", "gone-job") is None
