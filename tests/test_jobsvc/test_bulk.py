"""Bulk and maintenance operations (jobsvc/admin/bulk/) against the real Redis: bulk retry, requeue of quarantined
jobs, prune, TTL sweep, integrity sweep, and the scheduler's TTL sweeper."""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import redis

from jobsvc import Client, Config, State, ValidationError
from jobsvc.admin.bulk import BulkFilter, bulk_retry, integrity_sweep, prune, requeue_quarantined, ttl_sweep
from jobsvc.engine import scripts
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases
from jobsvc.maintenance.reaper import Reaper
from jobsvc.maintenance.ttl_sweeper import TtlSweeper
from jobsvc.scheduling.promotion import Promoter
from tests.conftest import redis_ms, wait_for
from workers.scheduler import Scheduler

NOOP = "tests.jobfuncs.noop"
ADD = "tests.jobfuncs.add"
KEYS = Keys()


# -- helpers -------------------------------------------------------------------------------------------


def run_jobs(r, config, queue, n, finish):
    """Claim n jobs of a queue and finish each with `finish(leases, lease)` (a script call), 500 per round trip."""
    leases = Leases(r, config)
    ids = []
    while len(ids) < n:
        held = leases.claim_many([queue], "w", min(500, n - len(ids)))
        assert held, "nothing left to claim"
        for reply, lease in zip(scripts.call_many(r, [finish(leases, lease) for lease in held]), held, strict=True):
            scripts.check(reply[0] if isinstance(reply[0], list) else reply, lease.job_id)
        ids += [lease.job_id for lease in held]
    return ids


def enqueue(client, n, func=NOOP, **options):
    return [e.id for e in client.enqueue_many([client.job(func, **options) for _ in range(n)])]


def make_failed(client, r, n, queue="default", message="boom", exc_type="RuntimeError", **options):
    """n jobs that used up their only attempt (the fail.lua path a worker takes)."""
    ids = enqueue(client, n, queue=queue, max_attempts=1, **options)
    run_jobs(r, client.config, queue, n,
             lambda leases, lease: leases.fail_call(lease, exc_type, message, "Traceback ...", True, "w", 1.0, 2.0))
    return ids


def make_completed(client, r, n, queue="default", **options):
    ids = enqueue(client, n, queue=queue, **options)
    run_jobs(r, client.config, queue, n, lambda leases, lease: leases.complete_call(lease, 42, "w", 1.0, 2.0))
    return ids


def make_quarantined(client, r, n, queue="default"):
    """n jobs whose lease was lost once with max_lease_losses=1 (reap_expired.lua quarantines them)."""
    cfg = client.config.with_(max_lease_losses=1)
    ids = enqueue(client, n, queue=queue)
    leases = Leases(r, cfg)
    for _ in ids:
        lease = leases.claim([queue], "w")
        r.zadd(KEYS.leases, {lease.job_id: 0})  # its lease is long gone
    assert Reaper(r, cfg).run_once().quarantined == n
    return ids


def states_of(r, ids):
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(KEYS.job(job_id), "js_state")
    return [v.decode() if v else None for v in pipe.execute()]


def actual_counts(r):
    """Ground truth per group and state, from every job hash (test only: the product never scans)."""
    keys = list(r.scan_iter("rq:job:*", count=1000, _type="hash"))
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.hmget(k, "js_group", "js_state")
    counts = Counter()
    for group, state in pipe.execute():
        if group:
            counts[(group.decode(), state.decode())] += 1
    return counts


def gauge_counts(r):
    counts = Counter()
    for g in r.smembers(KEYS.groups):
        for state, n in r.hgetall(KEYS.count(g.decode())).items():
            if int(n):
                counts[(g.decode(), state.decode())] += int(n)
    return counts


def assert_gauges_match(r):
    assert gauge_counts(r) == actual_counts(r)


def snapshot(r):
    """Every key's serialized value: equal snapshots mean nothing was written."""
    return {k: r.dump(k) for k in r.scan_iter(count=1000)}


# -- bulk retry ----------------------------------------------------------------------------------------


def test_bulk_retry_of_10000_failed_jobs_queues_them_all_with_attempts_reset(client, r, config):
    ids = make_failed(client, r, 10_000)
    assert r.zcard(KEYS.failed("default")) == 10_000
    result = bulk_retry(r, config, BulkFilter())
    assert (result.matched, result.changed, result.skipped) == (10_000, 10_000, 0)
    assert set(states_of(r, ids)) == {"queued"}
    assert r.llen(KEYS.lane("default", 5)) == 10_000
    assert r.zcard(KEYS.failed("default")) == 0
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(KEYS.job(job_id), "js_attempts", "js_error", "status")
    assert {tuple(v) for v in pipe.execute()} == {(b"0", None, b"queued")}
    assert r.llen(KEYS.runs(ids[0])) == 1  # the failed attempt's history is kept
    assert r.ttl(KEYS.job(ids[0])) == -1  # its failure TTL no longer applies
    assert_gauges_match(r)


def test_bulk_retry_dry_run_changes_nothing(client, r, config):
    ids = make_failed(client, r, 30)
    before = snapshot(r)
    result = bulk_retry(r, config, BulkFilter(), dry_run=True)
    assert (result.dry_run, result.matched, result.changed) == (True, 30, 0)
    assert len(result.sample) == 20 and set(result.sample) <= set(ids)
    assert snapshot(r) == before


def test_bulk_retry_filter_by_namespace_selects_exactly_its_jobs(client, r, config):
    billing = make_failed(client, r, 5, namespace="billing")
    make_failed(client, r, 7, namespace="mail")
    result = bulk_retry(r, config, BulkFilter(namespace="billing"))
    assert result.changed == 5
    assert sorted(i for i, s in zip(billing, states_of(r, billing), strict=True) if s == "queued") == sorted(billing)
    assert r.zcard(KEYS.failed("default")) == 7
    assert_gauges_match(r)


def test_bulk_retry_filter_by_function_selects_exactly_its_jobs(client, r, config):
    ids = enqueue(client, 4, func=ADD, max_attempts=1) + enqueue(client, 6, func=NOOP, max_attempts=1)
    run_jobs(r, config, "default", 10, lambda leases, lease: leases.fail_call(lease, "E", "x", "", False, "w", 0, 0))
    result = bulk_retry(r, config, BulkFilter(function=ADD))
    assert result.changed == 4
    assert states_of(r, ids) == ["queued"] * 4 + ["failed"] * 6


def test_bulk_retry_filter_by_error_text_is_a_case_insensitive_substring(client, r, config):
    timeouts = make_failed(client, r, 3, message="Upstream TIMED OUT after 30s")
    make_failed(client, r, 4, message="bad input")
    result = bulk_retry(r, config, BulkFilter(error_contains="timed out"))
    assert (result.changed, sorted(result.sample)) == (3, sorted(timeouts))


def test_bulk_retry_filter_by_age_selects_older_or_newer_jobs(client, r, config):
    ids = make_failed(client, r, 10)
    old = ids[:4]
    now = redis_ms(r)
    for job_id in old:
        r.hset(KEYS.job(job_id), "js_ended_ms", now - 2 * 3600 * 1000)  # ended two hours ago
    assert sorted(bulk_retry(r, config, BulkFilter(older_than_s=3600), dry_run=True).sample) == sorted(old)
    assert sorted(bulk_retry(r, config, BulkFilter(newer_than_s=3600), dry_run=True).sample) == sorted(ids[4:])
    assert bulk_retry(r, config, BulkFilter(older_than_s=3600)).changed == 4
    assert states_of(r, ids) == ["queued"] * 4 + ["failed"] * 6


def test_bulk_retry_filter_by_queue_leaves_other_queues(client, r, config):
    make_failed(client, r, 3, queue="a")
    make_failed(client, r, 2, queue="b")
    assert bulk_retry(r, config, BulkFilter(queue="b")).changed == 2
    assert (r.zcard(KEYS.failed("a")), r.llen(KEYS.lane("b", 5))) == (3, 2)


def test_bulk_retry_keeps_each_jobs_priority_lane(client, r, config):
    ids = make_failed(client, r, 3, priority=2)
    bulk_retry(r, config, BulkFilter())
    assert sorted(r.lrange(KEYS.lane("default", 2), 0, -1)) == sorted(i.encode() for i in ids)
    assert r.sismember(KEYS.lanes("default"), 2)


def test_repeat_of_bulk_retry_changes_nothing(client, r, config):
    make_failed(client, r, 50)
    assert bulk_retry(r, config, BulkFilter()).changed == 50
    again = bulk_retry(r, config, BulkFilter())
    assert (again.matched, again.changed) == (0, 0)


def test_bulk_retry_does_not_chase_jobs_that_fail_again_meanwhile(client, r, config):
    make_failed(client, r, 10)
    calls = []

    def fail_them_again(done, total):
        # A fast worker fails every requeued job again before the next chunk is read.
        if not calls:
            run_jobs(r, config, "default", 2, lambda leases, lease: leases.fail_call(lease, "E", "x", "", False,
                                                                                   "w", 0, 0))
        calls.append(done)

    result = bulk_retry(r, config, BulkFilter(), progress=fail_them_again, chunk=5)
    assert result.changed == 10
    assert r.zcard(KEYS.failed("default")) == 2


def test_bulk_retry_skips_a_job_that_moved_on_after_its_id_was_read(client, r, config):
    ids = make_failed(client, r, 5)

    class Racing(redis.Redis):
        raced = False

        def zrange(self, *args, **kwargs):
            rows = super().zrange(*args, **kwargs)
            if rows and not Racing.raced and kwargs.get("withscores"):
                Racing.raced = True
                client.requeue(ids[0])  # someone else requeues it between the read and the script
            return rows

    racing = Racing(connection_pool=r.connection_pool)
    result = bulk_retry(racing, config, BulkFilter())
    assert (result.matched, result.changed, result.skipped) == (4, 4, 1)
    assert set(states_of(r, ids)) == {"queued"}
    assert r.llen(KEYS.lane("default", 5)) == 5  # the raced job is in its lane once, not twice
    assert_gauges_match(r)


def test_bulk_retry_rejects_a_state_it_cannot_retry(r, config):
    with pytest.raises(ValidationError):
        bulk_retry(r, config, BulkFilter(state="completed"))


def test_bulk_retry_of_cancelled_jobs_queues_them(client, r, config):
    ids = enqueue(client, 3, delay=600)
    for job_id in ids:
        client.cancel(job_id)
    assert bulk_retry(r, config, BulkFilter(state="cancelled")).changed == 3
    assert set(states_of(r, ids)) == {"queued"}
    assert r.zcard(Keys.canceled("default")) == 0
    assert_gauges_match(r)


def test_requeue_quarantined_requeues_only_quarantined_jobs(client, r, config):
    poison = make_quarantined(client, r, 3)
    failed = make_failed(client, r, 2)
    result = requeue_quarantined(r, config, BulkFilter())
    assert (result.operation, result.changed) == ("requeue_quarantined", 3)
    assert states_of(r, poison) == ["queued"] * 3 and states_of(r, failed) == ["failed"] * 2
    assert {r.hget(KEYS.job(i), "js_lease_losses") for i in poison} == {b"0"}
    assert_gauges_match(r)


def test_requeue_quarantined_rejects_another_state(r, config):
    with pytest.raises(ValidationError):
        requeue_quarantined(r, config, BulkFilter(state="failed"))


def test_progress_is_reported_after_each_chunk(client, r, config):
    make_failed(client, r, 25)
    seen = []
    bulk_retry(r, config, BulkFilter(), dry_run=True, chunk=10, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(10, 25), (20, 25), (25, 25)]


@pytest.mark.parametrize("flt", [BulkFilter(state="exploded"), BulkFilter(older_than_s=-1),
                                 BulkFilter(queue="no spaces"), BulkFilter(error_contains="")])
def test_bad_filter_is_rejected(r, config, flt):
    with pytest.raises(ValidationError):
        bulk_retry(r, config, flt, dry_run=True)


def test_chunk_over_500_is_rejected(r, config):
    with pytest.raises(ValidationError):
        bulk_retry(r, config, BulkFilter(), chunk=501)


# -- prune ---------------------------------------------------------------------------------------------


def test_prune_of_10000_completed_jobs_deletes_every_key_and_uncounts_gauges(client, r, config):
    ids = make_completed(client, r, 10_000)
    keep = enqueue(client, 3)  # live jobs stay
    before = r.dbsize()
    result = prune(r, config, BulkFilter(state="completed"))
    assert (result.matched, result.changed) == (10_000, 10_000)
    for job_id in ids[:50] + ids[-50:]:
        assert not r.exists(KEYS.job(job_id), KEYS.results(job_id), KEYS.runs(job_id))
    assert not list(r.scan_iter("rq:results:*"))
    assert r.dbsize() == before - 20_000 - 1  # hash + result stream per job, and the emptied registry
    assert r.zcard(KEYS.created("default")) == 3
    assert not r.exists(KEYS.finished("default"))
    assert set(states_of(r, keep)) == {"queued"}
    assert gauge_counts(r) == actual_counts(r) == Counter({(f"default|default|{NOOP}", "queued"): 3})


def test_prune_deletes_run_history_and_keeps_the_idempotency_key_for_its_ttl(client, r, config):
    job_id = client.enqueue(NOOP, max_attempts=1, idempotency_key="order-7").id
    run_jobs(r, config, "default", 1, lambda leases, lease: leases.fail_call(lease, "E", "x", "", False, "w", 0, 0))
    assert r.exists(KEYS.runs(job_id), KEYS.idempotency("default", "order-7")) == 2
    assert prune(r, config, BulkFilter()).changed == 1
    assert r.exists(KEYS.job(job_id), KEYS.results(job_id), KEYS.runs(job_id)) == 0
    assert r.get(KEYS.idempotency("default", "order-7")) == job_id.encode()  # a retried request is not run again


def test_prune_keeps_an_idempotency_key_that_points_to_another_job(client, r, config):
    job_id = make_failed(client, r, 1, idempotency_key="k")[0]
    r.set(KEYS.idempotency("default", "k"), "someone-else")
    prune(r, config, BulkFilter())
    assert not r.exists(KEYS.job(job_id))
    assert r.get(KEYS.idempotency("default", "k")) == b"someone-else"


def test_prune_defaults_to_every_terminal_state_but_quarantined_and_leaves_live_jobs(client, r, config):
    make_completed(client, r, 2)
    make_failed(client, r, 2)
    quarantined = make_quarantined(client, r, 2)
    cancelled = enqueue(client, 2, delay=600)
    for job_id in cancelled:
        client.cancel(job_id)
    live = enqueue(client, 2) + enqueue(client, 2, delay=600)
    assert prune(r, config, BulkFilter()).changed == 6
    assert set(states_of(r, live)) == {"queued", "scheduled"}
    assert set(states_of(r, quarantined)) == {"quarantined"}  # kept until named
    assert prune(r, config, BulkFilter(state=["quarantined", "failed"])).changed == 2
    assert len(list(r.scan_iter("rq:job:*"))) == 4
    assert_gauges_match(r)


def test_prune_filter_by_age_deletes_only_old_jobs(client, r, config):
    ids = make_completed(client, r, 6)
    for job_id in ids[:2]:
        r.hset(KEYS.job(job_id), "js_ended_ms", redis_ms(r) - 86_400_000)
    assert prune(r, config, BulkFilter(older_than_s=3600)).changed == 2
    assert [bool(r.exists(KEYS.job(i))) for i in ids] == [False] * 2 + [True] * 4


def test_prune_filters_by_namespace_function_and_error_together(client, r, config):
    target = make_failed(client, r, 2, namespace="billing", message="Card DECLINED")
    make_failed(client, r, 2, namespace="billing", message="timeout")
    make_failed(client, r, 2, namespace="mail", message="card declined")
    other_func = enqueue(client, 2, func=ADD, namespace="billing", max_attempts=1)
    run_jobs(r, config, "default", 2, lambda leases, lease: leases.fail_call(lease, "E", "card declined", "", False,
                                                                           "w", 0, 0))
    result = prune(r, config, BulkFilter(namespace="billing", function=NOOP, error_contains="card declined"))
    assert (result.changed, sorted(result.sample)) == (2, sorted(target))
    assert all(r.exists(KEYS.job(i)) for i in other_func)
    assert_gauges_match(r)


def test_repeat_of_prune_changes_nothing(client, r, config):
    make_completed(client, r, 20)
    assert prune(r, config, BulkFilter()).changed == 20
    assert prune(r, config, BulkFilter()).changed == 0


def test_prune_dry_run_changes_nothing(client, r, config):
    make_completed(client, r, 5)
    before = snapshot(r)
    assert prune(r, config, BulkFilter(), dry_run=True).matched == 5
    assert snapshot(r) == before


# -- TTL sweep -----------------------------------------------------------------------------------------


def expire(r, registry, ids):
    """Move ids' TTL end (their registry score, epoch seconds) into the past."""
    r.zadd(registry, {i: int(time.time()) - 10 for i in ids})


def test_ttl_sweep_deletes_exactly_the_expired_finished_jobs(client, r, config):
    ids = make_completed(client, r, 10)
    expired, kept = ids[:4], ids[4:]
    expire(r, KEYS.finished("default"), expired)
    result = ttl_sweep(r, config)
    assert (result.matched, result.changed, result.details["deleted"]) == (4, 4, 4)
    assert sorted(result.sample) == sorted(expired)
    assert not any(r.exists(KEYS.job(i), KEYS.results(i)) for i in expired)
    assert all(r.exists(KEYS.job(i), KEYS.results(i)) == 2 for i in kept)
    assert r.zcard(KEYS.finished("default")) == 6 and r.zcard(KEYS.created("default")) == 6
    assert_gauges_match(r)


def test_ttl_sweep_deletes_expired_failed_jobs(client, r, config):
    ids = make_failed(client, r, 3)
    expire(r, KEYS.failed("default"), ids[:1])
    assert ttl_sweep(r, config).details["deleted"] == 1
    assert states_of(r, ids) == [None, "failed", "failed"]
    assert not r.exists(KEYS.runs(ids[0]))
    assert_gauges_match(r)


def test_ttl_sweep_drops_registry_ids_whose_job_is_gone(r, config):
    r.sadd(KEYS.queues, "default")
    expire(r, KEYS.finished("default"), ["ghost"])
    r.zadd(KEYS.created("default"), {"ghost": 1})
    result = ttl_sweep(r, config)
    assert (result.details["deleted"], result.details["dropped"]) == (0, 1)
    assert not r.exists(KEYS.finished("default"), KEYS.created("default"))


def test_ttl_sweep_dry_run_counts_without_deleting(client, r, config):
    ids = make_completed(client, r, 3)
    expire(r, KEYS.finished("default"), ids[:2])
    result = ttl_sweep(r, config, dry_run=True)
    assert (result.matched, result.changed, sorted(result.sample)) == (2, 0, sorted(ids[:2]))
    assert all(r.exists(KEYS.job(i)) for i in ids)


def test_repeat_of_ttl_sweep_changes_nothing(client, r, config):
    ids = make_completed(client, r, 3)
    expire(r, KEYS.finished("default"), ids)
    assert ttl_sweep(r, config).changed == 3
    assert ttl_sweep(r, config).changed == 0


def test_ttl_sweeper_run_once_deletes_a_job_once_its_result_ttl_passed(client, r, config):
    job_id = make_completed(client, r, 1, result_ttl=1)[0]
    sweeper = TtlSweeper(r, config)
    assert sweeper.run_once().changed == 0
    wait_for(lambda: sweeper.run_once().changed, timeout=5, what="the result TTL to pass", interval=0.1)
    assert not r.exists(KEYS.job(job_id))
    assert_gauges_match(r)


def test_ttl_sweeper_pass_stops_at_its_limit_and_asks_for_more(client, r, config):
    ids = make_completed(client, r, 12)
    expire(r, KEYS.finished("default"), ids)
    sweeper = TtlSweeper(r, config, batch=5, max_jobs=10)
    first = sweeper.run_once()
    assert (first.changed, first.more) == (10, True)
    second = sweeper.run_once()
    assert (second.changed, second.more) == (2, False)


def test_ttl_sweep_that_stops_at_its_limit_with_nothing_left_asks_for_no_more(client, r, config):
    ids = make_completed(client, r, 4)
    expire(r, KEYS.finished("default"), ids)
    result = ttl_sweep(r, config, limit=4)
    assert (result.changed, result.more) == (4, False)


def make_cancelled(client, n, **options):
    ids = enqueue(client, n, **options)
    for job_id in ids:
        client.cancel(job_id)
    return ids


def test_ttl_sweep_deletes_cancelled_jobs_once_their_failure_ttl_passed(client, r, config):
    ids = make_cancelled(client, 3, failure_ttl=600, idempotency_key=None)
    now_s = redis_ms(r) // 1000
    assert all(now_s + 599 <= r.zscore(KEYS.canceled("default"), i) <= now_s + 601 for i in ids)
    assert ttl_sweep(r, config).changed == 0  # not yet
    expire(r, KEYS.canceled("default"), ids[:2])
    result = TtlSweeper(r, config).run_once()
    assert (result.details["deleted"], sorted(result.sample)) == (2, sorted(ids[:2]))
    assert states_of(r, ids) == [None, None, "cancelled"]
    assert r.zcard(KEYS.canceled("default")) == 1 and r.zcard(KEYS.created("default")) == 1
    assert_gauges_match(r)
    assert gauge_counts(r) == Counter({(f"default|default|{NOOP}", "cancelled"): 1})


def test_ttl_sweep_deletes_terminated_jobs_at_their_failure_ttl(client, r, config):
    job_id = client.enqueue(NOOP, failure_ttl=60).id
    Leases(r, config).claim(["default"], "w")
    client.terminate(job_id)
    assert r.zscore(KEYS.canceled("default"), job_id) >= redis_ms(r) // 1000 + 59
    assert r.ttl(KEYS.job(job_id)) == -1  # no Redis expiry: the sweep deletes it
    expire(r, KEYS.canceled("default"), [job_id])
    assert ttl_sweep(r, config).details["deleted"] == 1
    assert not r.exists(KEYS.job(job_id), KEYS.runs(job_id))
    assert_gauges_match(r)


def test_cancelled_jobs_kept_forever_or_until_the_next_sweep(client, r, config):
    kept = make_cancelled(client, 1, failure_ttl=-1)[0]
    brief = make_cancelled(client, 1, failure_ttl=0)[0]
    assert client.get(brief).state == State.CANCELLED  # the cancel still answers with the job
    assert r.zscore(KEYS.canceled("default"), kept) == float("inf") and r.ttl(KEYS.job(kept)) == -1
    assert ttl_sweep(r, config).details["deleted"] == 1
    assert states_of(r, [kept, brief]) == ["cancelled", None]
    assert_gauges_match(r)


def test_a_retried_cancelled_job_loses_its_ttl(client, r, config):
    job_id = make_cancelled(client, 1, failure_ttl=60)[0]
    client.requeue(job_id)
    assert r.ttl(KEYS.job(job_id)) == -1 and r.zscore(KEYS.canceled("default"), job_id) is None


def test_ttl_sweep_keeps_a_job_cancelled_by_plain_rq(client, r, config):
    from rq import Queue

    job = Queue("legacy", connection=r).enqueue(NOOP)
    job.cancel()
    result = ttl_sweep(r, config)  # RQ scored it with the cancel time: due at once, but RQ never expires it
    assert (result.details["deleted"], result.details["dropped"]) == (0, 1)
    assert r.exists(KEYS.job(job.id)) and r.zscore(KEYS.canceled("legacy"), job.id) == float("inf")
    assert ttl_sweep(r, config).changed == 0


def test_scheduler_pass_runs_the_ttl_sweep(client, r, config):
    ids = make_completed(client, r, 2)
    expire(r, KEYS.finished("default"), ids[:1])
    Scheduler(r, config).run_once()
    assert states_of(r, ids) == [None, "completed"]


# -- integrity sweep -----------------------------------------------------------------------------------


def sweep_finds(r, config, category):
    """Report-only sweep, then fix; returns the ids reported (the fixing sweep must report the same)."""
    before = snapshot(r)
    report = integrity_sweep(r, config)
    assert snapshot(r) == before, "a report-only sweep wrote something"
    fixed = integrity_sweep(r, config, fix=True)
    assert (fixed.counts, fixed.samples) == (report.counts, report.samples)
    assert {c: n for c, n in report.counts.items() if n} == {category: len(report.samples[category])}
    after = integrity_sweep(r, config)
    assert after.clean, after.counts
    return report.samples[category]


def test_integrity_sweep_of_consistent_data_finds_nothing(client, r, config):
    make_completed(client, r, 3)
    make_failed(client, r, 3)
    make_quarantined(client, r, 2)
    enqueue(client, 3, priority=1)
    enqueue(client, 2, delay=600)
    Leases(r, config).claim(["default"], "w")
    report = integrity_sweep(r, config)
    assert report.clean, report.counts
    assert report.scanned == 13


def test_integrity_sweep_removes_a_stale_lease(client, r, config):
    job_id = make_completed(client, r, 1)[0]
    r.zadd(KEYS.leases, {job_id: redis_ms(r) + 60_000})
    assert sweep_finds(r, config, "stale_lease") == [job_id]
    assert r.zscore(KEYS.leases, job_id) is None


def test_integrity_sweep_gives_a_running_job_its_lease_back(client, r, config):
    job_id = client.enqueue(NOOP).id
    lease = Leases(r, config).claim(["default"], "w")
    r.zrem(KEYS.leases, job_id)
    assert sweep_finds(r, config, "unleased_running") == [job_id]
    assert r.zscore(KEYS.leases, job_id) == lease.expires_ms


def test_integrity_sweep_keeps_a_job_in_the_registry_of_its_state_only(client, r, config):
    job_id = make_failed(client, r, 1)[0]
    r.zadd(KEYS.finished("default"), {job_id: time.time() + 500})
    assert sweep_finds(r, config, "wrong_structure") == [job_id]
    assert (r.zscore(KEYS.finished("default"), job_id), r.zscore(KEYS.failed("default"), job_id) is not None) == (
        None, True)


def test_integrity_sweep_removes_ids_with_no_hash(client, r, config):
    client.enqueue(NOOP)
    r.rpush(KEYS.lane("default", 5), "ghost-lane")
    r.zadd(KEYS.failed("default"), {"ghost-failed": 1})
    r.zadd(KEYS.scheduled, {"ghost-scheduled": 1})
    r.zadd(KEYS.created("default"), {"ghost-created": 1})
    r.zadd(KEYS.leases, {"ghost-lease": 1})
    assert sorted(sweep_finds(r, config, "missing_hash")) == [
        "ghost-created", "ghost-failed", "ghost-lane", "ghost-lease", "ghost-scheduled"]
    assert r.llen(KEYS.lane("default", 5)) == 1


def test_integrity_sweep_pushes_a_queued_job_back_onto_its_lane(client, r, config):
    job_id = client.enqueue(NOOP, priority=3).id
    r.delete(KEYS.lane("default", 3))
    assert sweep_finds(r, config, "orphan") == [job_id]
    assert Leases(r, config).claim(["default"], "w").job_id == job_id


def test_integrity_sweep_puts_a_scheduled_job_back_on_the_timeline(client, r, config):
    job_id = client.enqueue(NOOP, delay=600).id
    due = r.zscore(KEYS.scheduled, job_id)
    r.zrem(KEYS.scheduled, job_id)
    assert sweep_finds(r, config, "orphan") == [job_id]
    assert r.zscore(KEYS.scheduled, job_id) == due


def test_integrity_sweep_puts_a_cancelled_job_back_with_its_ttl_end(client, r, config):
    job_id = make_cancelled(client, 1, failure_ttl=600)[0]
    score = r.zscore(KEYS.canceled("default"), job_id)
    r.zrem(KEYS.canceled("default"), job_id)
    assert sweep_finds(r, config, "orphan") == [job_id]
    assert r.zscore(KEYS.canceled("default"), job_id) == score


def test_integrity_sweep_recounts_a_gauge_that_drifted(client, r, config):
    enqueue(client, 3)
    group = f"default|default|{NOOP}"
    r.hincrby(KEYS.count(group), "queued", 5)
    r.hincrby(KEYS.count(group), "running", -2)
    assert sweep_finds(r, config, "gauge_drift") == [group]
    assert_gauges_match(r)


def test_integrity_sweep_fix_leaves_nothing_for_a_second_sweep(client, r, config):
    done = make_completed(client, r, 2)
    failed = make_failed(client, r, 2)
    queued = enqueue(client, 2)
    delayed = enqueue(client, 1, delay=600)
    Leases(r, config).claim(["default"], "w")
    running = r.zrange(KEYS.leases, 0, -1)[0].decode()
    r.zadd(KEYS.leases, {done[0]: 1})  # stale lease
    r.zrem(KEYS.leases, running)  # running, unleased
    r.zadd(KEYS.finished("default"), {failed[0]: 1})  # in two registries
    r.rpush(KEYS.lane("default", 5), "ghost")  # no hash
    r.lrem(KEYS.lane("default", 5), 0, queued[-1])  # queued, in no lane
    r.zrem(KEYS.scheduled, delayed[0])  # scheduled, off the timeline
    r.zrem(KEYS.created("default"), done[1])  # not indexed
    r.hincrby(KEYS.count(f"default|default|{NOOP}"), "failed", 3)  # gauge drift
    report = integrity_sweep(r, config, fix=True)
    assert {c for c, n in report.counts.items() if n} == {
        "stale_lease", "unleased_running", "wrong_structure", "missing_hash", "orphan", "unindexed", "gauge_drift"}
    assert integrity_sweep(r, config).clean
    assert_gauges_match(r)


def test_integrity_sweep_report_only_does_not_call_a_correct_gauge_drifted(client, r, config):
    done = make_completed(client, r, 2)
    r.zrem(KEYS.created("default"), done[0])  # the recount reads the created index: this job is missing there
    report = integrity_sweep(r, config)
    assert (report.counts["unindexed"], report.counts["gauge_drift"]) == (1, 0)


def test_integrity_sweep_leaves_plain_rq_jobs_to_rq(client, r, config):
    from rq import Queue

    job = Queue("default", connection=r).enqueue(ADD, 1, 2)
    r.lrem("rq:queue:default", 0, job.id)  # whatever RQ does with its own job is RQ's business
    assert integrity_sweep(r, Config(redis_url=config.redis_url)).clean


def test_integrity_sweep_reports_nothing_while_jobs_move_on(client, r, config):
    enqueue(client, 300)
    stop = threading.Event()

    def traffic():
        conn = redis.Redis(connection_pool=r.connection_pool)
        leases, promoter, step = Leases(conn, config), Promoter(conn, config), 0
        while not stop.is_set():
            step += 1
            lease = leases.claim(["default"], "w")
            if lease and step % 3:
                leases.complete(lease, None, "w", 0.0, 0.0)
            elif lease:
                leases.fail(lease, RuntimeError("x"), retryable=True)
            Client(conn, config).enqueue(NOOP, delay=0.001 if step % 2 else None)
            promoter.run_once()

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        reports = [integrity_sweep(r, config, chunk=20) for _ in range(3)]
    finally:
        stop.set()
        worker.join()
    for report in reports:
        assert report.clean, report.samples
    assert integrity_sweep(r, config).clean
    assert_gauges_match(r)


def test_walk_by_score_gives_each_tied_member_once_while_the_cursor_member_leaves(r):
    from jobsvc.admin.bulk.integrity import _walk_by_score

    r.zadd("z", {f"m{i:04d}": 7 for i in range(1000)})
    r.zadd("z", {"a-first": 1, "z-last": 9})
    seen = []
    for page in _walk_by_score(r, "z", 64):
        seen += page
        r.zrem("z", page[-1])  # the cursor's own member is gone when the next page is read
    assert seen == ["a-first"] + [f"m{i:04d}" for i in range(1000)] + ["z-last"]
