"""The bulk operations on the registries of ended jobs: retry, requeue quarantined, prune (each one script call
per chunk of a state's registry, re-checking the filter) and the TTL sweep (sweep_ttl.lua, from the entries
whose TTL has passed)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, cast

import redis

from ... import defaults
from ...config import Config
from ...engine import directory, scripts
from ...engine.connection import redis_ms, text
from ...engine.keys import Keys
from ...engine.layout import Layout
from ...engine.serialization import utcnow_str
from ...engine.states import PRUNABLE, RETRYABLE, TTL_STATES, State
from .common import SAMPLE_SIZE, BulkFilter, BulkResult, Progress, chunk_size, queues

# What a prune with no state deletes: quarantined jobs are kept for an operator to look at (or retry).
PRUNE_DEFAULT = tuple(s for s in PRUNABLE if s is not State.QUARANTINED)


def bulk_retry(conn: redis.Redis, config: Config, flt: BulkFilter, dry_run: bool = False,
               progress: Progress = None, chunk: int = defaults.BULK_CHUNK) -> BulkResult:
    """failed | quarantined | cancelled (the filter's state, default failed) -> queued: attempts and lease
    losses reset, history kept, as requeue.lua does for one job; one script call per chunk of ids."""
    return _retry("bulk_retry", conn, config, flt.validated(), dry_run, progress, chunk)


def requeue_quarantined(conn: redis.Redis, config: Config, flt: BulkFilter, dry_run: bool = False,
                        progress: Progress = None, chunk: int = defaults.BULK_CHUNK) -> BulkResult:
    """bulk_retry of quarantined jobs (the filter's state must be unset or quarantined)."""
    flt.validated().states((State.QUARANTINED,), (State.QUARANTINED,))
    return _retry("requeue_quarantined", conn, config, replace(flt, state=State.QUARANTINED.value), dry_run,
                  progress, chunk)


def _retry(operation: str, conn: redis.Redis, config: Config, flt: BulkFilter, dry_run: bool,
           progress: Progress, chunk: int) -> BulkResult:
    states = flt.states(RETRYABLE, (State.FAILED,))
    prefix = Keys(config.key_prefix).prefix

    def head(queue: str, state: State, until_ms: int) -> list[Any]:
        return [prefix, int(dry_run), state.value, queue, utcnow_str(), defaults.WAKE_TOKENS_MAX, until_ms]

    return _walk_registries(operation, "bulk_requeue", conn, config, flt, states, head, dry_run, progress, chunk)


def prune(conn: redis.Redis, config: Config, flt: BulkFilter, dry_run: bool = False, progress: Progress = None,
          chunk: int = defaults.BULK_CHUNK) -> BulkResult:
    """Delete terminal jobs (the filter's states, default completed, failed and cancelled: quarantined jobs wait
    for an operator's look and go only when named) with everything that is theirs: hash, result stream, run
    history, registry and created-index entries; each is uncounted from its group's gauge. Idempotency
    keys stay until their own TTL ends (a retried request is not run again)."""
    flt = flt.validated()
    states = flt.states(PRUNABLE, PRUNE_DEFAULT)
    prefix = Keys(config.key_prefix).prefix

    def head(queue: str, state: State, until_ms: int) -> list[Any]:
        return [prefix, int(dry_run), state.value, queue, until_ms]

    return _walk_registries("prune", "prune", conn, config, flt, states, head, dry_run, progress, chunk)


def _walk_registries(operation: str, script: str, conn: redis.Redis, config: Config, flt: BulkFilter,
                     states: Sequence[State], head: Callable[[str, State, int], list[Any]], dry_run: bool,
                     progress: Progress, chunk: int) -> BulkResult:
    chunk = chunk_size(chunk)
    keys = Keys(config.key_prefix)
    layout = Layout.of(conn, keys.prefix)
    until_ms = redis_ms(conn)
    # Queue by queue in name order (on a cluster each is its own slot: its position is (queue, rank)).
    targets = [(q, s, layout.registry(s, q)) for q in queues(conn, keys, flt.queue) for s in states]
    # The last score of each registry now: entries added later (jobs that entered the state during the
    # operation) are past it and not visited.
    pipe = conn.pipeline(transaction=False)
    for _, _, reg in targets:
        pipe.zcard(reg)
        pipe.zrange(reg, -1, -1, withscores=True)
    sizes = pipe.execute()
    total = sum(sizes[0::2])
    out = BulkResult(operation, dry_run, 0, 0, [])
    done = 0
    filter_args = flt.lua_args()
    # Two replies per target (ZCARD, ZRANGE): every other one is a target's last entry.
    for (queue, state, reg), last in zip(targets, sizes[1::2], strict=True):
        if not last:
            continue
        high = last[0][1]
        start = 0
        while True:
            # withscores: (member, score) pairs; redis-py's one return type covers the command without it too.
            rows = cast("list[tuple[bytes, float]]", conn.zrange(reg, start, start + chunk - 1, withscores=True))
            ids = [m for m, score in rows if score <= high]
            if not ids:
                break
            # On a cluster a prune's reply lists every job it deleted, whose id directory entries then go.
            forget = layout.cluster and script == "prune" and not dry_run
            reply = scripts.call(conn, script, layout.scope(queue), [*head(queue, state, until_ms), *filter_args,
                                                                     len(ids) if forget else
                                                                     SAMPLE_SIZE - len(out.sample), *ids])
            matched, changed, skipped, kept = (int(v) for v in reply[:4])
            out.matched += matched
            out.changed += changed
            out.skipped += skipped
            listed, entries = directory.deleted(queue, reply[4:])
            out.sample += listed[:SAMPLE_SIZE - len(out.sample)]
            if forget:
                directory.forget(conn, keys.prefix, entries)
            done += len(ids)
            if progress:
                progress(done, max(total, done))
            if len(ids) < len(rows) or len(rows) < chunk:
                break
            start += kept  # what this page left in the registry; the ids it took out no longer count
    return out


# -- TTL sweep -----------------------------------------------------------------------------------------


def ttl_sweep(conn: redis.Redis, config: Config, dry_run: bool = False, progress: Progress = None,
              chunk: int = defaults.BULK_CHUNK, limit: int | None = None) -> BulkResult:
    """Delete completed, failed and cancelled jobs whose result / failure TTL has passed (their registry score,
    epoch seconds, is past), as prune does, uncounting their gauges; ids whose job is already gone (or moved
    on) only leave the registry. The cost grows with the expired entries, not with the data stored.
    `limit` bounds the registry entries handled in one call (`more` is set when it stopped there)."""
    chunk = chunk_size(chunk)
    keys = Keys(config.key_prefix)
    layout = Layout.of(conn, keys.prefix)
    now_s = redis_ms(conn) / 1000
    targets = [(q, s, layout.registry(s, q)) for q in queues(conn, keys, None) for s in TTL_STATES]
    pipe = conn.pipeline(transaction=False)
    for _, _, reg in targets:
        pipe.zcount(reg, "-inf", now_s)
    counts = pipe.execute()
    total = sum(counts)
    out = BulkResult("ttl_sweep", dry_run, 0, 0, [], details={"deleted": 0, "dropped": 0})
    if dry_run:
        out.matched = total
        for (_, _, reg), n in zip(targets, counts, strict=True):  # one ZCOUNT reply per target
            if n and len(out.sample) < SAMPLE_SIZE:
                out.sample += [text(v) for v in conn.zrangebyscore(reg, "-inf", now_s, start=0,
                                                                     num=SAMPLE_SIZE - len(out.sample))]
        return out
    prefix = keys.prefix
    for index, ((queue, state, _), n) in enumerate(zip(targets, counts, strict=True)):
        if not n:
            continue
        while True:
            size = chunk if limit is None else min(chunk, limit - out.matched)
            if size <= 0:
                pipe = conn.pipeline(transaction=False)
                for _, _, reg in targets[index:]:
                    pipe.zcount(reg, "-inf", now_s)
                out.more = any(pipe.execute())
                return out
            # On a cluster the reply lists every job deleted, whose id directory entries then go.
            reply = scripts.call(conn, "sweep_ttl", layout.scope(queue), (prefix, queue, state.value, size,
                                                                          size if layout.cluster else
                                                                          SAMPLE_SIZE - len(out.sample)))
            seen, deleted, dropped = (int(v) for v in reply[:3])
            out.matched += seen
            out.changed += deleted + dropped
            out.details["deleted"] += deleted
            out.details["dropped"] += dropped
            listed, entries = directory.deleted(queue, reply[3:])
            out.sample += listed[:SAMPLE_SIZE - len(out.sample)]
            if layout.cluster:
                directory.forget(conn, prefix, entries)
            if progress:
                progress(out.matched, max(total, out.matched))
            if seen < size:
                break
    return out
