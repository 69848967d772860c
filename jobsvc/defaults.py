"""Every tunable default of jobsvc, each with what it bounds and why."""

# Redis key prefix for jobsvc's own keys; RQ's keys keep their `rq:` names so RQ tools still work.
KEY_PREFIX = "jobsvc:"

# Lease length in seconds: how long a silent worker keeps a job before the reaper takes it back.
LEASE_TTL = 30.0
# Heartbeat period in seconds: a third of the lease, so two missed beats still keep the lease.
HEARTBEAT_INTERVAL = 10.0
# Lease losses before a job is quarantined: a job that kills or hangs its worker this often is poison.
MAX_LEASE_LOSSES = 3

# Attempts per job, including the first run (1 = never retried).
MAX_ATTEMPTS = 3
MAX_ATTEMPTS_LIMIT = 20
# Backoff between attempts: kind, base and cap in seconds; full jitter spreads a retry storm.
BACKOFF = "exponential"
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0
BACKOFF_JITTER = True

# Priority 1 (first) .. 10 (last); 5 is RQ's own list, so plain RQ jobs sit in the middle.
PRIORITY = 5
PRIORITY_MIN = 1
PRIORITY_MAX = 10
# A pull job (POST /jobs with trigger pull) waits in its queue's pull lanes: its js_priority is its priority
# plus this, above every real priority, so lanes 11-20 hold pull jobs only. Python workers never pop them,
# pull claims pop nothing else (claim.lua); JobInfo shows the priority without it.
PULL_LANE_OFFSET = PRIORITY_MAX

# Job run time limit in seconds (RQ's default); -1 means none.
JOB_TIMEOUT = 180
# Seconds a finished job and its result are kept (RQ's default).
RESULT_TTL = 500
# Seconds a failed job is kept (RQ's default: one year).
FAILURE_TTL = 31_536_000
# A finished job's keys get no Redis expiry: its registry scores it with its TTL's end, and the scheduler's TTL
# sweep deletes it then and uncounts it from its group's gauge (no EXPIRE per job on the hot path; a key that
# expired on its own would leave its gauge and indexes behind). Without a running scheduler nothing is deleted.
# Seconds an idempotency key keeps returning the same job.
IDEMPOTENCY_TTL = 86_400

# Seconds an idle worker blocks on its wake list before it looks at the queues anyway;
# bounds how late a job pushed by plain RQ (which sends no wake-up) starts.
IDLE_WAIT = 1.0

# Batches (workers/batching.py). A worker claims several jobs per call and records several completions per call
# when its jobs are short: Redis pays one round trip (about 40 us of its CPU) per call, not per job, and the
# gauges, counters and index writes of a batch are summed (flush_counters in _lib.lua). The size it asks for is
# what it runs in BATCH_WINDOW seconds by its recent mean run time, between 1 and CLAIM_BATCH: so a claimed job
# starts within about BATCH_WINDOW (far inside its lease), a job of a deep queue waits at most that long behind
# another worker's batch, and a completion is recorded at most BATCH_WINDOW after its job ended (sooner when the
# batch runs out). Slow jobs (one run > BATCH_WINDOW) go one at a time, as without batches.
CLAIM_BATCH = 50
# Durability across a failover (JOBSVC_REPLICA_WAIT, docs/cluster.md): replicas an enqueue or a job's outcome
# waits for (Redis WAIT, in the same round trip) before it returns; 0: none (Redis replicates asynchronously).
REPLICA_WAIT = 0
REPLICA_WAIT_LIMIT = 16
REPLICA_WAIT_TIMEOUT_MS = 500  # past it the call returns anyway, with a WARNING: the write is on the master only
CLAIM_BATCH_LIMIT = 1000
BATCH_WINDOW = 0.05
# Wake-up tokens kept per queue: enough for every idle worker, bounded so a busy queue cannot grow it.
WAKE_TOKENS_MAX = 256
# Seconds a stopping worker lets its in-flight job finish before handing it back.
SHUTDOWN_GRACE = 25.0
# Seconds past a job's timeout before the heartbeat gives up renewing a hung job's lease.
HUNG_GRACE = 5.0
# Seconds between a worker's own maintenance passes (reaping expired leases of dead peers).
WORKER_MAINTENANCE_INTERVAL = 5.0

# Scheduler leader lock in seconds: a standby takes over at most this long after the leader dies.
LEADER_TTL = 10.0
# Longest the scheduler sleeps with nothing due: bounds lock renewal and plain-RQ registry polling.
SCHEDULER_MAX_SLEEP = 1.0
# Below this many seconds to the next due time the scheduler sleeps locally, not in Redis,
# because Redis wakes blocked clients on its own 100 ms timer.
SCHEDULER_SPIN_BELOW = 0.1
# Jobs moved per script call by the promoter and the reaper: bounds how long one script blocks Redis.
PROMOTE_BATCH = 1000
REAP_BATCH = 500

# Jobs a listing may look at per call when filters are not served by an index: a sparse filter
# returns a short page and a cursor instead of scanning millions of jobs in one request.
LIST_SCAN_BUDGET = 5000

# Jobs per enqueue_many script call: bounds the size of one Redis command.
ENQUEUE_BATCH = 1000

# Ids per bulk / sweep script call (retry, prune, TTL and integrity sweeps), and the most a caller may ask:
# bounds how long one script blocks Redis (10-20 ms for 500 requeues or deletes on a 2-core machine).
BULK_CHUNK = 500
# Seconds between the scheduler's TTL sweeps: finished and failed jobs are deleted (and uncounted from
# their gauges) at most this long after their result / failure TTL (their keys get no Redis expiry).
SWEEP_INTERVAL = 60.0
# Seconds between the scheduler's background integrity passes (jobsvc/maintenance/integrity.py; 0: none). Each pass does
# a bounded step of the integrity sweep, so drift (jobs RQ's own tools moved or deleted behind jobsvc's back:
# `rq empty`, `rq requeue`, RQ workers of a mixed fleet, RQ's registry cleaning) is repaired without an
# operator. A walk looks at every job about three times (its hash, its lane or registry entry, its created
# index entry): with INTEGRITY_MAX_JOBS per pass, a store of 1,000 jobs is walked in 2 passes (10 s), one of
# 50,000 in 76 passes (about 6 minutes; measured: 18 ms per pass on average, 48 ms at most, 2-core machine).
INTEGRITY_INTERVAL = 5.0
# Ids or keys one background integrity pass looks at (about 4 script calls of BULK_CHUNK).
INTEGRITY_MAX_JOBS = 2000
# A queue whose created index holds at most this many jobs has its gauges recounted in one script
# (sweep_recount.lua: 11 ms for 5,000 jobs, about what a BULK_CHUNK script takes), which no transition can
# make stale; a bigger one is recounted in chunks, and a gauge that moves meanwhile is judged on a later walk
# (a busy big queue's gauges wait for a quiet moment, or for `jobsvc sweep`, which recounts without pausing).
RECOUNT_IN_ONE_STEP = 5000

# -- cron schedules and the functions registry (jobsvc/scheduling/schedules/, jobsvc/engine/functions/) ---------------
# Local times a cron search steps through to find the next fire instant: covers the local times a DST
# shift makes fire early or twice (3,600 for a per-second schedule and a one-hour shift), so it never loops.
CRON_SEARCH_LIMIT = 10_000
# Shortest interval schedule in seconds: a shorter one is a busy loop, not a schedule (cron with seconds
# also stops at one second).
SCHEDULE_MIN_INTERVAL = 1.0
# Seconds a fire may be late and still count as on time, not missed: longer than a leader failover
# (LEADER_TTL) plus a slow pass, so a failover alone never triggers a schedule's misfire policy.
SCHEDULE_MISFIRE_GRACE = 30.0
# Misfire policy when none is given: a missed period runs once (coalesced), neither lost nor repeated.
SCHEDULE_MISFIRE = "run_once"
# Missed fires a run_all schedule catches up at most after downtime: a per-second schedule down for a day
# must not flood its queue with 86,400 jobs.
SCHEDULE_MAX_CATCHUP = 100
# On-time fires one pass enqueues per schedule (the rest wait for the next pass), and due schedules per
# pass: bound how long one pass holds up promotions.
SCHEDULE_FIRES_PER_PASS = 100
SCHEDULE_BATCH = 100
# Run records kept per schedule (GET /schedules/{id}/runs): the oldest are dropped past this.
SCHEDULE_RUNS_KEPT = 1000
# Seconds between the scheduler's passes that copy finished schedule runs (status, times, error) from
# their jobs into the schedule's run history, before result_ttl deletes the jobs; and the runs one pass reads.
SCHEDULE_RECORD_INTERVAL = 1.0
SCHEDULE_RECORD_BATCH = 200
# Seconds before the scheduler tries again a schedule it could not fire (a bug, a corrupt definition): the
# error is logged once per try instead of the pass spinning on it.
SCHEDULE_ERROR_RETRY = 5.0

# -- metrics (jobsvc/admin/timeseries.py, jobsvc/admin/metrics.py, GET /metrics) ------------------------------------
# Upper bounds in ms of the run-duration and enqueue-to-start histogram buckets (+Inf is implied): from a
# no-op job's few ms to a 30-minute batch job, about 2.5x apart like Prometheus' own defaults. The Lua
# transitions get them from scripts.py, so changing them here re-buckets new observations only.
HISTOGRAM_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000,
                        1_800_000)
# Seconds a per-minute counter hash lives after its minute's first event: the dashboard charts the last
# hour; the second hour is slack for a clock that is a little off, and bounds memory to ~120 small hashes.
MINUTE_COUNTERS_TTL = 7200
# Minutes timeseries.per_minute() returns when not told: the dashboard's one-hour chart.
PER_MINUTE_WINDOW = 60
# Ids looked at from the head of each lane for a queue's oldest job: a cancelled or deleted job's id can
# sit at the head until a worker pops it, so a few are read, never the whole lane.
OLDEST_PEEK = 10

# -- HTTP handler jobs and callbacks (workers/http_handler.py, workers/callbacks.py) --------------------
# Seconds a worker waits for a handler's answer: the 1-30 s range, default its top, so a slow
# service is not cut off early but a hung one holds a worker at most this long.
HANDLER_TIMEOUT = 30
HANDLER_TIMEOUT_MIN = 1
HANDLER_TIMEOUT_MAX = 30
# Bytes of a handler's response body kept as the job's result: bounds what one answer can add to Redis.
HANDLER_RESULT_MAX = 64 * 1024
# Seconds a handler that answered 202 has to post its result to /jobs/{id}/callback (its lease length);
# it may extend it with /jobs/{id}/heartbeat. After that the reaper retries the job like any lost lease.
CALLBACK_TIMEOUT = 3600
CALLBACK_TIMEOUT_MAX = 7 * 86_400
# Longest Retry-After honoured from a 429/503: a service cannot park a job for days with one header.
RETRY_AFTER_MAX = 3600
# Outcome notifications to a job's callback_url: attempts, and the first retry delay in seconds (doubled
# each time, so 5 attempts span about 30 s).
NOTIFY_ATTEMPTS = 5
NOTIFY_RETRY_BASE = 2.0
# Seconds one delivery attempt may hold a notification: a sender that dies mid-POST frees it for another
# after this long (at-least-once delivery; receivers dedupe on X-Jobsvc-Job-Id).
NOTIFY_LEASE = 60.0
# Notifications one sender pass takes, and connections kept per sender: bound one pass's work.
NOTIFY_BATCH = 50
HTTP_POOL_SIZE = 10
# Longest handler / callback URL accepted.
URL_MAX = 2048
# Bytes of a job's JSON payload (handler and pull jobs): the API's own body limit, so what the API
# accepts the Python API accepts too.
PAYLOAD_MAX = 256 * 1024

# -- HTTP handlers: URL safety and signatures (jobsvc/http/urlguard/, jobsvc/http/signing.py) ----------------
# Seconds a signed request's timestamp may differ from the receiver's clock: wide enough for clock skew
# and a retried send, narrow enough that a captured request cannot be replayed later.
SIGNATURE_TOLERANCE = 300

# -- pull workers over HTTP (jobsvc/http/pull.py, POST /jobs/claim, /heartbeat, /ack) -----------------------
# Seconds a pull claim or heartbeat holds its jobs when the caller names no visibility timeout: the same
# as a Python worker's lease, so a silent pull worker loses its jobs as soon as a silent Python one would.
PULL_VISIBILITY_TIMEOUT = 30
# Longest visibility timeout one claim or heartbeat may ask: an hour bounds how long a dead pull worker
# can sit on a job; longer work heartbeats.
PULL_VISIBILITY_MAX = 3600
# Jobs one claim may take: one round trip of this many claim scripts (~50-100 us of Redis time each, other
# clients served between them) keeps a claim's answer and Redis work small.
PULL_COUNT_MAX = 100
# Longest lease token accepted back: ours are 32 hex characters; anything much longer is not one of ours.
PULL_TOKEN_MAX = 64

# -- dashboard (admin_api/dashboard) ---------------------------------------------------------------------
# Seconds a dashboard sign-in lasts, counted from sign-in (not sliding): a forgotten browser session ends
# within a working day, and the key behind it is re-checked on every request anyway.
DASHBOARD_SESSION_TTL = 12 * 3600
# Rows per dashboard page (jobs, quarantine, schedules, audit): one cursor page of the core listings,
# so a page's cost is bounded by what it shows, never by the jobs stored.
DASHBOARD_PAGE_SIZE = 50
# Seconds between the live-refresh polls of an open dashboard page (paused while the tab is hidden).
DASHBOARD_REFRESH = 5
# Characters of a job's args / kwargs / meta / result shown on its page: a 256 KB payload is cut, not sent.
DASHBOARD_PAYLOAD_MAX = 4000
# Leases GET /workers and the Workers page read, soonest-expiring first (Python workers' leases last seconds,
# HTTP handler and pull leases up to days): one pipelined round trip of this many HMGETs, whatever is running.
WORKERS_LEASES_MAX = 1000
# Seconds one notification POST may take in all (connect, headers, body): a receiver trickling its answer is
# cut off then. Well under NOTIFY_LEASE, so a delivery always settles before another sender may take it.
NOTIFY_DEADLINE = 15.0

# -- what callers may ask (jobsvc/validation.py turns these into the ranges the HTTP API, the CLI and the core
# check, so the three refuse the same values) --------------------------------------------------------------
# Longest delay, age filter and misfire grace, and longest result / failure TTL, in seconds: ten years. A
# longer one is a mistake, and times that far ahead overflow datetime.
DELAY_MAX = 10 * 365 * 86_400
TTL_MAX = 10 * 365 * 86_400
# Longest job, schedule or registry function timeout in seconds: a week. Longer work should checkpoint and
# enqueue its continuation rather than hold a worker (and a lease) that long.
TIMEOUT_MAX = 7 * 86_400
# Longest backoff base (a day) and cap (30 days) in seconds: past these a retry is no longer a retry.
BACKOFF_BASE_MAX = 86_400
BACKOFF_CAP_MAX = 30 * 86_400
# Longest interval between a schedule's fires in seconds: a leap year, so a yearly interval fits.
SCHEDULE_MAX_INTERVAL = 366 * 86_400
# Missed fires a run_all schedule may ask to catch up: ten passes' worth (SCHEDULE_FIRES_PER_PASS each).
SCHEDULE_CATCHUP_LIMIT = SCHEDULE_FIRES_PER_PASS * 10
# Jobs one POST /jobs batch may create: bounds one request's body and its enqueue script.
JOB_BATCH_MAX = 100
# Nesting of args / kwargs / meta / a pull result: deeper JSON is refused (422), never a stack overflow.
JSON_DEPTH_MAX = 32
# Rows one list page may ask for (jobs, schedules, schedule runs, functions, audit): bounds one call's work.
PAGE_LIMIT_MAX = 500
# Longest description of a job, schedule or function, and longest error_contains filter of a bulk call.
DESCRIPTION_MAX = 1000
# Functions one registry sync may list.
FUNCTION_SYNC_MAX = 1000
# Longest function a job or schedule names (an import path or a registry `namespace/name`).
FUNCTION_REF_MAX = 255
# Expired entries one TTL sweep call may be asked to handle (it stops at its own chunks; `more` says so).
TTL_SWEEP_LIMIT_MAX = 10_000_000
# Longest API key name, and most namespaces or queues one key may be limited to.
KEY_NAME_MAX = 64
KEY_LIMITS_MAX = 100
# Characters of a pull ack's error message or traceback accepted; the stored error keeps the first 4 KB of
# the message and the last 16 KB of the traceback.
ACK_ERROR_TEXT_MAX = 65_536
