"""Listing jobs: filters, cursor pages, and stability while jobs arrive and leave."""
from __future__ import annotations

import math
import os
import time

import pytest

from jobsvc import ValidationError
from jobsvc.admin.listing import JobFilter, list_jobs
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases

NOOP = "tests.jobfuncs.noop"


def all_pages(r, config, flt, limit, between=None):
    ids, cursor, pages = [], None, 0
    while True:
        page, cursor = list_jobs(r, config, flt, cursor, limit)
        ids += [j.id for j in page]
        pages += 1
        if between:
            between(pages)
        if cursor is None:
            return ids
        assert pages < 1000


def test_unfiltered_listing_is_newest_first_in_pages(client, r, config):
    created = [e.id for e in client.enqueue_many([client.job(NOOP) for _ in range(120)])]
    assert all_pages(r, config, JobFilter(), 50) == created[::-1]


def test_pages_neither_skip_nor_repeat_while_jobs_arrive(client, r, config):
    created = [e.id for e in client.enqueue_many([client.job(NOOP) for _ in range(100)])]
    arrivals = lambda _page: client.enqueue_many([client.job(NOOP) for _ in range(30)])  # noqa: E731
    assert all_pages(r, config, JobFilter(), 20, between=arrivals) == created[::-1]


def test_queued_listing_follows_priority_then_fifo(client, r, config):
    low = [client.enqueue(NOOP, priority=8).id for _ in range(3)]
    high = [client.enqueue(NOOP, priority=2).id for _ in range(3)]
    mid = [client.enqueue(NOOP).id for _ in range(3)]
    assert all_pages(r, config, JobFilter(state="queued"), 2) == high + mid + low


def test_queued_pages_neither_skip_nor_repeat_while_workers_claim(client, r, config):
    created = [e.id for e in client.enqueue_many([client.job(NOOP) for _ in range(60)])]
    leases = Leases(r, config)
    claimed: list[str] = []

    def claim_some(_page):
        for _ in range(7):
            lease = leases.claim(["default"], "w")
            if lease:
                claimed.append(lease.job_id)

    listed = all_pages(r, config, JobFilter(state="queued"), 10, between=claim_some)
    assert len(listed) == len(set(listed))
    assert set(listed) | set(claimed) == set(created)


def test_state_filters_read_their_own_structure(client, r, config):
    leases = Leases(r, config)
    queued = client.enqueue(NOOP).id
    later = client.enqueue(NOOP, delay=60).id
    running = client.enqueue(NOOP).id
    failed = client.enqueue(NOOP, max_attempts=1).id
    done = client.enqueue(NOOP).id
    r.lrem("rq:queue:default", 1, queued)
    r.rpush("rq:queue:default", queued)  # claim running, failed, done first
    leases.claim(["default"], "w")
    leases.fail(leases.claim(["default"], "w"), RuntimeError("x"), "")
    leases.complete(leases.claim(["default"], "w"), None, "w", 1.0, 2.0)
    expect = {"queued": [queued], "scheduled": [later], "running": [running], "failed": [failed],
              "completed": [done], "waiting": [queued], "delayed": [later], "active": [running]}
    for state, ids in expect.items():
        assert [j.id for j in list_jobs(r, config, JobFilter(state=state))[0]] == ids, state


def test_function_namespace_and_trigger_filters(client, r, config):
    a = client.enqueue("tests.jobfuncs.add", 1, 2, namespace="billing").id
    client.enqueue(NOOP, namespace="billing")
    c = client.enqueue(NOOP, delay=30).id
    assert [j.id for j in list_jobs(r, config, JobFilter(function="tests.jobfuncs.add"))[0]] == [a]
    assert len(list_jobs(r, config, JobFilter(namespace="billing"))[0]) == 2
    assert [j.id for j in list_jobs(r, config, JobFilter(trigger="delayed"))[0]] == [c]


def test_created_time_window(client, r, config):
    client.enqueue(NOOP)
    middle = client.get(client.enqueue(NOOP).id)
    client.enqueue(NOOP)
    page, _ = list_jobs(r, config, JobFilter(created_after_ms=middle.created_ms, created_before_ms=middle.created_ms))
    assert middle.id in [j.id for j in page]
    assert {j.created_ms for j in page} == {middle.created_ms}  # nothing outside the window


def test_queue_filter(client, r, config):
    a = client.enqueue(NOOP, queue="a").id
    client.enqueue(NOOP, queue="b")
    assert [j.id for j in list_jobs(r, config, JobFilter(queue="a"))[0]] == [a]


def test_sparse_filter_returns_a_short_page_and_a_cursor(client, r, config, monkeypatch):
    from jobsvc import defaults

    monkeypatch.setattr(defaults, "LIST_SCAN_BUDGET", 100)
    client.enqueue_many([client.job(NOOP) for _ in range(250)])
    page, cursor = list_jobs(r, config, JobFilter(function="tests.jobfuncs.add"), None, 10)
    assert page == [] and cursor is not None
    page, cursor = list_jobs(r, config, JobFilter(function="tests.jobfuncs.add"), cursor, 10)
    assert page == [] and cursor is not None
    page, cursor = list_jobs(r, config, JobFilter(function="tests.jobfuncs.add"), cursor, 10)
    assert page == [] and cursor is None


def test_malformed_cursor_is_rejected(r, config):
    with pytest.raises(ValidationError, match="cursor"):
        list_jobs(r, config, JobFilter(), "not-a-cursor")


def test_cursor_of_other_filters_is_rejected(client, r, config):
    client.enqueue_many([client.job(NOOP) for _ in range(3)])
    _, cursor = list_jobs(r, config, JobFilter(), None, 1)
    with pytest.raises(ValidationError, match="another listing"):
        list_jobs(r, config, JobFilter(namespace="x"), cursor, 1)


@pytest.mark.parametrize(("flt", "limit"), [(JobFilter(), 0), (JobFilter(), 501), (JobFilter(state="exploded"), 10),
                                            (JobFilter(queue="bad queue"), 10), (JobFilter(trigger="cron"), 10)])
def test_bad_filters_are_rejected(r, config, flt, limit):
    with pytest.raises(ValidationError):
        list_jobs(r, config, flt, None, limit)


@pytest.mark.parametrize(("state", "pos"), [(None, ["x", "y"]), (None, [1.0]), (None, [float("nan"), "a"]),
                                            ("queued", [1, 2, 3]), ("queued", ["default", "5", "a"]),
                                            ("queued", ["bad queue", 5, "a"]), (None, "notalist")])
def test_cursor_of_the_right_listing_but_malformed_position_is_rejected(r, config, state, pos):
    import base64
    import json

    from jobsvc.admin.listing import _encode_cursor

    flt = JobFilter(state=state)
    kind = "queued" if state else "created"
    raw = _encode_cursor(kind, flt, ())
    data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    data["p"] = pos
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    with pytest.raises(ValidationError, match="malformed cursor"):
        list_jobs(r, config, flt, forged, 10)


# -- pages over many jobs sharing one score: bounded cost, nothing skipped or repeated ---------------------

TIES = 2_000


def commands_during(r, action):
    """Each command Redis ran while `action` ran, as a list of words: MONITOR shows the commands scripts call
    too. Read up to a marker sent afterwards, so no sleep is needed."""
    marker = f"end-of-action-{os.urandom(4).hex()}"
    with r.monitor() as mon:
        action()
        r.echo(marker)
        out = []
        while True:
            words = mon.next_command()["command"].split()
            if marker in words:
                return out
            out.append(words)


def span(words):
    """Members a sorted-set range command walks past: its rank span, or LIMIT offset + count; a score range
    without LIMIT is unbounded (every member in it)."""
    name, args = words[0].upper(), [w.upper() for w in words[1:]]
    if name in ("ZRANGE", "ZREVRANGE") and "BYSCORE" not in args and "BYLEX" not in args:
        return int(words[3]) - int(words[2]) + 1
    if name in ("ZRANGE", "ZREVRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE"):
        if "LIMIT" not in args:
            return math.inf
        at = args.index("LIMIT") + 1
        return int(args[at]) + int(args[at + 1])
    return 0


def tied_scheduled_jobs(client, n, job_ids=None):
    """n jobs of queue default due at one and the same millisecond (an hour from now)."""
    due = DUE_AT
    ids = job_ids or [None] * n
    return [e.id for e in client.enqueue_many([client.job(NOOP, at=due, job_id=i) for i in ids])]


DUE_AT = time.time() + 3600


def page_through(r, config, flt, limit, between=None):
    """Every page of a listing: (ids, commands Redis ran for each page)."""
    ids, cursor, costs = [], None, []
    while True:
        out = {}

        def one_page(out=out, at=cursor):
            out["page"] = list_jobs(r, config, flt, at, limit)

        costs.append(commands_during(r, one_page))
        page, cursor = out["page"]
        ids += [j.id for j in page]
        if cursor is None:
            return ids, costs
        if between:
            between(ids)
        assert len(costs) < 1000


def test_2000_jobs_due_at_one_time_page_by_page_at_the_same_cost_each(client, r, config):
    ids = tied_scheduled_jobs(client, TIES)
    flt = JobFilter(queue="default", state="scheduled")
    listed, costs = page_through(r, config, flt, 50)
    assert listed == sorted(ids)  # equal scores: member order, each job once
    batch = 100  # list_jobs reads 2 * limit candidates per look
    for cost in costs:
        assert sum(span(words) for words in cost) <= 2 * batch  # never every tie, never an offset from the start
    # Every page after the first runs the very same commands: the work does not grow with the page number.
    shapes = [sorted(words[0].upper() for words in cost) for cost in costs[1:-1]]
    assert all(shape == shapes[0] for shape in shapes)
    assert len(costs) == TIES // 50 + 1


def test_tied_pages_neither_skip_nor_repeat_while_jobs_leave_and_arrive(client, r, config):
    ids = tied_scheduled_jobs(client, TIES)
    gone, arrived = set(), []

    def churn(listed):
        # The page's last job (the cursor) and a job not listed yet leave; jobs due at the same time arrive
        # before and after the cursor in member order.
        unseen = set(ids) - set(listed) - gone
        for job_id in [listed[-1]] + ([max(unseen)] if unseen else []):
            client.cancel(job_id)
            gone.add(job_id)
        low, high = f"0-{len(listed):05d}", f"z-{len(listed):05d}"
        arrived.extend(tied_scheduled_jobs(client, 2, [low, high]))

    listed, costs = page_through(r, config, JobFilter(queue="default", state="scheduled"), 50, between=churn)
    assert listed == sorted(listed) and len(listed) == len(set(listed))  # in order: nothing repeated
    stayed = set(ids) - gone
    assert stayed <= set(listed)  # nothing that stayed throughout was skipped
    assert set(listed) - stayed <= set(arrived) | gone
    assert {a for a in arrived if a.startswith("z-")} <= set(listed)  # arrivals past the cursor are listed
    assert all(sum(span(words) for words in cost) <= 200 + 2 * math.log2(TIES) for cost in costs)


def test_tied_registry_pages_most_recent_first_while_the_cursor_job_leaves(client, r, config):
    ids = [e.id for e in client.enqueue_many([client.job(NOOP) for _ in range(300)])]
    for job_id in ids:
        client.cancel(job_id)
    r.zadd(Keys().canceled("default"), dict.fromkeys(ids, 1_900_000_000))  # one TTL end for all
    left = []

    def requeue_cursor(listed):
        client.requeue(listed[-1])  # leaves the cancelled registry
        left.append(listed[-1])

    listed, costs = page_through(r, config, JobFilter(state="cancelled"), 40, between=requeue_cursor)
    assert listed == sorted(ids, reverse=True)
    assert all(sum(span(words) for words in cost) <= 160 + 2 * math.log2(300) for cost in costs)


def test_pages_go_on_past_jobs_kept_forever(client, r, config):
    ids = [e.id for e in client.enqueue_many([client.job(NOOP, max_attempts=1, failure_ttl=-1) for _ in range(120)])]
    leases = Leases(r, config)
    for _ in ids:
        leases.fail(leases.claim(["default"], "w"), RuntimeError("x"), "")
    assert set(r.zrange(Keys().failed("default"), 0, -1, withscores=True)) == {(i.encode(), math.inf) for i in ids}
    assert all_pages(r, config, JobFilter(state="failed"), 50) == sorted(ids, reverse=True)


def test_created_window_bounds_the_pages_after_the_first(client, r, config):
    ids = [e.id for e in client.enqueue_many([client.job(NOOP) for _ in range(30)])]
    for n, job_id in enumerate(ids):  # created at 1000 .. 1029 ms
        r.zadd(Keys().created("default"), {job_id: 1000 + n})
        r.hset(Keys.job(job_id), "js_created_ms", 1000 + n)
    assert all_pages(r, config, JobFilter(created_after_ms=1010, created_before_ms=1019), 3) == ids[10:20][::-1]
