"""Argument types and choices that hold the CLI to the rules of the HTTP API: the same jobsvc.validation
bounds and the same core lists, so `jobsvc` refuses (exit 2, from argparse) what a 422 would refuse."""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

from jobsvc.validation import Bounds

T = TypeVar("T", int, float)


def _bounded(convert: Callable[[str], T], what: str, bounds: Bounds) -> Callable[[str], T]:
    """An argparse type: `convert` of the text (refused as not `what` if it cannot), within `bounds` and finite
    (float() reads "inf" and "nan"; the bounds go first, so a huge int is refused, never an OverflowError)."""

    def parse(text: str) -> T:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not bounds.holds(value) or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not in {bounds}")
        return value

    return parse


def integer(bounds: Bounds) -> Callable[[str], int]:
    """An argparse type: an integer within `bounds`."""
    return _bounded(int, "an integer", bounds)


def number(bounds: Bounds) -> Callable[[str], float]:
    """An argparse type: a finite number within `bounds` (seconds, for the CLI's times)."""
    return _bounded(float, "a number", bounds)
