"""The scheduler's maintenance passes, one module per pass, each a small class with `run_once()` that does a
bounded amount of work: `reaper` (take back jobs whose lease expired), `ttl_sweeper` (delete finished jobs whose
TTL passed) and `integrity` (repair drift a bounded step at a time, the per-group gauges' recount included).
The sweeps themselves live in jobsvc/admin/bulk/, where operators run them by hand too (`jobsvc sweep`, the API);
these classes bound and repeat them. workers/scheduler.py runs them while it leads."""
