"""The scheduler's background integrity pass: the integrity sweep (jobsvc/admin/bulk/: IntegrityWalk) run a bounded
step at a time, repairing as it goes, so that drift is repaired without an operator. Drift comes from what
jobsvc's scripts never see: RQ's own tools moving or deleting jobs jobsvc counts (`rq empty`, `rq requeue`,
`Job.cancel()`, RQ workers of a mixed fleet, RQ's registry cleaning), a Redis key expiring before the TTL sweep
reached it, a bug. Counts per queue never wait for it (jobsvc/engine/stats.py reads them off the structures); the
breakdowns by namespace and function (the gauges) do.

The walk's position (a SCAN cursor, the queue reached, its recount) is kept in memory by the leading
scheduler: a new leader starts a walk from the beginning, which is always safe (every step re-checks in Lua)."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import redis

from .. import defaults
from ..admin.bulk import IntegrityReport, IntegrityWalk
from ..config import Config
from ..engine import directory
from ..engine.connection import is_cluster
from ..errors import Conflict

log = logging.getLogger("jobsvc.integrity")


@dataclass
class PassResult:
    looked_at: int  # ids or keys this pass looked at (about max_jobs, less at the end of a walk)
    walk_done: bool  # this pass finished a whole walk; `report` is that walk's
    report: IntegrityReport  # the current walk's findings so far (all repaired), or the finished walk's
    repaired: dict[str, int] = field(default_factory=dict)  # problems this pass found (and repaired), by category


class IntegrityPass:
    """A bounded part of the integrity sweep per `run_once()`, with fix: steps of the walk until `max_jobs` ids
    or keys were looked at. A step is one script call: at most `chunk` ids, or one queue's whole recount when it
    holds at most RECOUNT_IN_ONE_STEP jobs, so a pass may end one step past its bound. The pass that finds the
    walk ended says so (walk_done); the next one starts a new walk. Queued jobs' lanes are not read
    (IntegrityWalk check_lanes=False): that costs O(lane) per job; `jobsvc sweep` does it."""

    def __init__(self, conn: redis.Redis, config: Config, max_jobs: int = defaults.INTEGRITY_MAX_JOBS,
                 chunk: int = defaults.BULK_CHUNK):
        self.redis, self.config, self.max_jobs, self.chunk = conn, config, max_jobs, chunk
        self._walk: IntegrityWalk | None = None
        self._steps: Iterator[int] | None = None
        self.walks = 0  # whole walks finished
        # On a Redis Cluster a step of the id directory's leftover sweep per pass too (jobsvc/engine/directory.py).
        self._ids = directory.LeftoverSweep(conn, config.key_prefix) if is_cluster(conn) else None
        self._copies = is_cluster(conn)  # rewrite the disabled functions' copies at each walk's end (`_sync_copies`)

    def run_once(self) -> PassResult:
        if self._walk is None or self._steps is None:
            self._walk = IntegrityWalk(self.redis, self.config, fix=True, chunk=self.chunk, check_lanes=False)
            self._steps = self._walk.steps()
        walk = self._walk
        before = dict(walk.report.counts)
        looked_at, done = 0, False
        while looked_at < self.max_jobs:
            try:
                looked_at += next(self._steps)
            except StopIteration:
                done = True
                break
            except BaseException:
                self._walk = self._steps = None  # a failed step ends its walk: the next pass starts a new one
                raise
        repaired = {c: n - before[c] for c, n in walk.report.counts.items() if n != before[c]}
        if self._ids is not None:
            seen, removed = self._ids.step(self.max_jobs)
            looked_at += seen
            if removed:
                repaired["id_directory_leftover"] = removed
        if repaired:
            log.info("integrity pass repaired %s", ", ".join(f"{n} {c}" for c, n in sorted(repaired.items())))
        if done:
            self.walks += 1
            self._walk = self._steps = None
            self._sync_copies()
        return PassResult(looked_at, done, walk.report, repaired)

    def _sync_copies(self) -> None:
        """On a Redis Cluster, every queue's copy of the disabled functions' set written again from the registry's
        (jobsvc/engine/functions/copies.py; one functions_copy.lua call per queue, one round trip per master): a
        copy a failover lost, or that a registry writer killed half-way left stale, is repaired without an operator
        or a registry write. Once per walk, not per pass: each call rewrites its queue's copy (and a new queue's
        first enqueue writes its own, jobsvc/engine/enqueueing.py)."""
        if not self._copies:
            return
        from ..engine.functions import copies  # only on a cluster

        try:
            copies.sync(self.redis, self.config.key_prefix)
        except Conflict:  # the master set kept changing: each of those changes writes the copies itself
            log.info("integrity pass: the disabled functions kept changing; their copies are left to those changes")

    def run_walk(self) -> IntegrityReport:
        """Passes until the current walk ends (a new one if none is under way); returns its report. For tests and
        for callers that want a converged store now."""
        while True:
            result = self.run_once()
            if result.walk_done:
                return result.report
