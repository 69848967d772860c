"""Per-minute counters (kept by the Lua transitions) and the queue readings of jobsvc.admin.timeseries."""
from __future__ import annotations

import time

from jobsvc import defaults
from jobsvc.admin.timeseries import oldest_queued_age_ms, per_minute, queue_depth
from jobsvc.engine.keys import Keys


def _totals(rows: list[dict]) -> dict[str, int]:
    return {e: sum(row[e] for row in rows) for e in ("enqueued", "completed", "failed", "retried")}


def test_minutes_are_oldest_first_and_zero_filled(client, r):
    keys = Keys(client.config.key_prefix)
    now_ms = 1_700_000_123_456
    rows = per_minute(r, keys, minutes=5, now_ms=now_ms)
    assert [row["minute"] for row in rows] == [(now_ms // 60_000 - 4 + i) * 60 for i in range(5)]
    assert all(row[e] == 0 for row in rows for e in ("enqueued", "completed", "failed", "retried"))
    assert per_minute(r, keys, minutes=0) == []


def test_counters_move_as_jobs_are_enqueued_completed_failed_and_retried(client, r, run_worker):
    keys = Keys(client.config.key_prefix)
    client.enqueue("tests.jobfuncs.noop", queue="a")
    client.enqueue("tests.jobfuncs.noop", queue="a")
    client.enqueue("tests.jobfuncs.fatal", queue="b")
    client.enqueue("tests.jobfuncs.boom", queue="b", max_attempts=2, delay=0)
    assert _totals(per_minute(r, keys, minutes=3)) == {"enqueued": 4, "completed": 0, "failed": 0, "retried": 0}
    run_worker(queues=("a", "b"), backoff_base=60)  # the retry waits a minute: the burst ends first
    assert _totals(per_minute(r, keys, minutes=3, queue="a")) == {"enqueued": 2, "completed": 2, "failed": 0,
                                                                   "retried": 0}
    assert _totals(per_minute(r, keys, minutes=3, queue="b")) == {"enqueued": 2, "completed": 0, "failed": 1,
                                                                   "retried": 1}
    assert _totals(per_minute(r, keys, minutes=3)) == {"enqueued": 4, "completed": 2, "failed": 1, "retried": 1}
    # Each minute's hash expires on its own (a test crossing a minute boundary has two).
    minute_keys = r.keys(keys.minute(0).replace("0", "*"))
    assert 1 <= len(minute_keys) <= 2
    assert all(0 < r.ttl(k) <= defaults.MINUTE_COUNTERS_TTL for k in minute_keys)


def test_counts_fall_in_the_minute_they_happened(client, r):
    keys = Keys(client.config.key_prefix)
    now_m = int(r.time()[0]) // 60
    r.hset(keys.minute(now_m - 2), mapping={"q|enqueued": 7, "q|failed": 1, "other|enqueued": 5})
    rows = per_minute(r, keys, minutes=3, now_ms=now_m * 60_000 + 30_000)
    assert [row["enqueued"] for row in rows] == [12, 0, 0]
    assert [row["enqueued"] for row in per_minute(r, keys, minutes=3, queue="q", now_ms=now_m * 60_000)] == [7, 0, 0]
    assert rows[0]["failed"] == 1 and rows[0]["minute"] == (now_m - 2) * 60


def test_oldest_queued_age_and_depth(client, r):
    keys = Keys(client.config.key_prefix)
    assert oldest_queued_age_ms(r, keys, "q") is None
    assert queue_depth(r, keys, "q") == 0
    first = client.enqueue("tests.jobfuncs.noop", queue="q", priority=7)
    time.sleep(0.05)
    client.enqueue("tests.jobfuncs.noop", queue="q", priority=1)
    client.enqueue("tests.jobfuncs.noop", queue="q", delay=60)  # scheduled: not waiting in a lane
    age = oldest_queued_age_ms(r, keys, "q")
    assert age is not None and 50 <= age < 5000
    assert queue_depth(r, keys, "q") == 2
    client.cancel(first.id)  # its id may linger in the lane: it is not waiting any more
    assert oldest_queued_age_ms(r, keys, "q") < 50
