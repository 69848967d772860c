"""The job lifecycle core: what a job is (`job`, `states`, `backoff`), where it lives in Redis (`keys`, RQ's format
in `serialization`), how it is written (`enqueueing`, the `client` Python API) and moved between states (the Lua
scripts of jobsvc/lua/, run by `scripts`, their replies decoded by `replies`; `leases` for workers), plus what job
code can ask of its worker (`context`), the per-group gauges every surface counts from (`stats`), the versioned
store (`versioned`) and the functions registry built on it (`functions/`).

Everything else in jobsvc builds on this package; it imports nothing of jobsvc's but the top-level modules
(config, defaults, errors, validation, allowlist) and the URL guard (jobsvc/http/urlguard/) that checks handler
URLs where jobs are written."""
