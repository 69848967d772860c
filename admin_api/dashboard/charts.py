"""The overview's charts as inline SVG, drawn on the server: no chart library, no script, works offline.
Live refresh swaps the whole <svg> like any other region of the page."""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

W, H = 720, 170  # viewBox; CSS scales it to the column
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 22


def _hhmm(epoch_s: int) -> str:
    return time.strftime("%H:%M", time.gmtime(epoch_s))


def _nice_max(value: float) -> float:
    """The smallest 1 / 2 / 5 x 10^n at or above value (an axis top that reads well)."""
    if value <= 0:
        return 1
    step = 1.0
    while step * 10 <= value:
        step *= 10
    for m in (1, 2, 5, 10):
        if m * step >= value:
            return m * step
    return 10 * step


def _frame(minutes: Sequence[int], top: float, unit: str) -> list[str]:
    out = [f'<line class="axis" x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}"/>',
           f'<line class="grid" x1="{LEFT}" y1="{TOP}" x2="{W - RIGHT}" y2="{TOP}"/>',
           f'<text class="tick" x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{top:g}{unit}</text>',
           f'<text class="tick" x="{LEFT - 4}" y="{H - BOTTOM}" text-anchor="end">0</text>']
    if minutes:
        n = len(minutes)
        for i in sorted({0, n // 2, n - 1}):
            x = LEFT + (i + 0.5) * (W - LEFT - RIGHT) / n
            anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
            out.append(f'<text class="tick" x="{x:.1f}" y="{H - 6}" text-anchor="{anchor}">{_hhmm(minutes[i])}</text>')
    return out


def _svg(label: str, parts: list[str], legend: Sequence[tuple[str, str]]) -> Markup:
    keys = "".join(f'<span class="key {escape(cls)}">{escape(name)}</span>' for name, cls in legend)
    body = "".join(parts)
    return Markup(f'<figure class="chart"><figcaption>{escape(label)} <span class="legend">{keys}</span>'
                  f'</figcaption><svg viewBox="0 0 {W} {H}" role="img" aria-label="{escape(label)}">{body}</svg>'
                  f'</figure>')


def throughput(rows: Sequence[dict[str, Any]]) -> Markup:
    """Completed and failed per minute as stacked bars, enqueued as a line; one <title> per minute."""
    minutes = [int(r["minute"]) for r in rows]
    done = [int(r.get("completed", 0)) for r in rows]
    failed = [int(r.get("failed", 0)) for r in rows]
    enq = [int(r.get("enqueued", 0)) for r in rows]
    top = _nice_max(max([d + f for d, f in zip(done, failed, strict=True)] + enq + [0]))
    parts = _frame(minutes, top, "")
    n = max(len(rows), 1)
    slot = (W - LEFT - RIGHT) / n
    scale = (H - TOP - BOTTOM) / top
    base = H - BOTTOM
    points = []
    for i, (m, d, f, e) in enumerate(zip(minutes, done, failed, enq, strict=True)):
        x = LEFT + i * slot + slot * 0.1
        hd, hf = d * scale, f * scale
        title = f"<title>{_hhmm(m)} UTC: {e} enqueued, {d} completed, {f} failed</title>"
        parts.append(f'<g class="minute">{title}<rect class="hit" x="{LEFT + i * slot:.1f}" y="{TOP}" '
                     f'width="{slot:.1f}" height="{H - TOP - BOTTOM}"/>'
                     f'<rect class="completed" x="{x:.1f}" y="{base - hd:.1f}" width="{slot * 0.8:.1f}" '
                     f'height="{hd:.1f}"/><rect class="failed" x="{x:.1f}" y="{base - hd - hf:.1f}" '
                     f'width="{slot * 0.8:.1f}" height="{hf:.1f}"/></g>')
        points.append(f"{LEFT + (i + 0.5) * slot:.1f},{base - e * scale:.1f}")
    if points:
        parts.append(f'<polyline class="enqueued" points="{" ".join(points)}"/>')
    return _svg("Throughput per minute, last hour (UTC)", parts,
                (("enqueued", "enqueued"), ("completed", "completed"), ("failed", "failed")))


def failure_rate(rows: Sequence[dict[str, Any]]) -> Markup:
    """failed / (completed + failed) per minute as a line; minutes with nothing finished leave a gap. Both
    count job endings: a job retried by an operator counts each time it ends."""
    minutes = [int(r["minute"]) for r in rows]
    parts = _frame(minutes, 100, "%")
    n = max(len(rows), 1)
    slot = (W - LEFT - RIGHT) / n
    scale = (H - TOP - BOTTOM) / 100
    base = H - BOTTOM
    run: list[str] = []
    for i, r in enumerate(rows):
        d, f = int(r.get("completed", 0)), int(r.get("failed", 0))
        if d + f == 0:
            if run:
                parts.append(f'<polyline class="rate" points="{" ".join(run)}"/>')
                run = []
            continue
        rate = 100.0 * f / (d + f)
        x, y = LEFT + (i + 0.5) * slot, base - rate * scale
        run.append(f"{x:.1f},{y:.1f}")
        parts.append(f'<circle class="rate" cx="{x:.1f}" cy="{y:.1f}" r="2.5"><title>{_hhmm(minutes[i])} UTC: '
                     f'{rate:.1f}% failed ({f} of {d + f})</title></circle>')
    if run:
        parts.append(f'<polyline class="rate" points="{" ".join(run)}"/>')
    return _svg("Failure rate per minute, last hour", parts, (("failed / ended jobs", "rate"),))
