"""Cron schedules: jobs fired at the times of a cron expression (in an IANA timezone) or a fixed interval,
by the leading scheduler process (`CronFirer` in jobsvc/scheduling/cron_firer.py).

    >>> schedules = Schedules(client)
    >>> schedules.create(id="nightly-report", cron="0 3 * * *", timezone="Europe/Paris",
    ...                  function="app.reports.nightly", kwargs={"full": True}, misfire="run_once")
    >>> schedules.execute("nightly-report")          # run now; returns the job id
    >>> schedules.runs("nightly-report")              # ([{job_id, scheduled_ms, status, ...}, ...], cursor)

A schedule names its function by import path (`app.tasks.f`) or as a registry function (`ns/name`,
jobsvc/engine/functions/: its defaults apply, and a disabled function's fires are skipped and recorded).

Each fire's job id is `<schedule id>:<fire time, epoch ms>`. The next fire time lives in Redis (the
schedule's hash and the `schedules:due` index), and a pass enqueues a schedule's fires and moves its next
fire time on in one MULTI/EXEC under WATCH of the schedule: a restart neither skips nor repeats a fire, a
crash cannot separate the two, and of two schedulers that both think they lead only one pass's fires land.

Misfires (fires more than `misfire_grace` seconds late: the scheduler was down): `skip` drops them,
`run_once` runs one job for all of them (the id of the first), `run_all` runs them all, at most
`max_catchup`. Overlap `skip` skips a fire (recorded as skipped) while the schedule's previous job is still
queued, scheduled (retrying) or running.

Redis (under the key prefix): `schedule:<id>` hash (def JSON, version, created_ms, updated_ms, next_ms,
last_job, last_fire_ms), `schedule:<id>:stats` (runs, completed, failed, skipped, missed, runtime_ms,
runtime_n; completed/failed are counted by complete.lua, fail.lua and reap_expired.lua from the job's
`js_schedule` field), `schedule:<id>:runs` (run ids by scheduled time) and `schedule:<id>:run` (run
records), `schedules` (listing index), `schedules:due` (next fire ms), `schedules:pending` (runs whose
outcome is not yet copied into the run history). Schedule ids cannot contain ':', so no id can spell another
schedule's `:stats` / `:runs` / `:run` key, and no id can reach the fixed `schedules:*` keys (jobsvc/engine/keys.py).

The code is split by concern: `spec` (ScheduleSpec, Schedule: the definition and its validation), `store`
(create, change, delete, read, list), `runs` (run history, record_runs), `firing` (job_for, execute,
fire_due) and `sync` (sync, schedules_file). `Schedules` joins them into one class.
"""
from __future__ import annotations

from ...engine.connection import redis_ms
from ...engine.versioned import SyncReport
from .firing import FireResult, ScheduleFiring, check_backoff
from .runs import ScheduleRuns
from .spec import (
    ACTIVE_STATES,
    DESCRIPTION_MAX,
    OVERLAP_POLICIES,
    SCHEDULE_ID,
    TIMING_FIELDS,
    Schedule,
    ScheduleSpec,
    iso,
)
from .store import ScheduleStore
from .sync import ScheduleSync, schedules_file


class Schedules(ScheduleFiring, ScheduleRuns, ScheduleSync):
    """Create, read, change, delete, run and list cron schedules (the core of /schedules)."""


__all__ = ["ACTIVE_STATES", "DESCRIPTION_MAX", "OVERLAP_POLICIES", "SCHEDULE_ID", "TIMING_FIELDS", "FireResult",
           "Schedule", "ScheduleSpec", "ScheduleStore", "Schedules", "SyncReport", "check_backoff", "iso",
           "redis_ms", "schedules_file"]
