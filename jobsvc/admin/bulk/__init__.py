"""Bulk and maintenance operations: retry or requeue many jobs, prune, the expired-job sweep (ttl_sweep), the
cancel-stale sweep, the integrity sweep.

Every change is made by a Lua script on a chunk of at most BULK_CHUNK ids (bulk_requeue.lua, prune.lua,
sweep_ttl.lua, cancel_stale.lua, sweep_index.lua, sweep_orphans.lua, sweep_gauges.lua) that re-checks each
job's state and the filter, so a job that moved on since its id was read is skipped, never damaged. Candidates come from
the structure of the requested state (its registry), read in pages by rank; a job that entered the state
after the operation began is left alone, so an operation always ends (a bulk retry does not chase the
jobs it requeued when they fail again). Only the integrity sweep scans keys (SCAN rq:job:*, to find job
hashes that no structure holds). Every operation is safe to repeat: a second identical call changes 0.

`progress(done, total)` is called after each chunk: ids looked at so far, out of an estimate.

The code is split by concern: `common` (BulkFilter and its validation, BulkResult, the progress callback, the
chunk and queue helpers every operation uses), `operations` (bulk_retry, requeue_quarantined, prune,
ttl_sweep), `stale` (cancel_stale: jobs queued or running too long) and `integrity` (integrity_sweep,
IntegrityWalk, IntegrityReport). This package re-exports them.
"""
from __future__ import annotations

from .common import SAMPLE_SIZE, BulkFilter, BulkResult, Progress
from .integrity import CATEGORIES, IntegrityReport, IntegrityWalk, integrity_sweep
from .operations import bulk_retry, prune, requeue_quarantined, ttl_sweep
from .stale import cancel_stale

__all__ = ["CATEGORIES", "SAMPLE_SIZE", "BulkFilter", "BulkResult", "IntegrityReport", "IntegrityWalk", "Progress",
           "bulk_retry", "cancel_stale", "integrity_sweep", "prune", "requeue_quarantined", "ttl_sweep"]
