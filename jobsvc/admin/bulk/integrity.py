"""The integrity sweep: every job where its state says and nowhere else, jobsvc following what RQ's own tools
did, the gauges counting what is there. `IntegrityWalk` is the walk as bounded steps; `integrity_sweep` runs
one walk at once (`jobsvc sweep`, the API), `IntegrityPass` (jobsvc/maintenance/integrity.py) a few steps per scheduler
pass. On a Redis Cluster the walk is the same, queue by queue, each script call in its queue's slot: the job
hashes are found by one SCAN of every master (its queues' job keys), the structures and the recount are each
queue's own (its timeline and lease index included: docs/cluster.md 2.6)."""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from ... import defaults
from ...config import Config
from ...engine import scripts
from ...engine.connection import text
from ...engine.keys import RQ_JOB, Keys
from ...engine.layout import Layout
from ...engine.states import State
from ...errors import ValidationError
from ...validation import QUEUE_NAME, is_name
from ..listing import zpage_after
from .common import SAMPLE_SIZE, Progress, chunk_size, queues

# The registries of ended states a walk checks (after each queue's lanes and timeline).
_REGISTRIES = (State.COMPLETED, State.FAILED, State.QUARANTINED, State.CANCELLED)
# Ids read per lane page when the integrity sweep takes a snapshot of a lane.
_LANE_PAGE = 10_000

CATEGORIES: dict[str, str] = {
    "stale_lease": "id in the lease index whose job is not running, or is running without a token "
                   "(fix: removed; a token-less running job's lease is made due, for the reaper)",
    "unleased_running": "running job missing from the lease index (fix: added with its own lease expiry)",
    "wrong_structure": "id in a lane, registry, timeline or created index that does not match its job's state or "
                       "queue, e.g. a job in two registries (fix: removed; the structure of its state keeps it)",
    "missing_hash": "id whose job hash is gone, in a lane, registry, timeline, the lease index or a created index "
                    "(fix: removed)",
    "orphan": "job hash missing from the structure of its state (fix: a queued job is pushed back onto its lane, "
              "a scheduled one re-added to the timeline, a finished one to its registry)",
    "unindexed": "job hash missing from its queue's created index (fix: added)",
    "rq_moved": "job jobsvc counts whose RQ status RQ's own code changed: an RQ worker of a mixed fleet ran it, "
                "`rq requeue` put it back, RQ's Job.cancel cancelled it (fix: its jobsvc state and gauge follow "
                "RQ; one put back after it had ended starts with fresh attempts)",
    "gauge_drift": "group whose gauge disagrees with a recount of its jobs (fix: set to the recount)",
}


@dataclass
class IntegrityReport:
    fixed: bool
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    samples: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in CATEGORIES})
    scanned: int = 0  # job hashes looked at
    busy_groups: list[str] = field(default_factory=list)  # gauges that moved while counted: not judged, run again

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def clean(self) -> bool:
        return self.total == 0

    def add(self, category: str, ids: Sequence[str]) -> None:
        self.counts[category] += len(ids)
        room = SAMPLE_SIZE - len(self.samples[category])
        if room > 0:
            self.samples[category] += list(ids[:room])


def integrity_sweep(conn: redis.Redis, config: Config, fix: bool = False, progress: Progress = None,
                    chunk: int = defaults.BULK_CHUNK, queue: str | None = None,
                    namespace: str | None = None) -> IntegrityReport:
    """Check (and with fix=True repair) that every job sits where its state says and nowhere else, that jobsvc
    follows what RQ's own tools did to the jobs it counts, and that the gauges count what is there: one whole
    IntegrityWalk, run at once. Cost grows with the data stored; the scheduler runs the same walk a bounded
    step at a time in the background (jobsvc/maintenance/integrity.py), `jobsvc sweep` and the API run it on demand.
    queue / namespace scope the walk (see IntegrityWalk)."""
    walk = IntegrityWalk(conn, config, fix=fix, chunk=chunk, queue=queue, namespace=namespace)
    done = 0
    total = int(conn.dbsize())
    for n in walk.steps():
        done += n
        if progress:
            progress(done, max(total, done))
    return walk.report


class IntegrityWalk:
    """One walk of the integrity sweep as a sequence of bounded steps: `steps()` yields, after each script call
    (at most `chunk` ids), how many ids or keys it looked at, so a caller may run the walk at once
    (integrity_sweep) or a few steps at a time with anything in between (IntegrityPass). Every change is made
    by a Lua script that re-checks each job, so a walk paused for a while never damages what moved meanwhile.
    1. job hashes (SCAN rq:job:*): each follows RQ's status when RQ's own code moved it (sweep_orphans.lua),
       and sits in the structure of its state and in its created index;
    2. every structure of ids (lanes, timelines, registries, the lease index): each id's job exists and is in
       the state the structure stands for;
    3. per queue, the created index: ids without a hash, and a recount of every group's jobs per state,
       compared with (and with fix set to) its gauge: in one step (sweep_recount.lua) for a queue of at most
       `recount_max` jobs, else chunked, judging only groups whose gauges did not move meanwhile.
    check_lanes: read each lane into memory once (one snapshot per walk) to check that every queued job is in
    its lane; without it (the background pass) a queued job's lane is not looked at, which would cost O(lane)
    per job.
    queue / namespace (None: all) scope the walk: only job hashes of that queue and namespace are judged, and in a
    structure only the ids whose job is in scope (an id whose job hash is gone belongs to no scope: an unscoped
    walk reports it). With a namespace the lanes (lists shared by every namespace of a queue) are not read (a
    queued job missing from its lane is still found in step 1), and only its groups' gauges are recounted."""

    def __init__(self, conn: redis.Redis, config: Config, fix: bool, chunk: int = defaults.BULK_CHUNK,
                 check_lanes: bool = True, recount_max: int = defaults.RECOUNT_IN_ONE_STEP,
                 queue: str | None = None, namespace: str | None = None):
        self.conn, self.config, self.fix, self.check_lanes = conn, config, fix, check_lanes
        self.scope_queue, self.scope_ns = _scope(queue, namespace)
        self.chunk = chunk_size(chunk)
        self.recount_max = recount_max
        self.keys = Keys(config.key_prefix)
        self.layout = Layout.of(conn, config.key_prefix)
        self.report = IntegrityReport(fixed=fix)
        self.queues: set[str] = set()
        self._seen: dict[str, set[str]] = defaultdict(set)  # SCAN may return a key twice: report each id once
        self._extra: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)  # unindexed jobs, for the recount
        self._lanes: dict[str, set[str]] = {}

    def steps(self) -> Iterator[int]:
        if self.scope_queue is not None:
            self.queues = {self.scope_queue}
        elif self.layout.cluster:
            self.queues = set(self.layout.cluster_queues(self.conn))
        else:
            self.queues = set(queues(self.conn, self.keys, None))
            self.queues |= {text(g).split("|", 1)[0] for g in self.conn.smembers(self.keys.groups)}
        yield from self._cluster_job_hashes() if self.layout.cluster else self._job_hashes()
        scoped = self.scope_queue is not None or self.scope_ns is not None
        walk = self._zset_in_scope if scoped else self._zset
        key = self.layout.key
        for queue in sorted(self.queues):
            if self.scope_ns is None:
                used = {int(p) for p in self.conn.smembers(key("lanes", queue, queue))}
                for prio in sorted({defaults.PRIORITY} | used):
                    yield from self._list(self.layout.lane(queue, prio), "queued", queue, prio)
            for expect, reg in ((State.SCHEDULED, key("scheduled_in", queue, queue)),
                                *((s, self.layout.registry(s, queue)) for s in _REGISTRIES)):
                yield from (self._zset_in_scope(reg, expect.value, queue) if self.scope_ns is not None
                            else self._zset(reg, expect.value, queue))
            if self.layout.cluster:  # each queue's own timeline and lease index
                yield from walk(key("scheduled", queue), State.SCHEDULED.value, queue)
                yield from walk(key("leases", queue), "lease", queue, wrong="stale_lease")
        if not self.layout.cluster:  # the scheduler's timeline and the lease index hold every queue's jobs
            yield from walk(self.keys.scheduled, State.SCHEDULED.value, "")
            yield from walk(self.keys.leases, "lease", "", wrong="stale_lease")
        for queue in sorted(self.queues):
            yield from (self._recount_in_chunks(queue, self._extra.get(queue, Counter())) if self.scope_ns is not None
                        else self._recount(queue))

    def _in_scope(self, origin: str | None, ns: str | None) -> bool:
        return ((self.scope_queue is None or origin == self.scope_queue)
                and (self.scope_ns is None or (ns or "default") == self.scope_ns))

    def _scoped(self, ids: list[str], queue: str) -> list[str]:
        """The ids whose job is in the walk's scope (a job hash that is gone is in none); `queue`: where their
        structure is (on a cluster, their jobs' slot)."""
        pipe = self.conn.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(self.layout.job(queue, job_id), "origin", "js_ns")
        return [i for i, (origin, ns) in zip(ids, pipe.execute(), strict=True)  # one HMGET each
                if origin and self._in_scope(text(origin), text(ns) if ns else None)]

    def _zset_in_scope(self, key: str, expect: str, queue: str, wrong: str = "wrong_structure") -> Iterator[int]:
        """_zset for a scoped walk: each page's in-scope ids are judged (sweep_index.lua's ids mode)."""
        for ids in _walk_by_score(self.conn, key, self.chunk):
            mine = self._scoped(ids, queue)
            if mine:
                self._index_reply(scripts.call(self.conn, "sweep_index", (*self._slot(queue), key), [
                    self.keys.prefix, int(self.fix), "zset", expect, queue, "", 0, "ids", *mine]), wrong)
            yield len(ids)

    def _slot(self, queue: str) -> tuple[str, ...]:
        """A script call's scope for a structure of `queue` ('' for every queue: a single Redis's global ones)."""
        return self.layout.scope(queue or None)

    def _add(self, category: str, ids: Sequence[str]) -> None:
        fresh = [i for i in ids if i not in self._seen[category]]
        self._seen[category].update(fresh)
        self.report.add(category, fresh)

    # 1. job hashes -> the structures of their states.
    def _job_hashes(self) -> Iterator[int]:
        cursor = 0
        while True:
            cursor, found = self.conn.scan(cursor, match="rq:job:*", count=self.chunk, _type="hash")
            ids = [text(k)[len("rq:job:"):] for k in found]
            for start in range(0, len(ids), self.chunk):
                self._hash_chunk(ids[start:start + self.chunk], None)
            # A SCAN call looks at about `chunk` keys, job hashes or not: that is its cost.
            yield max(len(ids), self.chunk)
            if cursor == 0:
                return

    def _cluster_job_hashes(self) -> Iterator[int]:
        """_job_hashes on a Redis Cluster: a SCAN of each master for its queues' job hashes (`<prefix>{<queue>}:
        rq:job:<id>`: a queue name holds no brace), each page's ids judged queue by queue, in their slot."""
        cluster = cast("redis.RedisCluster", self.conn)
        match, lead = f"{self.keys.prefix}{{*}}:{RQ_JOB}*", len(self.keys.prefix) + 1
        for node in sorted(cluster.get_primaries(), key=lambda n: n.name):
            cursor, master = 0, cluster.get_redis_connection(node)
            while True:
                cursor, found = master.scan(cursor, match=match, count=self.chunk, _type="hash")
                by_queue: dict[str, list[str]] = defaultdict(list)
                for name in (text(k) for k in found):
                    queue, _, rest = name[lead:].partition("}:")
                    by_queue[queue].append(rest[len(RQ_JOB):])
                for queue, ids in sorted(by_queue.items()):
                    for start in range(0, len(ids), self.chunk):
                        self._hash_chunk(ids[start:start + self.chunk], queue)
                yield max(len(found), self.chunk)
                if cursor == 0:
                    break

    def _hash_chunk(self, part: list[str], queue: str | None) -> None:
        """Judge job hashes (sweep_orphans.lua); `queue`: theirs on a cluster (one slot), None on one Redis."""
        pipe = self.conn.pipeline(transaction=False)
        for job_id in part:
            pipe.hmget(self.layout.job(queue, job_id), "js_state", "origin", "js_priority", "js_group", "js_ns")
        args: list[Any] = [self.keys.prefix, int(self.fix), self.config.result_ttl, self.config.failure_ttl,
                           defaults.WAKE_TOKENS_MAX]
        info: dict[str, tuple[str | None, str, str]] = {}
        for job_id, (raw_st, raw_origin, prio, group, ns) in zip(part, pipe.execute(), strict=True):  # one HMGET each
            if not raw_st or not raw_origin or not self._in_scope(text(raw_origin), text(ns) if ns else None):
                continue
            st, origin = text(raw_st), text(raw_origin)
            self.queues.add(origin)
            info[job_id] = (text(group) if group else None, st, origin)
            checked = st != "queued" or not self.check_lanes or self._in_lane(
                self.layout.lane(origin, int(prio or defaults.PRIORITY)), job_id)
            args += [job_id, int(checked)]
        self.report.scanned += len(part)
        if not info:
            return
        reply = scripts.call(self.conn, "sweep_orphans", self.layout.scope(queue), args)
        sizes = [int(v) for v in reply[:4]]
        rest = [text(v) for v in reply[4:]]
        lists = []
        for n in sizes:
            lists.append(rest[:n])
            rest = rest[n:]
        orphans, unleased, unindexed, moved = lists
        self._add("orphan", orphans)
        self._add("unleased_running", unleased)
        self._add("rq_moved", moved)
        if not self.fix:
            for job_id in unindexed:
                group, st, origin = info[job_id]
                if group and job_id not in self._seen["unindexed"]:
                    self._extra[origin][(group, st)] += 1
        self._add("unindexed", unindexed)

    def _in_lane(self, lane: str, job_id: str) -> bool:
        if lane not in self._lanes:
            members: set[str] = set()
            start = 0
            while True:
                page = self.conn.lrange(lane, start, start + _LANE_PAGE - 1)
                members.update(text(v) for v in page)
                if len(page) < _LANE_PAGE:
                    break
                start += _LANE_PAGE
            self._lanes[lane] = members
        return job_id in self._lanes[lane]

    # 2. every structure of ids -> the jobs they name.
    def _zset(self, key: str, expect: str, queue: str, wrong: str = "wrong_structure") -> Iterator[int]:
        start = 0
        while True:
            reply = scripts.call(self.conn, "sweep_index", (*self._slot(queue), key), [
                self.keys.prefix, int(self.fix), "zset", expect, queue, "", 0, "range", start,
                start + self.chunk - 1])
            removed, read = self._index_reply(reply, wrong)
            yield read
            if read < self.chunk:
                return
            start += read - removed

    def _list(self, key: str, expect: str, queue: str, priority: int) -> Iterator[int]:
        # From the tail, by negative index: workers pop at the head, which does not move the pages still to read.
        end = -1
        while True:
            reply = scripts.call(self.conn, "sweep_index", (*self._slot(queue), key), [
                self.keys.prefix, int(self.fix), "list", expect, queue, priority, 0, "range", end - self.chunk + 1,
                end])
            removed, read = self._index_reply(reply, "wrong_structure")
            yield read
            if read < self.chunk:
                return
            end = end - read + removed

    def _index_reply(self, reply: list[Any], wrong: str, recount: dict[str, Counter[str]] | None = None
                     ) -> tuple[int, int]:
        """Report a sweep_index.lua reply; returns (ids removed, ids read)."""
        removed, read, n_missing, n_wrong, n_counts = (int(v) for v in reply[:5])
        rest = reply[5:]
        self._add("missing_hash", [text(v) for v in rest[:n_missing]])
        self._add(wrong, [text(v) for v in rest[n_missing:n_missing + n_wrong]])
        if recount is not None:
            counts = rest[n_missing + n_wrong:]
            for i in range(0, 3 * n_counts, 3):
                recount[text(counts[i])][text(counts[i + 1])] += int(counts[i + 2])
        return removed, read

    # 3. per queue: the created index, and the gauges against a recount of the jobs it holds.
    def _recount(self, queue: str) -> Iterator[int]:
        extra = self._extra.get(queue, Counter())
        args: list[Any] = [self.keys.prefix, int(self.fix), queue, self.recount_max, len(extra)]
        for (group, st), n in extra.items():
            args += [group, st, n]
        reply = scripts.call(self.conn, "sweep_recount", self._slot(queue), args)
        if reply:  # empty: the queue is too big for one step
            _, read, n_missing, n_wrong, n_drift = (int(v) for v in reply[:5])
            rest = [text(v) for v in reply[5:]]
            self._add("missing_hash", rest[:n_missing])
            self._add("wrong_structure", rest[n_missing:n_missing + n_wrong])
            self._add("gauge_drift", rest[n_missing + n_wrong:n_missing + n_wrong + n_drift])
            yield read
            return
        yield from self._recount_in_chunks(queue, extra)

    def _recount_in_chunks(self, queue: str, extra: Counter[tuple[str, str]]) -> Iterator[int]:
        names = sorted(n for n in (text(g) for g in self.conn.smembers(self.layout.key("groups", queue)))
                       if n.split("|", 1)[0] == queue and (self.scope_ns is None or n.split("|")[1] == self.scope_ns))
        before = _gauges(self.conn, self.layout, queue, names)
        recount: dict[str, Counter[str]] = defaultdict(Counter)
        created = self.layout.key("created", queue, queue)
        for ids in _walk_by_score(self.conn, created, self.chunk):
            mine = ids if self.scope_ns is None else self._scoped(ids, queue)
            if mine:
                reply = scripts.call(self.conn, "sweep_index", (*self._slot(queue), created), [
                    self.keys.prefix, int(self.fix), "zset", "any", queue, "", 1, "ids", *mine])
                self._index_reply(reply, "wrong_structure", recount)
            yield len(ids)
        for (group, st), n in extra.items():
            recount[group][st] += n
        after = _gauges(self.conn, self.layout, queue, names)
        drift = []
        for group in sorted(set(names) | set(recount)):
            have = before.get(group, {})
            want = {s: n for s, n in recount.get(group, Counter()).items() if n}
            if have == want:
                continue
            if after.get(group, {}) != have:
                self.report.busy_groups.append(group)
                continue
            if self.fix and not _set_gauge(self.conn, self.layout, queue, group, have, want):
                self.report.busy_groups.append(group)
                continue
            drift.append(group)
        self._add("gauge_drift", drift)


def _scope(queue: str | None, namespace: str | None) -> tuple[str | None, str | None]:
    if queue is not None and not is_name(queue, QUEUE_NAME):
        raise ValidationError(f"bad queue name {queue!r}")
    if namespace is not None and (not isinstance(namespace, str) or namespace == ""):
        raise ValidationError("namespace must be a non-empty string")
    return queue, namespace


def _walk_by_score(conn: redis.Redis, key: str, chunk: int) -> Iterator[list[str]]:
    """A sorted set's members in pages, by a (score, member) cursor: ids removed or added meanwhile never shift
    a page, so no member present throughout is missed or repeated, and each page costs O(log N + chunk)
    however many members share a score (zpage_after.lua)."""
    # withscores: (member, score) pairs; redis-py's one return type covers the command without it too.
    first = cast("list[tuple[bytes, float]]", conn.zrange(key, 0, chunk - 1, withscores=True))
    page = [(s, text(m)) for m, s in first]
    while page:
        yield [m for _, m in page]
        if len(page) < chunk:
            return
        page = zpage_after(conn, key, False, page[-1], chunk)


def _gauges(conn: redis.Redis, layout: Layout, queue: str, groups: Sequence[str]) -> dict[str, dict[str, int]]:
    pipe = conn.pipeline(transaction=False)
    for g in groups:
        pipe.hgetall(layout.key("count", queue, g))
    out = {}
    for g, raw in zip(groups, pipe.execute(), strict=True):  # one HGETALL reply per group
        out[g] = {text(k): int(v) for k, v in raw.items() if int(v)}
    return out


def _set_gauge(conn: redis.Redis, layout: Layout, queue: str, group: str, expected: dict[str, int],
               new: dict[str, int]) -> bool:
    args: list[Any] = [layout.prefix, group, len(expected)]
    for s, n in expected.items():
        args += [s, n]
    args.append(len(new))
    for s, n in new.items():
        args += [s, n]
    return bool(scripts.call(conn, "sweep_gauges", layout.scope(queue), args))

