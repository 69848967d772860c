"""Time: when jobs run. Cron expressions and intervals (`cron`, pure logic), cron schedules (`schedules/`), and
the scheduler's timing passes, one `run_once()` each: promoting due jobs (`promotion`), firing due schedules
(`cron_firer`) and the lock that lets one scheduler lead (`leader`). workers/scheduler.py runs them, with the
maintenance passes of jobsvc/maintenance/."""
