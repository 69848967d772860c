import random

import pytest

from jobsvc.engine.backoff import Backoff
from jobsvc.errors import ValidationError


def test_exponential_ceiling_doubles_until_cap():
    b = Backoff("exponential", base=1, cap=10, jitter=False)
    assert [b.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_linear_ceiling_grows_by_base():
    b = Backoff("linear", base=2, cap=7, jitter=False)
    assert [b.delay(n) for n in range(1, 5)] == [2, 4, 6, 7]


def test_fixed_ceiling_is_constant():
    b = Backoff("fixed", base=3, cap=100, jitter=False)
    assert {b.delay(n) for n in range(1, 10)} == {3}


def test_full_jitter_stays_within_zero_and_ceiling():
    b = Backoff("exponential", base=1, cap=300)
    rng = random.Random(7)
    delays = [b.delay(5, rng) for _ in range(1000)]
    assert all(0 <= d <= 16 for d in delays)
    assert max(delays) > 12 and min(delays) < 4  # spread over the range, not stuck at one end


def test_huge_attempt_number_does_not_overflow():
    assert Backoff("exponential", base=1, cap=60, jitter=False).delay(10_000) == 60


def test_unknown_kind_is_rejected():
    with pytest.raises(ValidationError):
        Backoff("quadratic")


def test_fields_round_trip():
    b = Backoff("linear", base=0.5, cap=9, jitter=False)
    assert Backoff.from_fields(b.to_fields()) == b


def test_missing_fields_fall_back_to_default():
    fallback = Backoff("fixed", base=2)
    assert Backoff.from_fields({}, fallback) is fallback
