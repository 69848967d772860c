"""The Redis key layout. RQ's keys keep RQ's names so RQ's tools read jobsvc data;
jobsvc's own keys live under the configured prefix. Lua scripts build the same names
from the prefix they are given; `tests/test_jobsvc/test_keys.py` keeps the two in step.

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

# The Redis type each member of Keys names (TYPE's answer). Lua scripts that write named keys check these
# types before their first write; tests compare every key in Redis with them.
TYPES = {
    "job": "hash", "results": "stream", "rq_queue": "list", "rq_queues": "set", "lane": "list",
    "finished": "zset", "failed": "zset", "canceled": "zset", "deferred": "zset", "rq_scheduled": "zset",
    "quarantined": "zset", "lanes": "set", "wake": "list", "runs": "list", "idempotency": "string",
    "count": "hash", "groups": "set", "created": "zset", "scheduled_in": "zset", "stats": "hash", "tally": "hash",
    "minute": "hash", "scheduler_stats": "hash", "notify": "zset", "notify_entry": "hash", "leases": "zset",
    "pull_workers": "zset",
    "scheduled": "zset", "scheduler_wake": "list", "scheduler_leader": "string", "queues": "set", "paused": "set",
    "function": "hash", "function_names": "zset", "function_namespaces": "zset", "functions_disabled": "set",
    "schedule": "hash", "schedule_stats": "hash", "schedule_runs": "zset", "schedule_run": "hash",
    "schedules": "zset", "schedules_due": "zset", "schedules_pending": "zset", "terminate": "list",
    "apikeys": "hash", "audit": "stream", "audit_rate": "string",
    "rq_scheduler_jobs": "zset", "rq_scheduler_lock": "string",
}


@dataclass(frozen=True)
class Keys:
    prefix: str = defaults.KEY_PREFIX

    @staticmethod
    def job(job_id: str) -> str:
        return RQ_JOB + job_id

    @staticmethod
    def results(job_id: str) -> str:
        return RQ_RESULTS + job_id

    @staticmethod
    def rq_queue(queue: str) -> str:
        """RQ's queue list: the ready jobs of priority 5 (plain `rq.Queue.enqueue` pushes here)."""
        return RQ_QUEUE + queue

    @property
    def rq_queues(self) -> str:
        """RQ's queue registry: `rq:queue:<q>` names (enqueue.lua adds them; promote_rq.lua walks it)."""
        return RQ_QUEUES

    def lane(self, queue: str, priority: int) -> str:
        """Ready list for one priority of a queue; priority 5 is RQ's own queue list."""
        if priority == defaults.PRIORITY:
            return self.rq_queue(queue)
        return f"{self.prefix}lane:{queue}:{priority}"

    @staticmethod
    def finished(queue: str) -> str:
        return f"rq:finished:{queue}"

    @staticmethod
    def failed(queue: str) -> str:
        return f"rq:failed:{queue}"

    @staticmethod
    def canceled(queue: str) -> str:
        return f"rq:canceled:{queue}"

    @staticmethod
    def deferred(queue: str) -> str:
        return f"rq:deferred:{queue}"

    def registry(self, state: State, queue: str) -> str:
        """The sorted set that holds a queue's jobs in an ended (or deferred) state."""
        by_state = {State.COMPLETED: self.finished, State.FAILED: self.failed, State.QUARANTINED: self.quarantined,
                    State.CANCELLED: self.canceled, State.DEFERRED: self.deferred}
        if state not in by_state:
            raise ValueError(f"{state.value} has no registry")
        return by_state[state](queue)

    @staticmethod
    def rq_scheduled(queue: str) -> str:
        return f"rq:scheduled:{queue}"

    @property
    def rq_scheduler_jobs(self) -> str:
        """rq-scheduler's zset of its jobs (one-off and recurring) by due time, epoch seconds; promote_rq.lua
        moves the one-off ones, `jobsvc schedules import --from-rq-scheduler` the recurring ones."""
        return "rq:scheduler:scheduled_jobs"

    @property
    def rq_scheduler_lock(self) -> str:
        """rq-scheduler's lock, held while one of its processes moves due jobs: promote_rq.lua leaves its zset
        alone while it exists, the import holds it while it removes entries."""
        return "rq:scheduler_lock"

    def quarantined(self, queue: str) -> str:
        return f"{self.prefix}quarantined:{queue}"

    def lanes(self, queue: str) -> str:
        """Set of the non-default priorities a queue has used: claim.lua pops only those lanes."""
        return f"{self.prefix}lanes:{queue}"

    def wake(self, queue: str) -> str:
        return f"{self.prefix}wake:{queue}"

    def runs(self, job_id: str) -> str:
        return f"{self.prefix}runs:{job_id}"

    def idempotency(self, namespace: str, key: str) -> str:
        """An idempotency key, scoped to the job's namespace: one namespace can neither take nor reach
        another's keys (a namespace name holds no ':')."""
        return f"{self.prefix}idem:{idempotency_scope(namespace, key)}"

    def count(self, group: str) -> str:
        """Gauge hash of one queue|namespace|function group: jobs per state."""
        return f"{self.prefix}count:{group}"

    @property
    def groups(self) -> str:
        return f"{self.prefix}groups"

    def created(self, queue: str) -> str:
        """Every job of a queue by creation time (ms): the index of unfiltered listings."""
        return f"{self.prefix}created:{queue}"

    def scheduled_in(self, queue: str) -> str:
        """Scheduled jobs of one queue by due time, for listing (the scheduler reads `scheduled`)."""
        return f"{self.prefix}scheduled:{queue}"

    def stats(self, queue: str) -> str:
        """Operator requeues of a queue; its other event totals are the sum of its groups' tallies."""
        return f"{self.prefix}stats:{queue}"

    def tally(self, group: str) -> str:
        """Event counters and run / wait histograms of one queue|namespace|function group (GET /metrics)."""
        return f"{self.prefix}tally:{group}"

    def minute(self, epoch_minute: int) -> str:
        """Events per `<queue>|<event>` in one minute (epoch ms // 60000): the dashboard's charts."""
        return f"{self.prefix}minute:{epoch_minute}"

    @property
    def scheduler_stats(self) -> str:
        """The promoter's last pass time and the lateness of its last promotions (scheduler lag)."""
        return f"{self.prefix}scheduler:stats"

    @property
    def notify(self) -> str:
        """Outcome notifications to deliver to callback URLs, by due time (ms); jobsvc/http/notifications.py."""
        return f"{self.prefix}notify"

    def notify_entry(self, job_id: str) -> str:
        """What one notification says (state, result or error, url, attempts): outlives its job."""
        return f"{self.prefix}notify:{job_id}"

    @property
    def leases(self) -> str:
        return f"{self.prefix}leases"

    @property
    def pull_workers(self) -> str:
        """Pull workers seen (they register nowhere else): `<queue>/<worker>` scored by its last claim call (ms),
        written by claim.lua, read by jobsvc/admin/workers_info.py for GET /workers."""
        return f"{self.prefix}pull_workers"

    @property
    def scheduled(self) -> str:
        return f"{self.prefix}scheduled"

    @property
    def scheduler_wake(self) -> str:
        return f"{self.prefix}scheduler:wake"

    @property
    def scheduler_leader(self) -> str:
        return f"{self.prefix}scheduler:leader"

    @property
    def queues(self) -> str:
        return f"{self.prefix}queues"

    @property
    def paused(self) -> str:
        return f"{self.prefix}paused"

    # The functions registry and cron schedules (functions/, schedules/ and their Lua scripts).
    def function(self, namespace: str, name: str) -> str:
        return f"{self.prefix}function:{namespace}/{name}"

    def function_names(self, namespace: str) -> str:
        """Names of a namespace's functions (listing index). Not `functions:<ns>`: that family holds the
        fixed `functions:disabled`, which a namespace called "disabled" would overwrite (layout rule above)."""
        return f"{self.prefix}function_names:{namespace}"

    @property
    def function_namespaces(self) -> str:
        return f"{self.prefix}function_namespaces"

    @property
    def functions_disabled(self) -> str:
        """Refs (`ns/name`) of disabled functions: claim.lua holds their jobs in their lanes."""
        return f"{self.prefix}functions:disabled"

    def schedule(self, schedule_id: str) -> str:
        return f"{self.prefix}schedule:{schedule_id}"

    def schedule_stats(self, schedule_id: str) -> str:
        """Run outcome counters that complete.lua, fail.lua and reap_expired.lua bump."""
        return f"{self.prefix}schedule:{schedule_id}:stats"

    def schedule_runs(self, schedule_id: str) -> str:
        """Run ids (a fire's job id, or the id a skipped fire would have had) by scheduled ms."""
        return f"{self.prefix}schedule:{schedule_id}:runs"

    def schedule_run(self, schedule_id: str) -> str:
        """Run records (JSON) by run id: the run history, kept after result_ttl deletes the jobs."""
        return f"{self.prefix}schedule:{schedule_id}:run"

    @property
    def schedules(self) -> str:
        return f"{self.prefix}schedules"

    @property
    def schedules_due(self) -> str:
        return f"{self.prefix}schedules:due"

    @property
    def schedules_pending(self) -> str:
        return f"{self.prefix}schedules:pending"

    @property
    def apikeys(self) -> str:
        """Scoped API keys: key id -> JSON record (jobsvc/admin/apikeys.py)."""
        return f"{self.prefix}apikeys"

    @property
    def audit(self) -> str:
        """The audit log stream (jobsvc/admin/audit.py)."""
        return f"{self.prefix}audit"

    def audit_rate(self, key_id: str) -> str:
        """Audit entries written by one API key id in the current window (jobsvc/admin/audit.py: rate_key)."""
        return f"{self.prefix}audit:rate:{key_id}"

    def terminate(self, worker: str) -> str:
        """Ids an operator terminated that this worker is running: it stops them within a tick."""
        return f"{self.prefix}terminate:{worker}"
