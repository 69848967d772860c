"""Argument types and choices that hold the CLI to the rules of the HTTP API: the same jobsvc.validation
bounds and the same core lists, so `jobsvc` refuses (exit 2, from argparse) what a 422 would refuse."""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from jobsvc.validation import Bounds


def integer(bounds: Bounds) -> Callable[[str], int]:
    """An argparse type: an integer within `bounds`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not bounds.holds(value):
            raise argparse.ArgumentTypeError(f"{value} is not in {bounds}")
        return value

    return parse


def number(bounds: Bounds) -> Callable[[str], float]:
    """An argparse type: a finite number within `bounds` (seconds, for the CLI's times)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not bounds.holds(value):
            raise argparse.ArgumentTypeError(f"{text} is not in {bounds}")
        return value

    return parse
