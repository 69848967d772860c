"""The Redis key layout, in one table (FAMILIES). RQ's keys keep RQ's names so RQ's tools read jobsvc data;
jobsvc's own keys live under the configured prefix. Python renders names through `Keys`; the Lua scripts
receive the templates of the families they use as KEYS (jobsvc/engine/scripts.py) and never spell a name.

The layout rule: no name a user or a job chooses can ever spell a system key.
Why: a function namespace called "disabled" once made its listing index `functions:disabled`, the set of
disabled functions that claim.lua reads on every registry job; the save wrote a sorted set there and from
then on every registry-function job in every namespace failed to be claimed (WRONGTYPE).

  * A key is `<prefix><family>` or `<prefix><family>:<rest>`; its family is the text up to the first ':'.
  * A *named* family's keys put a chosen name (queue, job id, namespace, function name, schedule id, worker,
    idempotency key, group) right after `<family>:`. A *fixed* key is spelled out in full here.
  * No fixed key starts with `<family>:` of a named family (`functions:disabled` is fixed, so the per
    namespace index is `function_names:<ns>`, not `functions:<ns>`). Whatever a name is, its key stays in
    its own family.
  * Text after a name (`schedule:<id>:stats`) only where the name cannot contain ':' (namespaces, function
    names and schedule ids are `[A-Za-z0-9_.-]`). Queue names and job ids may contain ':', so their keys end
    with the name, or with a number after it (`lane:<queue>:<priority>`).

`tests/test_jobsvc/test_keys.py` checks the rule over every member of `Keys`; a new key goes here, with its
Redis type in `TYPES`."""
from __future__ import annotations

from dataclasses import dataclass

from .. import defaults
from .states import State


def idempotency_scope(namespace: str, key: str) -> str:
    """What follows `idem:` in an idempotency key's name (enqueue.lua receives it whole; delete.lua builds it
    the same way from the job's js_ns and js_idem)."""
    return f"{namespace}:{key}"

RQ_JOB = "rq:job:"
RQ_QUEUE = "rq:queue:"
RQ_QUEUES = "rq:queues"
RQ_RESULTS = "rq:results:"
# RQ's worker registry: the set of registered workers' hash names, and those hashes' prefix (RQ's own worker
# code writes both, for jobsvc's workers too; jobsvc/admin/workers_info.py reads them).
RQ_WORKERS = "rq:workers"
RQ_WORKER = "rq:worker:"
PREFIX = "{prefix}"  # where the configured key prefix goes in a template
NAME = "%s"  # where a name (job id, queue, group ...) goes

# THE key table: every key jobsvc reads or writes, by family, as a template. Python renders names from it
# (`Keys`); the Lua scripts receive the templates of the families they use through KEYS (jobsvc/engine/scripts.py)
# and fill in the names (`K.job(id)`, `K.leases`), so no script spells a key. RQ's keys keep RQ's names.
FAMILIES: dict[str, str] = {
    # RQ's own keys
    "job": RQ_JOB + NAME, "results": RQ_RESULTS + NAME,
    "dependents": RQ_JOB + NAME + ":dependents",  # the jobs waiting on a job (rq/job.py)
    "dependencies": RQ_JOB + ":" + NAME + ":dependencies",  # the jobs a job waits on (RQ's two colons)
    "rq_queue": RQ_QUEUE + NAME, "rq_queues": RQ_QUEUES,
    "finished": "rq:finished:" + NAME, "failed": "rq:failed:" + NAME, "canceled": "rq:canceled:" + NAME,
    "deferred": "rq:deferred:" + NAME, "rq_scheduled": "rq:scheduled:" + NAME, "rq_wip": "rq:wip:" + NAME,
    "rq_scheduler_jobs": "rq:scheduler:scheduled_jobs", "rq_scheduler_lock": "rq:scheduler_lock",
    # jobsvc's: per queue
    "lane": PREFIX + "lane:" + NAME + ":" + NAME, "lanes": PREFIX + "lanes:" + NAME,
    "quarantined": PREFIX + "quarantined:" + NAME, "wake": PREFIX + "wake:" + NAME,
    "created": PREFIX + "created:" + NAME, "scheduled_in": PREFIX + "scheduled:" + NAME,
    "stats": PREFIX + "stats:" + NAME,
    # per job, per group, per minute
    "runs": PREFIX + "runs:" + NAME, "idempotency": PREFIX + "idem:" + NAME, "notify_entry": PREFIX + "notify:" + NAME,
    "count": PREFIX + "count:" + NAME, "tally": PREFIX + "tally:" + NAME, "minute": PREFIX + "minute:" + NAME,
    "terminate": PREFIX + "terminate:" + NAME,
    # global
    "groups": PREFIX + "groups", "queues": PREFIX + "queues", "paused": PREFIX + "paused",
    "leases": PREFIX + "leases", "pull_workers": PREFIX + "pull_workers", "scheduled": PREFIX + "scheduled",
    "notify": PREFIX + "notify", "scheduler_stats": PREFIX + "scheduler:stats",
    "scheduler_wake": PREFIX + "scheduler:wake", "scheduler_leader": PREFIX + "scheduler:leader",
    # the functions registry and cron schedules
    "function": PREFIX + "function:" + NAME + "/" + NAME, "function_names": PREFIX + "function_names:" + NAME,
    "function_namespaces": PREFIX + "function_namespaces", "functions_disabled": PREFIX + "functions:disabled",
    "schedule": PREFIX + "schedule:" + NAME, "schedule_stats": PREFIX + "schedule:" + NAME + ":stats",
    "schedule_runs": PREFIX + "schedule:" + NAME + ":runs", "schedule_run": PREFIX + "schedule:" + NAME + ":run",
    "schedules": PREFIX + "schedules", "schedules_due": PREFIX + "schedules:due",
    "schedules_pending": PREFIX + "schedules:pending",
    # the admin API's
    "apikeys": PREFIX + "apikeys", "audit": PREFIX + "audit", "audit_rate": PREFIX + "audit:rate:" + NAME,
    # the queues of a Redis Cluster (written by the client, not by a script: `queues` is per queue there)
    "cluster_queues": PREFIX + "cluster:queues",
    # a Redis Cluster's id directory, job id -> queue, in ID_SHARDS hashes named by number (jobsvc/engine/directory.py;
    # on a single Redis a job's key is found from its id alone and this family is never written)
    "ids": PREFIX + "ids:" + NAME,
    # a Redis Cluster's dependencies across queues (jobsvc/engine/depends.py; never written on a single Redis): the
    # dependents of a job in other queues, in its queue's slot, and its queue's outbox of ended jobs that have some
    "remote_dependents": PREFIX + "remote_dependents:" + NAME, "release": PREFIX + "release:" + NAME,
}

# Families only a Redis Cluster's keys are of: a script that names one receives it last in KEYS, and on a single
# Redis not at all (jobsvc/engine/scripts.py: keys_of), so single-node calls stay byte for byte what they were. A
# script reaches their names only on a path a single Redis never takes (a job with dependents in other queues).
CLUSTER_ONLY = frozenset({"remote_dependents", "release"})

# How many hashes the id directory is spread over, each in a slot of its own (so no one hash, and no one master,
# holds every job's entry). An id's hash is crc16(id) % ID_SHARDS: changing it loses every entry.
ID_SHARDS = 64

# Families whose few names a script call repeats many times (a batch's groups and minutes): Lua builds each of
# their names once per call (name_of in _lib.lua); a table lookup costs less than a concatenation there, more
# than one elsewhere.
MEMOIZED = frozenset({"count", "tally", "minute"})


# Redis Cluster (docs/cluster.md; the core library only, not yet the processes): a queue's keys and its jobs'
# keys share the queue's hash tag, so every job transition is a one-slot script. A family's cluster name is its
# single-node name without the prefix, after `<prefix>{<queue>}:` (`jobsvc:{mail}:rq:job:<id>`,
# `jobsvc:{mail}:lane:mail:2`), so the one table spells both layouts. The families of no queue live in a slot of
# their own, tag `{#<slot>}` ('#' is in no queue name: no queue shares it); the id directory's hashes each have
# their own, `{#ids:<n>}` (its name in the tag: `jobsvc:{#ids:7}:ids:7`).
OWN_SLOT = {
    "function": "functions", "function_names": "functions", "function_namespaces": "functions",
    "schedule": "schedules", "schedule_runs": "schedules", "schedule_run": "schedules", "schedules": "schedules",
    "schedules_due": "schedules", "schedules_pending": "schedules",
    "apikeys": "admin", "audit": "admin", "audit_rate": "admin", "scheduler_leader": "scheduler",
    "cluster_queues": "global", "ids": "ids:" + NAME,
}


def template(family: str, prefix: str, queue: str | None = None) -> str:
    """A family's template with the prefix filled in: what a Lua script receives in KEYS. With `queue`, its
    cluster spelling: under that queue's hash tag, or its own slot's (OWN_SLOT)."""
    if queue is None:
        return FAMILIES[family].replace(PREFIX, prefix)
    if "{" in prefix or "}" in prefix:
        # The first {...} of a name is its hash tag: a prefix's own would put every queue in one slot.
        raise ValueError(f"on a Redis Cluster the key prefix must not contain '{{' or '}}': {prefix!r}")
    tag = f"#{OWN_SLOT[family]}" if family in OWN_SLOT else queue
    return f"{prefix}{{{tag}}}:{FAMILIES[family].replace(PREFIX, '')}"


def cluster_name(prefix: str, family: str, *names: object) -> str:
    """The cluster name of a key of no queue (an OWN_SLOT family: the cluster's queue registry ...)."""
    return template(family, prefix, "") % names


def id_directory(prefix: str, shard: int) -> str:
    """The cluster name of the id directory's hash number `shard` (its number in its tag and its name)."""
    return cluster_name(prefix, "ids", shard, shard)


def _rq(family: str, name: str) -> str:
    return FAMILIES[family] % name


# The Redis type each member of Keys names (TYPE's answer). Lua scripts that write named keys check these
# types before their first write; tests compare every key in Redis with them.
TYPES = {
    "job": "hash", "results": "stream", "dependents": "set", "dependencies": "set", "rq_queue": "list",
    "rq_queues": "set", "lane": "list", "finished": "zset", "failed": "zset", "canceled": "zset", "deferred": "zset",
    "rq_scheduled": "zset", "rq_wip": "zset",
    "quarantined": "zset", "lanes": "set", "wake": "list", "runs": "list", "idempotency": "string",
    "count": "hash", "groups": "set", "created": "zset", "scheduled_in": "zset", "stats": "hash", "tally": "hash",
    "minute": "hash", "scheduler_stats": "hash", "notify": "zset", "notify_entry": "hash", "leases": "zset",
    "pull_workers": "zset",
    "scheduled": "zset", "scheduler_wake": "list", "scheduler_leader": "string", "queues": "set", "paused": "set",
    "function": "hash", "function_names": "zset", "function_namespaces": "zset", "functions_disabled": "set",
    "schedule": "hash", "schedule_stats": "hash", "schedule_runs": "zset", "schedule_run": "hash",
    "schedules": "zset", "schedules_due": "zset", "schedules_pending": "zset", "terminate": "list",
    "apikeys": "hash", "audit": "stream", "audit_rate": "string",
    "rq_scheduler_jobs": "zset", "rq_scheduler_lock": "string", "cluster_queues": "set", "ids": "hash",
    "remote_dependents": "hash", "release": "hash",
}


@dataclass(frozen=True)
class Keys:
    prefix: str = defaults.KEY_PREFIX

    def _render(self, family: str, *names: object) -> str:
        """A key of `family` (FAMILIES), its '%s' filled with `names` in order."""
        return template(family, self.prefix) % names

    @staticmethod
    def dependents(job_id: str) -> str:
        """RQ's set of the jobs waiting on `job_id`."""
        return _rq("dependents", job_id)

    @staticmethod
    def dependencies(job_id: str) -> str:
        """RQ's set of the jobs `job_id` waits on."""
        return _rq("dependencies", job_id)

    @staticmethod
    def job(job_id: str) -> str:
        return _rq("job", job_id)

    @staticmethod
    def results(job_id: str) -> str:
        return _rq("results", job_id)

    @staticmethod
    def rq_queue(queue: str) -> str:
        """RQ's queue list: the ready jobs of priority 5 (plain `rq.Queue.enqueue` pushes here)."""
        return _rq("rq_queue", queue)

    @property
    def rq_queues(self) -> str:
        """RQ's queue registry: `rq:queue:<q>` names (enqueue.lua adds them; promote_rq.lua walks it)."""
        return FAMILIES["rq_queues"]

    def lane(self, queue: str, priority: int) -> str:
        """Ready list for one priority of a queue; priority 5 is RQ's own queue list."""
        if priority == defaults.PRIORITY:
            return self.rq_queue(queue)
        return self._render("lane", queue, priority)

    @staticmethod
    def finished(queue: str) -> str:
        return _rq("finished", queue)

    @staticmethod
    def failed(queue: str) -> str:
        return _rq("failed", queue)

    @staticmethod
    def canceled(queue: str) -> str:
        return _rq("canceled", queue)

    @staticmethod
    def deferred(queue: str) -> str:
        return _rq("deferred", queue)

    def registry(self, state: State, queue: str) -> str:
        """The sorted set that holds a queue's jobs in an ended (or deferred) state."""
        by_state = {State.COMPLETED: self.finished, State.FAILED: self.failed, State.QUARANTINED: self.quarantined,
                    State.CANCELLED: self.canceled, State.DEFERRED: self.deferred}
        if state not in by_state:
            raise ValueError(f"{state.value} has no registry")
        return by_state[state](queue)

    @staticmethod
    def rq_scheduled(queue: str) -> str:
        return _rq("rq_scheduled", queue)

    @staticmethod
    def rq_wip(queue: str) -> str:
        """RQ's StartedJobRegistry: jobs an RQ worker runs (counts.lua reports it beside jobsvc's running)."""
        return _rq("rq_wip", queue)

    @property
    def rq_scheduler_jobs(self) -> str:
        """rq-scheduler's zset of its jobs (one-off and recurring) by due time, epoch seconds; promote_rq.lua
        moves the one-off ones, `jobsvc schedules import --from-rq-scheduler` the recurring ones."""
        return FAMILIES["rq_scheduler_jobs"]

    @property
    def rq_scheduler_lock(self) -> str:
        """rq-scheduler's lock, held while one of its processes moves due jobs: promote_rq.lua leaves its zset
        alone while it exists, the import holds it while it removes entries."""
        return FAMILIES["rq_scheduler_lock"]

    def quarantined(self, queue: str) -> str:
        return self._render("quarantined", queue)

    def lanes(self, queue: str) -> str:
        """Set of the non-default priorities a queue has used: claim.lua pops only those lanes."""
        return self._render("lanes", queue)

    def wake(self, queue: str) -> str:
        return self._render("wake", queue)

    def runs(self, job_id: str) -> str:
        return self._render("runs", job_id)

    def idempotency(self, namespace: str, key: str) -> str:
        """An idempotency key, scoped to the job's namespace: one namespace can neither take nor reach
        another's keys (a namespace name holds no ':')."""
        return self._render("idempotency", idempotency_scope(namespace, key))

    def count(self, group: str) -> str:
        """Gauge hash of one queue|namespace|function group: jobs per state."""
        return self._render("count", group)

    @property
    def groups(self) -> str:
        return self._render("groups")

    def created(self, queue: str) -> str:
        """Every job of a queue by creation time (ms): the index of unfiltered listings."""
        return self._render("created", queue)

    def scheduled_in(self, queue: str) -> str:
        """Scheduled jobs of one queue by due time, for listing (the scheduler reads `scheduled`)."""
        return self._render("scheduled_in", queue)

    def stats(self, queue: str) -> str:
        """Operator requeues of a queue; its other event totals are the sum of its groups' tallies."""
        return self._render("stats", queue)

    def tally(self, group: str) -> str:
        """Event counters and run / wait histograms of one queue|namespace|function group (GET /metrics)."""
        return self._render("tally", group)

    def minute(self, epoch_minute: int) -> str:
        """Events per `<queue>|<event>` in one minute (epoch ms // 60000): the dashboard's charts."""
        return self._render("minute", epoch_minute)

    @property
    def scheduler_stats(self) -> str:
        """The promoter's last pass time and the lateness of its last promotions (scheduler lag)."""
        return self._render("scheduler_stats")

    @property
    def notify(self) -> str:
        """Outcome notifications to deliver to callback URLs, by due time (ms); jobsvc/http/notifications.py."""
        return self._render("notify")

    def notify_entry(self, job_id: str) -> str:
        """What one notification says (state, result or error, url, attempts): outlives its job."""
        return self._render("notify_entry", job_id)

    @property
    def leases(self) -> str:
        return self._render("leases")

    @property
    def pull_workers(self) -> str:
        """Pull workers seen (they register nowhere else): `<queue>/<worker>` scored by its last claim call (ms),
        written by claim.lua, read by jobsvc/admin/workers_info.py for GET /workers."""
        return self._render("pull_workers")

    @property
    def scheduled(self) -> str:
        return self._render("scheduled")

    @property
    def scheduler_wake(self) -> str:
        return self._render("scheduler_wake")

    @property
    def cluster_queues(self) -> str:
        """The queues a Redis Cluster holds (docs/cluster.md): SADDed by the client, read by what walks queues."""
        return self._render("cluster_queues")

    def ids(self, shard: int) -> str:
        """The id directory's hash number `shard`, single-node spelling: a cluster's only (`id_directory`)."""
        return self._render("ids", shard)

    def remote_dependents(self, job_id: str) -> str:
        """A cluster's jobs of other queues waiting on `job_id`: dependent id -> `<queue>|<registered ms>`."""
        return self._render("remote_dependents", job_id)

    def release(self, queue: str) -> str:
        """A cluster queue's outbox: its ended jobs that have dependents in other queues, id -> RQ status."""
        return self._render("release", queue)

    @property
    def scheduler_leader(self) -> str:
        return self._render("scheduler_leader")

    @property
    def queues(self) -> str:
        return self._render("queues")

    @property
    def paused(self) -> str:
        return self._render("paused")

    # The functions registry and cron schedules (functions/, schedules/ and their Lua scripts).
    def function(self, namespace: str, name: str) -> str:
        return self._render("function", namespace, name)

    def function_names(self, namespace: str) -> str:
        """Names of a namespace's functions (listing index). Not `functions:<ns>`: that family holds the
        fixed `functions:disabled`, which a namespace called "disabled" would overwrite (layout rule above)."""
        return self._render("function_names", namespace)

    @property
    def function_namespaces(self) -> str:
        return self._render("function_namespaces")

    @property
    def functions_disabled(self) -> str:
        """Refs (`ns/name`) of disabled functions: claim.lua holds their jobs in their lanes."""
        return self._render("functions_disabled")

    def schedule(self, schedule_id: str) -> str:
        return self._render("schedule", schedule_id)

    def schedule_stats(self, schedule_id: str) -> str:
        """Run outcome counters that complete.lua, fail.lua and reap_expired.lua bump."""
        return self._render("schedule_stats", schedule_id)

    def schedule_runs(self, schedule_id: str) -> str:
        """Run ids (a fire's job id, or the id a skipped fire would have had) by scheduled ms."""
        return self._render("schedule_runs", schedule_id)

    def schedule_run(self, schedule_id: str) -> str:
        """Run records (JSON) by run id: the run history, kept after result_ttl deletes the jobs."""
        return self._render("schedule_run", schedule_id)

    @property
    def schedules(self) -> str:
        return self._render("schedules")

    @property
    def schedules_due(self) -> str:
        return self._render("schedules_due")

    @property
    def schedules_pending(self) -> str:
        return self._render("schedules_pending")

    @property
    def apikeys(self) -> str:
        """Scoped API keys: key id -> JSON record (jobsvc/admin/apikeys.py)."""
        return self._render("apikeys")

    @property
    def audit(self) -> str:
        """The audit log stream (jobsvc/admin/audit.py)."""
        return self._render("audit")

    def audit_rate(self, key_id: str) -> str:
        """Audit entries written by one API key id in the current window (jobsvc/admin/audit.py: rate_key)."""
        return self._render("audit_rate", key_id)

    def terminate(self, worker: str) -> str:
        """Ids an operator terminated that this worker is running: it stops them within a tick."""
        return self._render("terminate", worker)
