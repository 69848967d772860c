"""jobsvc/scheduling/cron.py, pure logic on fixed dates: cron parsing, DST in America/New_York (spring-forward
2026-03-08 02:00 -> 03:00, fall-back 2026-11-01 02:00 -> 01:00), intervals, windows and misfire plans."""
from __future__ import annotations

from datetime import datetime, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from jobsvc import ValidationError
from jobsvc.scheduling.cron import CronTiming, IntervalTiming, Window, croniter_expr, local_to_ms, plan, to_ms

NY = ZoneInfo("America/New_York")
UTC = timezone.utc


def ny(*args, fold=0):
    return to_ms(datetime(*args, tzinfo=NY, fold=fold))


def utc(*args):
    return to_ms(datetime(*args, tzinfo=UTC))


def fires(timing, start_ms, n):
    out, ms = [], start_ms
    for _ in range(n):
        ms = timing.next_after(ms)
        out.append(ms)
    return out


def as_ny(ms):
    return datetime.fromtimestamp(ms / 1000, NY).isoformat()


# -- parsing -------------------------------------------------------------------------------------------------


def test_six_fields_put_seconds_first():
    assert croniter_expr("*/10 * * * * *") == "* * * * * */10"
    t = CronTiming("30 0 12 * * *")  # 12:00:30 every day
    assert t.next_after(utc(2026, 5, 1, 0, 0)) == utc(2026, 5, 1, 12, 0, 30)


def test_five_fields_and_aliases():
    assert CronTiming("0 3 * * *").next_after(utc(2026, 5, 1, 3, 0)) == utc(2026, 5, 2, 3, 0)
    assert CronTiming("@hourly").next_after(utc(2026, 5, 1, 3, 0, 1)) == utc(2026, 5, 1, 4, 0)


@pytest.mark.parametrize("expr", ["", "* * * *", "* * * * * * *", "61 * * * *", "not a cron", "H * * * *"])
def test_bad_expressions_are_validation_errors(expr):
    with pytest.raises(ValidationError):
        CronTiming(expr)


def test_unknown_timezone_is_a_validation_error():
    with pytest.raises(ValidationError, match="timezone"):
        CronTiming("* * * * *", "Mars/Olympus_Mons")


def test_next_after_is_strictly_after():
    t = CronTiming("* * * * * *")
    at = utc(2026, 5, 1, 0, 0, 5)
    assert t.next_after(at) == at + 1000
    assert t.next_after(at - 1) == at
    assert t.next_after(at + 999) == at + 1000


def test_timezone_shifts_fire_instants():
    t = CronTiming("0 9 * * *", "America/New_York")
    assert t.next_after(utc(2026, 1, 15)) == utc(2026, 1, 15, 14)  # EST, UTC-5
    assert t.next_after(utc(2026, 7, 15)) == utc(2026, 7, 15, 13)  # EDT, UTC-4


# -- DST: spring forward (2026-03-08, 02:00 EST -> 03:00 EDT) ---------------------------------------------------


def test_skipped_local_time_fires_once_at_the_first_valid_instant_after_the_gap():
    t = CronTiming("30 2 * * *", "America/New_York")
    got = fires(t, ny(2026, 3, 6, 12), 4)
    assert [as_ny(ms) for ms in got] == ["2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00",
                                         "2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"]
    assert got[1] == utc(2026, 3, 8, 7)  # the transition instant itself


def wall(*parts: int) -> datetime:
    """A wall-clock time, naive as local_to_ms takes it: the zone is its second argument."""
    return datetime(*parts)  # noqa: DTZ001


def test_gap_wall_times_map_to_the_transition_instant():
    assert local_to_ms(wall(2026, 3, 8, 2, 0), NY) == utc(2026, 3, 8, 7)
    assert local_to_ms(wall(2026, 3, 8, 2, 59, 59), NY) == utc(2026, 3, 8, 7)
    assert local_to_ms(wall(2026, 3, 8, 3, 0), NY) == utc(2026, 3, 8, 7)
    assert local_to_ms(wall(2026, 3, 8, 1, 59, 59), NY) == utc(2026, 3, 8, 6, 59, 59)


def test_per_second_schedule_across_spring_forward_has_no_duplicate_and_no_hole():
    t = CronTiming("* * * * * *", "America/New_York")
    got = fires(t, ny(2026, 3, 8, 1, 59, 57), 6)
    # 3,600 local times of the gap collapse into one instant: consecutive real seconds, each once.
    assert [b - a for a, b in pairwise(got)] == [1000] * 5
    assert [as_ny(ms) for ms in got[:4]] == ["2026-03-08T01:59:58-05:00", "2026-03-08T01:59:59-05:00",
                                             "2026-03-08T03:00:00-04:00", "2026-03-08T03:00:01-04:00"]


def test_hourly_across_spring_forward():
    t = CronTiming("0 * * * *", "America/New_York")
    got = fires(t, ny(2026, 3, 8, 0, 30), 4)
    assert [as_ny(ms) for ms in got] == ["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00",
                                         "2026-03-08T04:00:00-04:00", "2026-03-08T05:00:00-04:00"]


# -- DST: fall back (2026-11-01, 02:00 EDT -> 01:00 EST) ------------------------------------------------------


def test_repeated_local_time_fires_once_at_its_first_occurrence():
    t = CronTiming("30 1 * * *", "America/New_York")
    got = fires(t, ny(2026, 10, 31, 12), 3)
    assert [as_ny(ms) for ms in got] == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00",
                                         "2026-11-03T01:30:00-05:00"]


def test_every_fifteen_minutes_across_fall_back_fires_each_local_time_once():
    t = CronTiming("*/15 * * * *", "America/New_York")
    got = fires(t, ny(2026, 11, 1, 0, 50), 8)
    assert [as_ny(ms) for ms in got] == [
        "2026-11-01T01:00:00-04:00", "2026-11-01T01:15:00-04:00", "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:45:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T02:15:00-05:00",
        "2026-11-01T02:30:00-05:00", "2026-11-01T02:45:00-05:00"]
    assert len(set(got)) == len(got)


def test_next_after_an_instant_in_the_second_pass_of_the_repeated_hour():
    # 01:30 EST is the second 01:30: the repeated local times are over, the next fire is 02:00 EST.
    t = CronTiming("* * * * * *", "America/New_York")
    assert t.next_after(ny(2026, 11, 1, 1, 30, fold=1)) == ny(2026, 11, 1, 2, 0)
    assert CronTiming("0 * * * *", "America/New_York").next_after(ny(2026, 11, 1, 1, 0, fold=1)) == \
        ny(2026, 11, 1, 2, 0)


def test_per_second_schedule_across_fall_back_never_goes_back():
    t = CronTiming("* * * * * *", "America/New_York")
    got = fires(t, ny(2026, 11, 1, 1, 59, 58), 3)
    assert [as_ny(ms) for ms in got] == ["2026-11-01T01:59:59-04:00", "2026-11-01T02:00:00-05:00",
                                         "2026-11-01T02:00:01-05:00"]


# -- intervals and windows -------------------------------------------------------------------------------------


def test_interval_counts_from_its_anchor():
    t = IntervalTiming(5000, anchor_ms=1_000_000)
    assert t.next_after(0) == 1_000_000
    assert t.next_after(1_000_000) == 1_005_000
    assert t.next_after(1_004_999) == 1_005_000
    with pytest.raises(ValidationError):
        IntervalTiming(500, 0)


def test_window_starts_and_ends():
    w = Window(CronTiming("0 * * * *"), start_ms=utc(2026, 5, 1, 10, 30), end_ms=utc(2026, 5, 1, 12))
    assert w.next_after(utc(2026, 5, 1)) == utc(2026, 5, 1, 11)
    assert w.next_after(utc(2026, 5, 1, 11)) == utc(2026, 5, 1, 12)  # the end is included
    assert w.next_after(utc(2026, 5, 1, 12)) is None
    assert w.fires(utc(2026, 5, 1), utc(2026, 6, 1), 10) == [utc(2026, 5, 1, 11), utc(2026, 5, 1, 12)]


# -- misfire plans ----------------------------------------------------------------------------------------------

SEC = Window(IntervalTiming(1000, 0))
T0 = 1_800_000_000_000  # a whole second


def test_on_time_fire_runs_under_every_policy():
    for policy in ("skip", "run_once", "run_all"):
        p = plan(SEC, T0, T0 + 3, policy, 1000, 100)
        assert (p.fires, p.missed, p.next_ms) == ([T0], 0, T0 + 1000)


def test_skip_drops_missed_fires_and_keeps_the_on_time_ones():
    # Stored next fire T0; now T0 + 5 s; grace 1 s: T0 .. T0+3 s are missed, T0+4 s and T0+5 s on time.
    p = plan(SEC, T0, T0 + 5000, "skip", 1000, 100)
    assert p.fires == [T0 + 4000, T0 + 5000]
    assert p.missed == 4
    assert p.next_ms == T0 + 6000


def test_run_once_runs_one_job_for_all_missed_fires():
    p = plan(SEC, T0, T0 + 5000, "run_once", 1000, 100)
    assert p.fires == [T0, T0 + 4000, T0 + 5000]
    assert p.catchup == T0
    assert p.missed == 3


def test_run_all_runs_every_missed_fire_up_to_its_cap():
    p = plan(SEC, T0, T0 + 5000, "run_all", 1000, 100)
    assert p.fires == [T0 + i * 1000 for i in range(6)]
    assert p.missed == 0
    capped = plan(SEC, T0, T0 + 10_000, "run_all", 1000, 3)
    assert capped.fires == [T0, T0 + 1000, T0 + 2000, T0 + 9000, T0 + 10_000]
    assert capped.missed == 6


def test_a_long_outage_is_bounded_work():
    day = 86_400_000
    p = plan(SEC, T0, T0 + day, "skip", 1000, 100)
    assert p.fires == [T0 + day - 1000, T0 + day]
    assert p.next_ms == T0 + day + 1000


def test_plan_is_deterministic():
    assert plan(SEC, T0, T0 + 5000, "run_once", 1000, 100) == plan(SEC, T0, T0 + 5000, "run_once", 1000, 100)
