"""The cancel-stale sweep: cancel the jobs queued longer than X and terminate those running longer than Y
(cancel_stale.lua, which runs cancel.lua's and terminate.lua's own bodies on each job it re-checks).

Candidates are read by score, never by a scan of all jobs: queued ones from each queue's created index (score:
creation time, ms) up to the cutoff, so the cost grows with the jobs created before it that are still stored (ended
ones too, until the expired-job sweep or a prune deletes them), not with newer ones; running ones from the lease
index (one entry per running job: as many as the workers hold). Pages follow a (score, member) cursor
(zpage_after.lua), so jobs cancelled or deleted meanwhile never shift a page; a job created after the cutoff is
never read."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import redis

from ... import defaults
from ...config import Config
from ...engine import scripts
from ...engine.connection import redis_ms, text
from ...engine.keys import Keys
from ...engine.layout import Layout
from ...engine.serialization import utcnow_str
from ...errors import ValidationError
from ...validation import DELAY
from ..listing import zpage_after
from .common import SAMPLE_SIZE, BulkFilter, BulkResult, Progress, chunk_size, queues


def cancel_stale(conn: redis.Redis, config: Config, flt: BulkFilter, queued_for_s: float | None = None,
                 running_for_s: float | None = None, dry_run: bool = False, progress: Progress = None,
                 chunk: int = defaults.BULK_CHUNK) -> BulkResult:
    """Cancel queued jobs created more than `queued_for_s` seconds ago (as cancel.lua does) and terminate running
    jobs started more than `running_for_s` seconds ago (as terminate.lua does: lease revoked, worker told), of
    the filter's queue, namespace and function (its state, ages and error filters are not taken). At least one
    of the two ages is needed. details: queued / running jobs matched."""
    flt = _checked(flt, queued_for_s, running_for_s)
    chunk = chunk_size(chunk)
    keys = Keys(config.key_prefix)
    layout = Layout.of(conn, keys.prefix)
    now = redis_ms(conn)
    out = BulkResult("cancel_stale", dry_run, 0, 0, [], details={"queued": 0, "running": 0})
    sources: list[tuple[str, str, str, int]] = []  # (mode, key, queue for the script, cutoff ms)
    if queued_for_s is not None:
        cutoff = now - int(queued_for_s * 1000)
        sources += [("queued", layout.key("created", q, q), q, cutoff) for q in queues(conn, keys, flt.queue)]
    if running_for_s is not None:
        cutoff = now - int(running_for_s * 1000)
        if layout.cluster:  # a lease index per queue, each in its queue's slot
            sources += [("running", layout.key("leases", q), q, cutoff) for q in queues(conn, keys, flt.queue)]
        else:
            sources.append(("running", keys.leases, flt.queue or "", cutoff))
    pipe = conn.pipeline(transaction=False)
    for mode, key, _, cutoff in sources:
        # The lease index is scored by lease expiry, not start: every running job is a candidate.
        pipe.zcount(key, "-inf", f"({cutoff}" if mode == "queued" else "+inf")
    total = sum(pipe.execute())
    done = 0
    head: list[Any] = [keys.prefix, int(dry_run)]
    tail: list[Any] = [flt.namespace or "", flt.function or "", utcnow_str(), config.failure_ttl]
    for mode, key, queue, cutoff in sources:
        for ids in _pages(conn, key, None if mode == "running" else cutoff, chunk):
            reply = scripts.call(conn, "cancel_stale", layout.scope(queue), [*head, mode, queue, cutoff, *tail,
                                                                             SAMPLE_SIZE - len(out.sample), *ids])
            matched, changed, skipped = (int(v) for v in reply[:3])
            out.matched += matched
            out.changed += changed
            out.skipped += skipped
            out.details[mode] += matched
            out.sample += [text(v) for v in reply[3:]]
            done += len(ids)
            if progress:
                progress(done, max(total, done))
    return out


def _checked(flt: BulkFilter, queued_for_s: float | None, running_for_s: float | None) -> BulkFilter:
    flt = flt.validated()
    if flt.state is not None or flt.older_than_s is not None or flt.newer_than_s is not None \
            or flt.error_contains is not None:
        raise ValidationError("the cancel-stale sweep takes queue, namespace and function filters only")
    if queued_for_s is None and running_for_s is None:
        raise ValidationError("give queued_for (seconds) or running_for (seconds), or both")
    for name, v in (("queued_for", queued_for_s), ("running_for", running_for_s)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not DELAY.holds(v)):
            raise ValidationError(f"{name} must be a number of seconds in {DELAY}")
    return flt


def _pages(conn: redis.Redis, key: str, max_score: int | None, chunk: int) -> Iterator[list[str]]:
    """The members of a sorted set scored below max_score (None: all), a page at a time by a (score, member)
    cursor (zpage_after.lua): members removed meanwhile never shift a page."""
    # withscores: (member, score) pairs; redis-py's one return type covers the command without it too.
    first = cast("list[tuple[bytes, float]]", conn.zrange(key, 0, chunk - 1, withscores=True))
    page = [(s, text(m)) for m, s in first]
    while page:
        ids = [m for s, m in page if max_score is None or s < max_score]
        if ids:
            yield ids
        if len(ids) < len(page) or len(page) < chunk:
            return
        page = zpage_after(conn, key, False, page[-1], chunk)
