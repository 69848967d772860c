"""A worker SIGKILLed in the middle of a handler call: the job is called again (same idempotency key, next
attempt) by another worker, and its callback_url hears of the outcome once, from a real scheduler process."""
from __future__ import annotations

import os
import signal

import pytest

from jobsvc import State
from tests.conftest import HANDLER_SECRET, LEASE_ARGS, registered_workers, wait_for

pytestmark = pytest.mark.slow

ENV = {"JOBSVC_HANDLER_SECRET": HANDLER_SECRET, "JOBSVC_ALLOW_PRIVATE_URLS": "1"}


def test_killed_mid_call_handler_job_is_called_again_and_notified_once(procs, http_client, r, handler_server):
    first = procs.worker("worker1", *LEASE_ARGS, env=ENV)
    procs.scheduler(env=ENV)
    wait_for(lambda: registered_workers(r) == 1, 10, "the worker to register")
    job = http_client.enqueue_handler(handler_server.url("/hang-first"), {"n": 1}, idempotency_key="order-9",
                                      callback_url=handler_server.url("/hook")).id

    handler_server.wait_for("/hang-first", 1)
    os.killpg(first.pid, signal.SIGKILL)
    procs.worker("worker2", *LEASE_ARGS, env=ENV)

    wait_for(lambda: http_client.state(job) == State.COMPLETED, 20, "the second worker to complete the job")
    calls = handler_server.to("/hang-first")
    assert [c.headers["X-Jobsvc-Attempt"] for c in calls] == ["1", "2"]
    assert {c.headers["X-Jobsvc-Idempotency-Key"] for c in calls} == {"order-9"}
    assert [run["outcome"] for run in http_client.runs(job)] == ["lease_lost", "completed"]
    assert http_client.result(job) == {"second": True}

    (note,) = handler_server.wait_for("/hook", 1)
    assert note.json()["state"] == "completed" and note.json()["result"] == {"second": True}
    wait_for(lambda: r.hget(f"rq:job:{job}", "js_notify"), 10, "the delivery to be recorded")
    assert len(handler_server.to("/hook")) == 1
