"""Terminal output: tables, JSON, and a progress bar for long bulk operations."""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any, TextIO


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        # strict=False: a row with more cells than headers shows the first len(headers) of them
        padded = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False)))
        out.write("  ".join(padded).rstrip())
        out.write("\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")


def as_json(value: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    out.write(json.dumps(value, indent=2, default=str, sort_keys=True) + "\n")


class Progress:
    """`done/total` with a bar and a rate on stderr, redrawn at most 10 times a second."""

    def __init__(self, label: str, out: TextIO | None = None, width: int = 30):
        self.label, self.out, self.width = label, out or sys.stderr, width
        self.started = time.monotonic()
        self._drawn = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._drawn < 0.1 and done < total:
            return
        self._drawn = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * self.width)
        rate = done / max(now - self.started, 1e-9)
        self.out.write(f"\r{self.label} [{bar:<{self.width}}] {done}/{total} ({rate:,.0f}/s)")
        self.out.flush()

    def close(self) -> None:
        self.out.write("\n")
        self.out.flush()
