from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import redis

from jobsvc import Client, State, ValidationError
from jobsvc.admin.bulk import BulkFilter, prune
from jobsvc.engine.client import Enqueued
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases
from jobsvc.maintenance.ttl_sweeper import TtlSweeper

NOOP = "tests.jobfuncs.noop"
KEYS = Keys()


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


def run_one(r, config, queue="default"):
    """Claim the next job and complete it, as a worker would."""
    leases = Leases(r, config)
    lease = leases.claim([queue], "w")
    leases.complete(lease, None, "w", 1.0, 2.0)
    return lease.job_id


def only_job_ids(r):
    return sorted(k.decode()[len("rq:job:"):] for k in r.scan_iter("rq:job:*"))


def test_idempotency_key_outlives_its_job_deleted_at_its_result_ttl(client, r, config):
    first = client.enqueue(NOOP, idempotency_key="invoice-7", result_ttl=1)
    run_one(r, config)
    r.zadd(KEYS.finished("default"), {first.id: 1})  # its result TTL ended long ago
    assert TtlSweeper(r, config).run_once().details["deleted"] == 1
    assert only_job_ids(r) == []
    again = client.enqueue(NOOP, idempotency_key="invoice-7")
    assert (again.id, again.created) == (first.id, False)  # the request was done: the job is simply gone
    assert only_job_ids(r) == [] and r.llen(KEYS.lane("default", 5)) == 0
    assert r.ttl(KEYS.idempotency("default", "invoice-7")) > config.idempotency_ttl - 60  # on its own TTL


def test_idempotency_key_outlives_a_job_with_result_ttl_0(client, r, config):
    first = client.enqueue(NOOP, idempotency_key="k0", result_ttl=0)
    run_one(r, config)
    assert only_job_ids(r) == []
    assert client.enqueue(NOOP, idempotency_key="k0") == Enqueued(first.id, False)
    assert only_job_ids(r) == []


def test_idempotency_key_outlives_a_pruned_job(client, r, config):
    first = client.enqueue(NOOP, idempotency_key="k1")
    run_one(r, config)
    assert prune(r, config, BulkFilter(state="completed")).changed == 1
    assert client.enqueue(NOOP, idempotency_key="k1") == Enqueued(first.id, False)
    assert only_job_ids(r) == []


def test_deleting_the_job_frees_its_idempotency_key(client, r, config):
    first = client.enqueue(NOOP, idempotency_key="k2")
    client.delete(first.id)
    assert not r.exists(KEYS.idempotency("default", "k2"))
    second = client.enqueue(NOOP, idempotency_key="k2")
    assert second.created and second.id != first.id
    assert client.get(second.id).state == State.QUEUED


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
    """One script call per 1,000 jobs, each sent as soon as it is built; no reply is awaited before the last is sent
    (so Python builds a chunk while Redis runs the one before)."""
    import redis.connection

    specs = [client.job("tests.jobfuncs.add", i, i) for i in range(2500)]
    events = []
    send, read = redis.connection.Connection.send_packed_command, redis.connection.Connection.read_response

    def sending(self, *a, **kw):
        events.append("send")
        return send(self, *a, **kw)

    def reading(self, *a, **kw):
        events.append("read")
        return read(self, *a, **kw)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", sending)
    monkeypatch.setattr(redis.connection.Connection, "read_response", reading)
    out = client.enqueue_many(specs)
    monkeypatch.undo()
    assert events == ["send"] * 3 + ["read"] * 3
    assert r.lrange("rq:queue:default", 0, -1) == [e.id.encode() for e in out]


def test_delay_as_timedelta_and_at_as_datetime(client):
    a = client.get(client.enqueue(NOOP, delay=timedelta(seconds=10)).id)
    at = datetime.now(timezone.utc) + timedelta(hours=1)
    b = client.get(client.enqueue(NOOP, at=at).id)
    assert a.due_ms - a.created_ms == 10_000
    assert (b.state, b.due_ms) == (State.SCHEDULED, round(at.timestamp() * 1000))


def test_options_are_stored_on_the_job(client):
    e = client.enqueue(NOOP, max_attempts=7, timeout=9, priority=2, backoff="linear")
    info = client.get(e.id)
    assert (info.max_attempts, info.timeout, info.priority, info.raw["js_backoff"]) == (7, 9, 2, "linear")


@pytest.mark.parametrize(("options", "message"), [
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


def test_idempotency_keys_are_scoped_to_a_namespace(client, r):
    """One namespace can neither take another's key (a squatter) nor be answered with another's job."""
    squatter = client.enqueue("tests.jobfuncs.add", 6, 6, namespace="team", idempotency_key="invoice-42")
    mine = client.enqueue("tests.jobfuncs.add", 1, 2, namespace="billing", idempotency_key="invoice-42")
    again = client.enqueue("tests.jobfuncs.add", 1, 2, namespace="billing", idempotency_key="invoice-42")
    assert squatter.created and mine.created and not again.created
    assert mine.id != squatter.id and again.id == mine.id
    assert client.get(mine.id).namespace == "billing"
    client.delete(mine.id)  # an explicit delete frees the namespace's key, not the other one's
    assert client.enqueue("tests.jobfuncs.noop", namespace="billing", idempotency_key="invoice-42").created
    assert not client.enqueue("tests.jobfuncs.noop", namespace="team", idempotency_key="invoice-42").created


def test_a_streamed_batch_reloads_the_scripts_after_a_script_flush(client, r):
    r.script_flush()  # as after a Redis restart: every chunk is answered NOSCRIPT, loaded, and sent again
    out = client.enqueue_many([client.job("tests.jobfuncs.add", i, i) for i in range(2500)])
    assert len(out) == 2500 and all(e.created for e in out)
    assert r.lrange("rq:queue:default", 0, -1) == [e.id.encode() for e in out]
