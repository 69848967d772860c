from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import redis

from jobsvc import Client, State, ValidationError
from jobsvc.leases import Leases

NOOP = "tests.jobfuncs.noop"


def claim_order(leases, queues, n):
    return [leases.claim(queues, "w").job_id for _ in range(n)]


def test_priority_is_strict_within_a_queue(client, r, config):
    ids = {p: client.enqueue(NOOP, priority=p).id for p in (7, 1, 10, 5, 3)}
    assert claim_order(Leases(r, config), ["default"], 5) == [ids[p] for p in (1, 3, 5, 7, 10)]


def test_same_priority_is_first_in_first_out(client, r, config):
    ids = [client.enqueue(NOOP, priority=2).id for _ in range(5)]
    assert claim_order(Leases(r, config), ["default"], 5) == ids


def test_queues_are_claimed_in_the_order_given(client, r, config):
    low = client.enqueue(NOOP, queue="low", priority=1).id
    high = client.enqueue(NOOP, queue="high", priority=9).id
    assert claim_order(Leases(r, config), ["high", "low"], 2) == [high, low]


def test_same_idempotency_key_returns_existing_job(client):
    a = client.enqueue(NOOP, idempotency_key="order-1")
    b = client.enqueue(NOOP, idempotency_key="order-1")
    assert (a.id, a.created, b.created) == (b.id, True, False)


def test_idempotency_under_50_concurrent_callers_gives_one_job(redis_url, r, config):
    barrier = threading.Barrier(50)
    results = []

    def call():
        c = Client(redis.Redis.from_url(redis_url), config)
        barrier.wait()
        results.append(c.enqueue(NOOP, idempotency_key="pay-42"))

    threads = [threading.Thread(target=call) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({e.id for e in results}) == 1
    assert sum(e.created for e in results) == 1
    assert r.llen("rq:queue:default") == 1


def test_batch_enqueue_is_one_round_trip_and_keeps_order(client, r, monkeypatch):
    import redis.connection

    specs = [client.job("tests.jobfuncs.add", i, i) for i in range(2500)]
    sends = []
    original = redis.connection.Connection.send_packed_command

    def counting(self, *a, **kw):
        sends.append(1)
        return original(self, *a, **kw)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    out = client.enqueue_many(specs)
    monkeypatch.undo()
    assert len(sends) == 1
    assert r.lrange("rq:queue:default", 0, -1) == [e.id.encode() for e in out]


def test_delay_as_timedelta_and_at_as_datetime(client):
    a = client.get(client.enqueue(NOOP, delay=timedelta(seconds=10)).id)
    at = datetime.now(timezone.utc) + timedelta(hours=1)
    b = client.get(client.enqueue(NOOP, at=at).id)
    assert a.due_ms - a.created_ms == 10_000
    assert (b.state, b.due_ms) == (State.SCHEDULED, int(round(at.timestamp() * 1000)))


def test_options_are_stored_on_the_job(client):
    e = client.enqueue(NOOP, max_attempts=7, timeout=9, priority=2, backoff="linear")
    info = client.get(e.id)
    assert (info.max_attempts, info.timeout, info.priority, info.raw["js_backoff"]) == (7, 9, 2, "linear")


@pytest.mark.parametrize("options,message", [
    ({"priority": 0}, "priority"), ({"priority": 11}, "priority"), ({"max_attempts": 21}, "max_attempts"),
    ({"max_attempts": 0}, "max_attempts"), ({"backoff": "random"}, "backoff"), ({"queue": "a b"}, "queue"),
    ({"delay": -1}, "delay"), ({"timeout": 0}, "timeout"), ({"delay": 1, "at": 5.0}, "delay or at"),
    ({"idempotency_key": "x" * 300}, "idempotency_key"), ({"color": "red"}, "unknown job option"),
])
def test_bad_options_are_rejected_and_nothing_is_written(client, r, options, message):
    with pytest.raises(ValidationError, match=message):
        client.enqueue(NOOP, **options)
    assert r.dbsize() == 0


def test_lambda_is_rejected_with_a_clear_error(client):
    with pytest.raises(ValueError, match="not importable"):
        client.enqueue(lambda: None)


def test_job_kwargs_go_through_kwargs(client):
    e = client.enqueue("tests.jobfuncs.echo", 1, kwargs={"queue": "not-an-option"})
    info = client.get(e.id)
    assert (info.queue, info.args, info.kwargs) == ("default", (1,), {"queue": "not-an-option"})


def test_small_payload_is_stored_uncompressed_and_large_one_compressed(client, r):
    import zlib

    from rq.job import Job as RQJob

    small = client.enqueue("tests.jobfuncs.echo", "x")
    large = client.enqueue("tests.jobfuncs.echo", "y" * 5000)
    assert r.hget(f"rq:job:{small.id}", "data")[:1] == b"\x80"
    zlib.decompress(r.hget(f"rq:job:{large.id}", "data"))
    for e, arg in ((small, "x"), (large, "y" * 5000)):
        assert RQJob.fetch(e.id, connection=r).args == (arg,)  # RQ reads both forms


def test_explicit_job_id_never_overwrites_an_existing_job(client):
    first = client.enqueue("tests.jobfuncs.add", 1, 2, job_id="report-2026-11")
    second = client.enqueue("tests.jobfuncs.add", 9, 9, job_id="report-2026-11")
    assert (first.created, second.created, second.id) == (True, False, "report-2026-11")
    assert client.get("report-2026-11").args == (1, 2)
