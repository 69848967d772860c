"""Listing jobs: filters, cursor pages, and stability while jobs arrive and leave."""
from __future__ import annotations

import pytest

from jobsvc import ValidationError
from jobsvc.leases import Leases
from jobsvc.listing import JobFilter, list_jobs

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


@pytest.mark.parametrize("flt,limit", [(JobFilter(), 0), (JobFilter(), 501), (JobFilter(state="exploded"), 10),
                                       (JobFilter(queue="bad queue"), 10), (JobFilter(trigger="cron"), 10)])
def test_bad_filters_are_rejected(r, config, flt, limit):
    with pytest.raises(ValidationError):
        list_jobs(r, config, flt, None, limit)


@pytest.mark.parametrize("state,pos", [(None, ["x", "y"]), (None, [1.0]), (None, [float("nan"), "a"]),
                                       ("queued", [1, 2, 3]), ("queued", ["default", "5", "a"]),
                                       ("queued", ["bad queue", 5, "a"]), (None, "notalist")])
def test_cursor_of_the_right_listing_but_malformed_position_is_rejected(r, config, state, pos):
    import base64
    import json

    from jobsvc.listing import _encode_cursor

    flt = JobFilter(state=state)
    kind = "queued" if state else "created"
    raw = _encode_cursor(kind, flt, ())
    data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    data["p"] = pos
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    with pytest.raises(ValidationError, match="malformed cursor"):
        list_jobs(r, config, flt, forged, 10)
