"""The admin reads and bulk operations on a single Redis and on the suite's Redis Cluster (issue 15, docs/cluster.md
2.4), through test_core_both's parametrized fixture (six queues, two per shard on the cluster): a listing across
queues pages in one total order with a cursor that jobs enqueued meanwhile neither shift nor repeat, its every
filter, counts that add up to what it lists, the per-page work independent of the data stored; bulk retry, prune,
requeue of quarantined jobs, cancel-stale and the TTL sweep queue by queue, dry runs counting what the real run
changes; /metrics and the dashboard's per-minute series summing every queue."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
import redis

from jobsvc import Client
from jobsvc.admin import bulk, metrics, timeseries
from jobsvc.admin.listing import JobFilter, list_jobs, queue_exists
from jobsvc.engine.connection import redis_ms
from jobsvc.engine.leases import Leases
from jobsvc.engine.stats import read_counts
from jobsvc.errors import ValidationError
from jobsvc.maintenance.reaper import Reaper
from jobsvc.scheduling.promotion import Promoter
from tests.test_cluster import test_core_both
from tests.test_cluster.test_core_both import WORKER, Backend

backend = test_core_both.backend  # the parametrized fixture: a single Redis, the suite's cluster

NOOP = "tests.jobfuncs.noop"
ADD = "tests.jobfuncs.add"


def pages(backend: Backend, flt: JobFilter, limit: int, between=None) -> list[Any]:
    """Every job a listing gives, page by page (`between(page number)` runs after each page)."""
    out, cursor, n = [], None, 0
    while True:
        page, cursor = list_jobs(backend.conn, backend.config, flt, cursor, limit)
        out += page
        n += 1
        if between:
            between(n)
        if cursor is None:
            return out
        assert n < 500


def enqueue(backend: Backend, per_queue: int, func: str = NOOP, **options: Any) -> dict[str, list[str]]:
    """`per_queue` jobs in every queue, enqueued round robin over the queues: queue -> ids in enqueue order."""
    specs = [(q, Client.job(func, queue=q, **options)) for _ in range(per_queue) for q in backend.queues]
    got = backend.client().enqueue_many([spec for _, spec in specs])
    out: dict[str, list[str]] = {q: [] for q in backend.queues}
    for (q, _), e in zip(specs, got, strict=True):
        out[q].append(e.id)
    return out


def finish(backend: Backend, queue: str, n: int, outcome: str, **options: Any) -> list[str]:
    """n jobs of `queue` claimed and ended 'failed' (no attempt left) or 'completed' (priority 1: claimed before
    the queue's other jobs)."""
    ids = [e.id for e in backend.client().enqueue_many(
        [Client.job(NOOP, queue=queue, max_attempts=1, priority=1, **options) for _ in range(n)])]
    leases = backend.leases()
    for _ in ids:
        lease = leases.claim([queue], WORKER)
        assert lease is not None
        if outcome == "failed":
            assert leases.fail(lease, RuntimeError("boom"), worker=WORKER) == "failed"
        else:
            leases.complete(lease, None, WORKER, 1.0, 2.0)
    return ids


def past(backend: Backend, ms: int) -> None:
    """Return once Redis's clock is past `ms` (a cutoff of 'older than 0 s' then takes jobs created at `ms`)."""
    while redis_ms(backend.conn) <= ms:
        pass


# -- listing -----------------------------------------------------------------------------------------------------


def test_a_listing_of_every_queue_pages_newest_first_and_jobs_enqueued_meanwhile_never_shift_it(backend):
    ids = enqueue(backend, 12)
    listed = pages(backend, JobFilter(), 7, between=lambda _n: enqueue(backend, 1))
    assert sorted(j.id for j in listed) == sorted(i for q in ids.values() for i in q)  # each once, no newcomer
    created = [j.created_ms for j in listed]
    assert created == sorted(created, reverse=True)
    for q, q_ids in ids.items():  # within a queue: newest first
        assert [j.id for j in listed if j.queue == q] == q_ids[::-1]


def test_jobs_sharing_one_score_page_in_queue_then_id_order_without_a_repeat(backend):
    """The cursor is one position in (score, queue, id): every job created in the same millisecond, pages that
    end in the middle of a queue's ties, and jobs given the cursor's very score while paging."""
    ids = enqueue(backend, 5)
    for q, q_ids in ids.items():  # all at one score
        backend.conn.zadd(backend.key("created", q, q), dict.fromkeys(q_ids, 1000))

    def tie_newcomers(_n):
        for q, q_ids in enqueue(backend, 1).items():
            backend.conn.zadd(backend.key("created", q, q), dict.fromkeys(q_ids, 1000))

    listed = [j.id for j in pages(backend, JobFilter(), 4, between=tie_newcomers)]
    assert len(listed) == len(set(listed))
    assert set(listed) >= {i for q in ids.values() for i in q}
    if backend.cluster:  # ties in (queue, id) order, descending
        order = {i: (q, i) for q, q_ids in ids.items() for i in q_ids}
        first = [order[i] for i in listed if i in order]
        assert first == sorted(first, reverse=True)


def test_a_scheduled_listing_pages_earliest_first_and_earlier_newcomers_stay_out(backend):
    client, queues = backend.client(), backend.queues
    due = {client.enqueue(NOOP, queue=queues[i % 6], delay=100 + i).id: i for i in range(30)}
    listed = pages(backend, JobFilter(state="scheduled"), 4,
                   between=lambda n: client.enqueue(NOOP, queue=queues[n % 6], delay=50))  # before every cursor
    assert [j.id for j in listed] == sorted(due, key=due.__getitem__)


def test_every_filter_selects_exactly_its_jobs_and_the_counts_add_up(backend):
    client, q = backend.client(), backend.queues
    queued = enqueue(backend, 2)
    add1, add4 = client.enqueue(ADD, 1, 2, queue=q[1]).id, client.enqueue(ADD, 1, 2, queue=q[4]).id
    adds = {add1, add4}
    later = {client.enqueue(NOOP, queue=q[3], delay=60).id}
    failed = set(finish(backend, q[0], 2, "failed") + finish(backend, q[5], 1, "failed"))
    cutoff = max(j.created_ms for j in pages(backend, JobFilter(state="failed"), 50))
    past(backend, cutoff)  # the jobs below are created after it
    done = set(finish(backend, q[2], 3, "completed"))
    running = client.enqueue(NOOP, queue=q[1], priority=2).id
    lease = backend.leases().claim([q[1]], WORKER)
    assert lease is not None and lease.job_id == running
    everything = {i for ids in queued.values() for i in ids} | adds | later | failed | done | {running}

    def listed(**flt: Any) -> set[str]:
        got = [j.id for j in pages(backend, JobFilter(**flt), 3)]
        assert len(got) == len(set(got))
        return set(got)

    assert listed() == everything
    assert listed(state="queued") == {i for ids in queued.values() for i in ids} | adds
    assert listed(state="scheduled") == later
    assert listed(state="running") == {running}
    assert listed(state="failed") == failed
    assert listed(state="completed") == done
    assert listed(queue=q[1]) == set(queued[q[1]]) | {add1, running}
    assert listed(queue=q[4], state="queued") == set(queued[q[4]]) | {add4}
    assert listed(queue=q[0], state="failed") == failed & listed(queue=q[0]) and len(listed(queue=q[0])) == 4
    assert listed(function=ADD) == adds
    assert listed(trigger="delayed") == later
    assert listed(namespace="default") == everything
    assert listed(namespace="elsewhere") == set()
    assert listed(created_after_ms=cutoff + 1) == done | {running}
    assert listed(created_before_ms=cutoff) == everything - done - {running}
    counts = read_counts(backend.conn, client.keys)
    by_state = Counter(j.state.value for j in pages(backend, JobFilter(), 50))
    assert {s: n for s, n in counts.total().items() if n} == dict(by_state)
    assert counts.queues[q[0]]["failed"] == 2 and counts.queues[q[2]]["completed"] == 3
    assert queue_exists(backend.conn, backend.config, q[5]) and not queue_exists(backend.conn, backend.config, "nope")


def test_a_listing_of_one_queue_reads_that_queue_alone(backend):
    ids = enqueue(backend, 4)
    q = backend.queues[3]
    assert [j.id for j in pages(backend, JobFilter(queue=q), 3)] == ids[q][::-1]
    assert [j.id for j in pages(backend, JobFilter(queue=q, state="queued"), 3)] == ids[q]


# Not the listing's: the replicas' acknowledgements (REPLCONF ACK, each second, counted on their master), the
# cluster client's own (CLUSTER SLOTS when it relearns the slot map; COMMAND), and INFO, which counts itself once
# per master either way.
CLIENT_OWN = ("cmdstat_replconf", "cmdstat_cluster", "cmdstat_command", "cmdstat_info")


def commands(conn: Any) -> int:
    """Commands every master has run so far for its clients' work (INFO commandstats, summed)."""
    if isinstance(conn, redis.RedisCluster):
        per_node = conn.info("commandstats", target_nodes=redis.RedisCluster.PRIMARIES)
        stats = [s for node in per_node.values() for s in [node]]
    else:
        stats = [conn.info("commandstats")]
    return sum(v["calls"] for s in stats for k, v in s.items() if k.startswith("cmdstat_") and k not in CLIENT_OWN)


def page_cost(backend: Backend, flt: JobFilter) -> tuple[int, int]:
    """Commands run for a listing's first page and for its second (from the first's cursor)."""
    before = commands(backend.conn)
    _, cursor = list_jobs(backend.conn, backend.config, flt, None, 10)
    middle = commands(backend.conn)
    list_jobs(backend.conn, backend.config, flt, cursor, 10)
    return middle - before, commands(backend.conn) - middle


def distinct_scores(backend: Backend, ids: dict[str, list[str]], first: int) -> None:
    """Each job its own creation score. Why: on a single Redis, a page resumed in a queue that does not hold the
    cursor's job searches that queue's jobs of the cursor's very score (O(log ties), zpage_after.lua), and how
    many jobs an enqueue_many puts in one millisecond is up to the machine."""
    for i, (q, job_id) in enumerate((q, j) for q, q_ids in ids.items() for j in q_ids):
        backend.conn.zadd(backend.key("created", q, q), {job_id: first + i})


def test_the_work_of_a_page_does_not_grow_with_the_jobs_stored(backend):
    distinct_scores(backend, enqueue(backend, 20), 0)
    small = {s: page_cost(backend, JobFilter(state=s)) for s in (None, "queued")}
    distinct_scores(backend, enqueue(backend, 300), 1000)
    large = {s: page_cost(backend, JobFilter(state=s)) for s in (None, "queued")}
    assert large == small
    if backend.cluster:
        from jobsvc.admin import listing  # the entries a merged page reads: O(page + queues)

        read: list[int] = []
        original = listing._MergeSource._read

        def counted(self, todo, n):
            out = original(self, todo, n)
            read.append(sum(len(rows) for rows in out.values()))
            return out

        listing._MergeSource._read = counted  # type: ignore[method-assign]
        try:
            list_jobs(backend.conn, backend.config, JobFilter(), None, 10)
        finally:
            listing._MergeSource._read = original  # type: ignore[method-assign]
        batch = 50  # list_jobs reads candidates in batches of max(2 * limit, 50)
        assert sum(read) <= 2 * batch + 2 * len(backend.queues)


# -- bulk operations ---------------------------------------------------------------------------------------------


def test_bulk_retry_over_several_queues_counts_in_its_dry_run_what_it_then_requeues(backend):
    q = backend.queues
    failed = {qq: finish(backend, qq, n, "failed") for qq, n in ((q[4], 3), (q[1], 2), (q[2], 4), (q[0], 1))}
    everything = {i for ids in failed.values() for i in ids}
    dry = bulk.bulk_retry(backend.conn, backend.config, bulk.BulkFilter(), dry_run=True)
    assert (dry.matched, dry.changed) == (10, 0)
    assert set(dry.sample) == everything  # all ten: under SAMPLE_SIZE
    queue_of = {i: qq for qq, ids in failed.items() for i in ids}
    assert [queue_of[i] for i in dry.sample] == sorted(queue_of[i] for i in dry.sample)  # queue by queue, in order
    assert read_counts(backend.conn, backend.client().keys).total()["failed"] == 10
    real = bulk.bulk_retry(backend.conn, backend.config, bulk.BulkFilter())
    assert (real.matched, real.changed) == (dry.matched, dry.matched)
    assert set(real.sample) == set(dry.sample)
    counts = read_counts(backend.conn, backend.client().keys)
    assert (counts.total()["failed"], counts.total()["queued"]) == (0, 10)
    assert {j.id for j in pages(backend, JobFilter(state="queued"), 4)} == everything
    assert bulk.bulk_retry(backend.conn, backend.config, bulk.BulkFilter()).matched == 0  # nothing left to do


def test_bulk_retry_of_one_queue_leaves_the_others(backend):
    q = backend.queues
    mine, other = finish(backend, q[3], 2, "failed"), finish(backend, q[5], 2, "failed")
    result = bulk.bulk_retry(backend.conn, backend.config, bulk.BulkFilter(queue=q[3]), chunk=1)
    assert (result.matched, result.changed) == (2, 2)
    assert {j.id for j in pages(backend, JobFilter(state="failed"), 10)} == set(other)
    assert {j.id for j in pages(backend, JobFilter(state="queued"), 10)} == set(mine)


def test_prune_over_several_queues_deletes_what_its_dry_run_counted(backend):
    q = backend.queues
    done = finish(backend, q[0], 2, "completed") + finish(backend, q[3], 3, "completed")
    failed = finish(backend, q[5], 2, "failed")
    kept = enqueue(backend, 1)
    dry = bulk.prune(backend.conn, backend.config, bulk.BulkFilter(), dry_run=True, chunk=2)
    assert (dry.matched, dry.changed) == (7, 0)
    real = bulk.prune(backend.conn, backend.config, bulk.BulkFilter(), chunk=2)
    assert (real.matched, real.changed) == (7, 7)
    for job_id, queue in [(i, q[0]) for i in done[:2]] + [(i, q[3]) for i in done[2:]] + [(i, q[5]) for i in failed]:
        assert not backend.conn.exists(backend.key("job", queue, job_id))
    assert {j.id for j in pages(backend, JobFilter(), 10)} == {i for ids in kept.values() for i in ids}
    total = read_counts(backend.conn, backend.client().keys).total()
    assert (total["completed"], total["failed"], total["queued"]) == (0, 0, 6)


def test_requeue_quarantined_and_cancel_stale_walk_every_queue(backend):
    q, config = backend.queues, replace(backend.config, max_lease_losses=1)
    client, leases = Client(backend.conn, config), Leases(backend.conn, config)
    lost = [client.enqueue(NOOP, queue=qq).id for qq in (q[1], q[4])]
    for qq in (q[1], q[4]):  # a job quarantined in each of two queues: its lease lost once too often
        lease = leases.claim([qq], WORKER)
        assert lease is not None
        backend.conn.zadd(backend.key("leases", qq), {lease.job_id: 0})
    assert Reaper(backend.conn, config).run_once().quarantined == 2
    assert bulk.requeue_quarantined(backend.conn, config, bulk.BulkFilter(), dry_run=True).matched == 2
    assert bulk.requeue_quarantined(backend.conn, config, bulk.BulkFilter()).changed == 2
    running = client.enqueue(NOOP, queue=q[3]).id
    lease = leases.claim([q[3]], WORKER)
    assert lease is not None and lease.job_id == running
    past(backend, redis_ms(backend.conn))
    dry = bulk.cancel_stale(backend.conn, config, bulk.BulkFilter(), queued_for_s=0, running_for_s=0, dry_run=True)
    assert (dry.details, dry.changed) == ({"queued": 2, "running": 1}, 0)
    real = bulk.cancel_stale(backend.conn, config, bulk.BulkFilter(), queued_for_s=0, running_for_s=0)
    assert (real.details, real.changed) == (dry.details, 3)
    assert {j.id for j in pages(backend, JobFilter(state="cancelled"), 10)} == {*lost, running}


def test_the_ttl_sweep_deletes_the_expired_jobs_of_every_queue(backend):
    q = backend.queues
    done = {q[2]: finish(backend, q[2], 2, "completed"), q[5]: finish(backend, q[5], 1, "completed")}
    kept = finish(backend, q[0], 1, "completed")
    now_s = redis_ms(backend.conn) / 1000
    for queue, ids in done.items():
        backend.conn.zadd(backend.key("finished", queue, queue), dict.fromkeys(ids, now_s - 10))  # result TTL over
    assert bulk.ttl_sweep(backend.conn, backend.config, dry_run=True).matched == 3
    swept = bulk.ttl_sweep(backend.conn, backend.config, chunk=1)
    assert (swept.matched, swept.details["deleted"]) == (3, 3)
    assert not any(backend.conn.exists(backend.key("job", queue, i)) for queue, ids in done.items() for i in ids)
    assert [j.id for j in pages(backend, JobFilter(state="completed"), 10)] == kept


# -- /metrics and the dashboard's series -------------------------------------------------------------------------


def test_metrics_and_the_dashboard_series_sum_every_queue(backend):
    q, keys = backend.queues, backend.client().keys
    enqueue(backend, 2)
    finish(backend, q[1], 2, "completed")
    finish(backend, q[4], 1, "failed")
    late = backend.client().enqueue(NOOP, queue=q[2], delay=600).id
    backend.conn.zadd(backend.key("scheduled", q[2]), {late: 1})  # due long ago, not promoted yet
    snap = metrics.snapshot(backend.conn, keys)
    events: Counter[str] = Counter()
    for g in snap.groups:
        events.update(g.events)
    assert (events["enqueued"], events["completed"], events["failed"]) == (16, 2, 1)
    assert set(q) <= set(snap.queues) and snap.depth == dict.fromkeys(q, 2)
    assert all(snap.oldest_age_ms[qq] is not None for qq in q)
    assert snap.scheduler.overdue_ms > 0
    assert sum(g.states["completed"] for g in snap.groups) == 2
    assert Promoter(backend.conn, backend.config).run_once().promoted == 1
    after = metrics.snapshot(backend.conn, keys).scheduler
    assert after.overdue_ms == 0 and after.last_pass_ms is not None and after.lag_ms is not None
    now = redis_ms(backend.conn)
    rows = timeseries.per_minute(backend.conn, keys, minutes=5, now_ms=now)
    assert [sum(r[e] for r in rows) for e in ("enqueued", "completed", "failed")] == [16, 2, 1]
    one = timeseries.per_minute(backend.conn, keys, minutes=5, queue=q[1], now_ms=now)
    assert [sum(r[e] for r in one) for e in ("enqueued", "completed", "failed")] == [4, 2, 0]


# -- the integrity sweep -----------------------------------------------------------------------------------------


def test_the_integrity_sweep_finds_and_repairs_damage_in_every_queue(backend):
    q = backend.queues
    queued = enqueue(backend, 2)
    done = finish(backend, q[1], 2, "completed")
    failed = finish(backend, q[4], 1, "failed")
    running = backend.client().enqueue(NOOP, queue=q[3], priority=1).id
    assert backend.leases().claim([q[3]], WORKER) is not None
    assert bulk.integrity_sweep(backend.conn, backend.config).clean
    conn, key = backend.conn, backend.key
    conn.lrem(key("rq_queue", q[0], q[0]), 1, queued[q[0]][0])  # a queued job out of its lane
    conn.zrem(key("created", q[5], q[5]), queued[q[5]][1])  # a job out of its created index
    conn.delete(key("job", q[1], done[0]))  # a registry entry without its job
    conn.zrem(key("leases", q[3]), running)  # a running job without its lease
    conn.hincrby(key("count", q[4], f"{q[4]}|default|{NOOP}"), "failed", 3)  # a gauge off by 3
    report = bulk.integrity_sweep(conn, backend.config)
    assert {c: n for c, n in report.counts.items() if n} == {
        "orphan": 1, "unindexed": 1, "missing_hash": 1, "unleased_running": 1,
        "gauge_drift": 2}  # q4's, and q1's, which counts the job whose hash is gone
    assert report.samples["orphan"] == [queued[q[0]][0]] and report.samples["missing_hash"] == [done[0]]
    assert bulk.integrity_sweep(conn, backend.config, fix=True).total == 6
    assert bulk.integrity_sweep(conn, backend.config).clean
    assert read_counts(conn, backend.client().keys).queues[q[4]]["failed"] == len(failed)
    scoped = bulk.integrity_sweep(conn, backend.config, queue=q[2], namespace="default")
    assert scoped.clean and scoped.scanned > 0
    # A queue too big for one step is recounted in chunks, its gauge set by sweep_gauges.lua in its slot.
    conn.hincrby(key("count", q[4], f"{q[4]}|default|{NOOP}"), "failed", 2)
    walk = bulk.IntegrityWalk(conn, backend.config, fix=True, chunk=1, recount_max=0)
    for _ in walk.steps():
        pass
    assert walk.report.counts["gauge_drift"] == 1 and bulk.integrity_sweep(conn, backend.config).clean


def test_a_cursor_with_a_score_no_float_holds_is_a_validation_error(backend):
    """A cursor is the client's to send back: one whose score is an integer too large for a float (10**400) is
    refused as malformed (before: an OverflowError where the page is read, an HTTP 500)."""
    from jobsvc.admin import listing

    client = backend.client()
    for q in backend.queues:
        client.enqueue("tests.jobfuncs.add", 1, 2, queue=q)
    flt = listing.JobFilter().validated()
    pos = (10 ** 400, backend.queues[0], "x") if backend.cluster else (10 ** 400, "x")
    with pytest.raises(ValidationError, match="malformed cursor"):
        listing.list_jobs(backend.conn, backend.config, flt, listing._encode_cursor("created", flt, pos), 10)
