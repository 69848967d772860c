"""Listing jobs: filters and cursor pages whose cost grows with the page, not with the data stored.

Each state is read from the structure that already holds it, in a stable order:
- no state filter: `<prefix>created:<queue>` (newest first); created_after/before are score ranges;
- queued: the queue's lanes (priority, then first in first out);
- scheduled: `<prefix>scheduled:<queue>` (earliest due first);
- running: `<prefix>leases` (earliest expiry first);
- completed / failed / cancelled / quarantined / deferred: their registries (most recent first).
Other filters (function: import path or registry name; namespace, trigger, and created times on state
listings) are checked on the candidates, at most LIST_SCAN_BUDGET per call: a sparse match returns a short page and a
cursor to go on from. A cursor is the position of the last job looked at, so jobs added later
never shift a page: nothing is skipped or repeated while jobs arrive. Resuming costs O(log N + page) on a
sorted set however many jobs share the cursor's score (zpage_after.lua): thousands of jobs due at the same
millisecond cost each page no more than one.

On a Redis Cluster (docs/cluster.md 2.6) each queue is its own slot: the sorted-set listings are a k-way merge over
the queues' indexes (`_MergeSource`) whose cursor is one position in the total order (score, queue, member), and
every key is named under its queue's tag (`layout.Layout`); the single-node reads are unchanged."""
from __future__ import annotations

import base64
import hashlib
import json
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import redis

from .. import defaults
from ..config import Config
from ..engine import scripts
from ..engine.connection import text
from ..engine.job import DEFAULT_NAMESPACE, JobInfo
from ..engine.keys import Keys
from ..engine.layout import Layout
from ..engine.states import State, parse_state
from ..errors import ValidationError
from ..validation import QUEUE_NAME, is_name

MAX_LIMIT = defaults.PAGE_LIMIT_MAX
TRIGGERS = ("immediate", "delayed", "scheduled", "queue", "pull")


@dataclass(frozen=True)
class JobFilter:
    queue: str | None = None
    state: str | None = None
    function: str | None = None
    namespace: str | None = None
    trigger: str | None = None
    created_after_ms: int | None = None
    created_before_ms: int | None = None

    def validated(self) -> JobFilter:
        if self.queue is not None and not is_name(self.queue, QUEUE_NAME):
            raise ValidationError(f"bad queue name {self.queue!r}")
        if self.state is not None:
            try:
                parse_state(self.state)
            except ValueError:
                raise ValidationError(f"unknown state {self.state!r}") from None
        if self.trigger is not None and self.trigger not in TRIGGERS:
            raise ValidationError(f"trigger must be one of {', '.join(TRIGGERS)}")
        return self

    def fingerprint(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class _Candidate:
    order: tuple[Any, ...]  # position in the listing's total order
    job_id: str
    queue: str | None = None  # where its job's key is on a cluster (None: a single Redis, where it does not matter)


def _encode_cursor(kind: str, flt: JobFilter, pos: tuple[Any, ...]) -> str:
    raw = json.dumps({"k": kind, "f": flt.fingerprint(), "p": list(pos)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, kind: str, flt: JobFilter, merged: bool = False) -> tuple[Any, ...]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if raw["k"] != kind or raw["f"] != flt.fingerprint():
            raise ValidationError("cursor belongs to another listing (other filters)")
        pos = tuple(raw["p"])
    except ValidationError:
        raise
    except Exception:  # noqa: BLE001 - anything unreadable is a bad cursor
        raise ValidationError("malformed cursor") from None
    if not _position_ok(kind, pos, merged):
        raise ValidationError("malformed cursor")
    return pos


def _position_ok(kind: str, pos: tuple[Any, ...], merged: bool = False) -> bool:
    """A lane position is (queue, priority, job id); every other one is (score, member), or on a cluster's merged
    listing (score, queue, member)."""
    if kind == "queued":
        return (len(pos) == 3 and isinstance(pos[0], str) and is_name(pos[0], QUEUE_NAME)
                and isinstance(pos[1], int) and not isinstance(pos[1], bool) and isinstance(pos[2], str))
    if merged:
        if len(pos) != 3 or not isinstance(pos[1], str) or not is_name(pos[1], QUEUE_NAME):
            return False
        pos = (pos[0], pos[2])
    # A score may be +-inf (a registry entry kept forever), never NaN, nor an integer no float can hold (10**400:
    # float() of it raises where the page is read).
    return (len(pos) == 2 and isinstance(pos[0], (int, float)) and not isinstance(pos[0], bool)
            and pos[0] == pos[0] and _float_ok(pos[0]) and isinstance(pos[1], str))


def _float_ok(score: float) -> bool:
    try:
        float(score)
    except OverflowError:
        return False
    return True


class _ZSource:
    """Candidates from one or more sorted sets, merged in (score, member) order."""

    def __init__(self, conn: redis.Redis, keys: list[str], desc: bool, low: float | None = None,
                 high: float | None = None):
        self.conn, self.keys, self.desc = conn, keys, desc
        self.low = "-inf" if low is None else low
        self.high = "+inf" if high is None else high

    def _after(self, key: str, pos: tuple[Any, ...] | None, n: int) -> list[tuple[float, str]]:
        c = self.conn
        if pos is None:
            if self.desc:
                reply = c.zrevrangebyscore(key, self.high, self.low, start=0, num=n, withscores=True)
            else:
                reply = c.zrangebyscore(key, self.low, self.high, start=0, num=n, withscores=True)
            # withscores: (member, score) pairs; redis-py's one return type covers the command without it too.
            rows = cast("list[tuple[bytes, float]]", reply)
            return [(s, m.decode()) for m, s in rows]
        return [(s, m) for s, m in zpage_after(c, key, self.desc, pos, n) if self._within(s)]

    def _within(self, score: float) -> bool:
        """A score past the cursor is inside the listing's far bound (created_after / created_before)."""
        bound = self.low if self.desc else self.high
        if isinstance(bound, str):
            return True  # -inf / +inf
        return score >= bound if self.desc else score <= bound

    def candidates(self, pos: tuple[Any, ...] | None, batch: int) -> Iterator[_Candidate]:
        while True:
            rows: list[tuple[float, str]] = []
            for key in self.keys:
                rows += self._after(key, pos, batch)
            if not rows:
                return
            rows.sort(key=lambda r: (r[0], r[1]), reverse=self.desc)
            rows = rows[:batch]
            for score, member in rows:
                yield _Candidate((score, member), member)
            pos = (rows[-1][0], rows[-1][1])
            if len(rows) < batch:
                return


def zpage_after(conn: redis.Redis, key: str, desc: bool, pos: tuple[Any, ...], n: int) -> list[tuple[float, str]]:
    """Up to n (score, member) entries of a sorted set after the cursor position (score, member), in ZRANGE's
    order (ZREVRANGE's with desc), in O(log N + n) whatever the ties at the cursor's score (zpage_after.lua)."""
    return zpages_after(conn, [(key, desc, pos, n)])[0]


def zpages_after(conn: redis.Redis, pages: Sequence[tuple[str, bool, tuple[Any, ...], int]]
                 ) -> list[list[tuple[float, str]]]:
    """zpage_after for several (key, desc, position, n) in one round trip (on a cluster, one per node)."""
    calls = [("zpage_after", (key,), (int(desc), repr(float(pos[0])), str(pos[1]), n)) for key, desc, pos, n in pages]
    return [[(float(flat[i + 1]), text(flat[i])) for i in range(0, len(flat), 2)]
            for flat in scripts.call_many(conn, calls)]


class _MergeSource(_ZSource):
    """On a Redis Cluster: one sorted set per queue (each in its queue's slot), merged in the total order
    (score, queue, member), or its reverse with desc: a k-way merge. The cursor is one position in that order, so
    each queue resumes from it on its own (`_resume`) and jobs added later never shift a page. The first read
    asks each queue for ceil(batch / queues) + 1 entries; a queue is read again (after its last entry read) only
    once all of them were taken, each time for twice as many (up to batch): a page reads O(page + queues)
    entries, a read costs one round trip per shard."""

    def __init__(self, conn: redis.Redis, keys: dict[str, str], desc: bool, low: float | None = None,
                 high: float | None = None):
        super().__init__(conn, list(keys.values()), desc, low, high)
        self.by_queue = dict(sorted(keys.items()))

    def _resume(self, queue: str, pos: tuple[Any, ...] | None) -> tuple[float, str] | str:
        """Where `queue` goes on after the cursor (score, queue, member): after that (score, member) in the
        cursor's own queue (zpage_after.lua), in any other a score range from a near bound (ZRANGEBYSCORE's `s` or
        `(s`): its entries with the cursor's score come after the cursor when its name sorts after the cursor's
        queue (asc), before it (desc). No cursor: the listing's own bound."""
        if pos is None:
            return str(self.high if self.desc else self.low)
        score, at, member = pos
        if queue == at:
            return (score, member)
        ties_follow = queue < at if self.desc else queue > at
        return repr(float(score)) if ties_follow else f"({float(score)!r}"

    def _read(self, todo: dict[str, tuple[float, str] | str], n: dict[str, int]) -> dict[str, list[tuple[float, str]]]:
        """The next entries of each queue in `todo`: score ranges in one pipeline, reads after a position in one
        round trip of zpage_after.lua (each of them one round trip per shard)."""
        out: dict[str, list[tuple[float, str]]] = {}
        ranges = [(q, near) for q, near in todo.items() if isinstance(near, str)]
        if ranges:
            pipe = self.conn.pipeline(transaction=False)
            for q, near in ranges:
                if self.desc:
                    pipe.zrevrangebyscore(self.by_queue[q], near, self.low, start=0, num=n[q], withscores=True)
                else:
                    pipe.zrangebyscore(self.by_queue[q], near, self.high, start=0, num=n[q], withscores=True)
            for (q, _), rows in zip(ranges, pipe.execute(), strict=True):
                out[q] = [(score, text(m)) for m, score in rows]
        after = [(q, p) for q, p in todo.items() if not isinstance(p, str)]
        pages = [] if not after else zpages_after(self.conn, [(self.by_queue[q], self.desc, p, n[q]) for q, p in after])
        for (q, _), rows in zip(after, pages, strict=True):
            out[q] = [r for r in rows if self._within(r[0])]
        return out

    def candidates(self, pos: tuple[Any, ...] | None, batch: int) -> Iterator[_Candidate]:
        if not self.by_queue:
            return
        todo = {q: self._resume(q, pos) for q in self.by_queue}
        n = dict.fromkeys(todo, -(-batch // len(todo)) + 1)
        bufs: dict[str, deque[tuple[float, str]]] = {}
        more: set[str] = set()  # queues whose last read was full: there may be more
        while todo:
            for q, rows in self._read(todo, n).items():
                bufs[q] = deque(rows)
                if len(rows) == n[q]:
                    more.add(q)
                else:
                    more.discard(q)
            todo = {}
            while not todo:
                heads = [(buf[0][0], q, buf[0][1]) for q, buf in bufs.items() if buf]
                if not heads:
                    return
                score, q, member = max(heads) if self.desc else min(heads)
                bufs[q].popleft()
                yield _Candidate((score, q, member), member, q)
                if not bufs[q] and q in more:  # every entry read taken: read on before comparing heads again
                    todo, n[q] = {q: (score, member)}, min(n[q] * 2, batch)


class _LaneSource:
    """Queued jobs: queues in name order, each queue's lanes in priority order, each lane FIFO."""

    def __init__(self, conn: redis.Redis, layout: Layout, queues: list[str]):
        self.conn, self.layout, self.queues = conn, layout, sorted(queues)

    def _lanes(self, queue: str) -> list[int]:
        used = {int(p) for p in self.conn.smembers(self.layout.key("lanes", queue, queue))}
        return sorted(used | {defaults.PRIORITY})

    def candidates(self, pos: tuple[Any, ...] | None, batch: int) -> Iterator[_Candidate]:
        for queue in self.queues:
            if pos is not None and queue < pos[0]:
                continue
            for prio in self._lanes(queue):
                if pos is not None and (queue, prio) < (pos[0], pos[1]):
                    continue
                lane = self.layout.lane(queue, prio)
                start = 0
                if pos is not None and (queue, prio) == (pos[0], pos[1]):
                    # The last job seen: go on after it. If it left the lane, every job before it did too
                    # (a lane is FIFO), so the lane starts over from its head.
                    found = self.conn.lpos(lane, pos[2])  # an index or None (a list only with a count)
                    start = found + 1 if isinstance(found, int) else 0
                pos = None
                while True:
                    ids = self.conn.lrange(lane, start, start + batch - 1)
                    for raw_id in ids:
                        job_id = text(raw_id)
                        yield _Candidate((queue, prio, job_id), job_id, queue)
                    if len(ids) < batch:
                        break
                    start += batch


def queue_exists(conn: redis.Redis, config: Config, queue: str) -> bool:
    """Has jobsvc or plain RQ used this queue (the queue set the listings read)? O(1): a listing filtered by a
    queue that does not exist is a typo, not an empty queue. On a cluster: its queue registry."""
    layout = Layout.of(conn, config.key_prefix)
    if layout.cluster:
        return layout.has_queue(conn, queue)
    return bool(conn.sismember(Keys(config.key_prefix).queues, queue))


def _queues(conn: redis.Redis, layout: Layout, flt: JobFilter) -> list[str]:
    if flt.queue is not None:
        return [flt.queue]
    if layout.cluster:
        return layout.cluster_queues(conn)
    return sorted(text(q) for q in conn.smembers(Keys(layout.prefix).queues))


def _source(conn: redis.Redis, layout: Layout, flt: JobFilter) -> tuple[str, Any]:
    queues = _queues(conn, layout, flt)
    state = parse_state(flt.state) if flt.state else None
    if state == State.QUEUED:
        return "queued", _LaneSource(conn, layout, queues)
    if layout.cluster:
        return _merged(conn, layout, flt, state, queues)
    keys = Keys(layout.prefix)
    if state is None:
        return "created", _ZSource(conn, [keys.created(q) for q in queues], desc=True,
                                   low=flt.created_after_ms, high=flt.created_before_ms)
    if state == State.SCHEDULED:
        return "scheduled", _ZSource(conn, [keys.scheduled_in(q) for q in queues], desc=False)
    if state == State.RUNNING:
        return "running", _ZSource(conn, [keys.leases], desc=False)
    return state.value, _ZSource(conn, [keys.registry(state, q) for q in queues], desc=True)


def _merged(conn: redis.Redis, layout: Layout, flt: JobFilter, state: State | None,
            queues: list[str]) -> tuple[str, _MergeSource]:
    """The same indexes on a cluster, one per queue (the lease index too: each queue has its own there)."""
    if state is None:
        return "created", _MergeSource(conn, {q: layout.key("created", q, q) for q in queues}, desc=True,
                                       low=flt.created_after_ms, high=flt.created_before_ms)
    if state == State.SCHEDULED:
        return "scheduled", _MergeSource(conn, {q: layout.key("scheduled_in", q, q) for q in queues}, desc=False)
    if state == State.RUNNING:
        return "running", _MergeSource(conn, {q: layout.key("leases", q) for q in queues}, desc=False)
    return state.value, _MergeSource(conn, {q: layout.registry(state, q) for q in queues}, desc=True)


def _matches(info: JobInfo, flt: JobFilter) -> bool:
    if flt.state is not None and info.state != parse_state(flt.state):
        return False  # the index entry is stale: the job moved on
    if flt.queue is not None and info.queue != flt.queue:
        return False
    # A registry function's jobs answer to its import path and to its registry name (`ns/name`, js_fn).
    if flt.function is not None and flt.function not in (info.func_name, info.raw.get("js_fn")):
        return False
    if flt.namespace is not None and (info.namespace or DEFAULT_NAMESPACE) != flt.namespace:
        return False
    if flt.trigger is not None and info.trigger != flt.trigger:
        return False
    created = info.created_ms
    if flt.created_after_ms is not None and (created is None or created < flt.created_after_ms):
        return False
    return flt.created_before_ms is None or (created is not None and created <= flt.created_before_ms)


def list_jobs(conn: redis.Redis, config: Config, flt: JobFilter, cursor: str | None = None,
              limit: int = 50) -> tuple[list[JobInfo], str | None]:
    """One page of jobs and the cursor of the next page (None when the listing is exhausted)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be 1-{MAX_LIMIT}")
    flt = flt.validated()
    layout = Layout.of(conn, config.key_prefix)
    kind, source = _source(conn, layout, flt)
    pos = _decode_cursor(cursor, kind, flt, isinstance(source, _MergeSource)) if cursor else None
    batch = min(max(limit * 2, 50), 1000)
    page: list[JobInfo] = []
    pending: list[_Candidate] = []
    last: _Candidate | None = None

    def drain() -> _Candidate | None:
        """Read the pending candidates' hashes; the candidate that filled the page, or None."""
        nonlocal last
        pipe = conn.pipeline(transaction=False)
        for cand in pending:
            pipe.hgetall(layout.job(cand.queue, cand.job_id))
        for cand, raw in zip(pending, pipe.execute(), strict=True):
            last = cand
            if raw:
                info = JobInfo.from_hash(cand.job_id, raw, config.max_attempts)
                if _matches(info, flt):
                    page.append(info)
                    if len(page) == limit:
                        pending.clear()
                        return cand
        pending.clear()
        return None

    for examined, cand in enumerate(source.candidates(pos, batch), 1):
        pending.append(cand)
        if (len(pending) >= limit - len(page) or len(pending) >= batch) and (full := drain()) is not None:
            return page, _encode_cursor(kind, flt, full.order)
        if examined >= defaults.LIST_SCAN_BUDGET:
            drain()
            if last is not None:
                return page, _encode_cursor(kind, flt, last.order)
    if pending and (full := drain()) is not None:
        return page, _encode_cursor(kind, flt, full.order)
    return page, None
