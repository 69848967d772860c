"""The Redis key layout. RQ's keys keep RQ's names so RQ's tools read jobsvc data;
jobsvc's own keys live under the configured prefix. Lua scripts build the same names
from the prefix they are given; `tests/test_jobsvc/test_keys.py` keeps the two in step."""
from __future__ import annotations

from dataclasses import dataclass

from . import defaults
from .states import State

RQ_JOB = "rq:job:"
RQ_QUEUE = "rq:queue:"
RQ_QUEUES = "rq:queues"
RQ_RESULTS = "rq:results:"


@dataclass(frozen=True)
class Keys:
    prefix: str = defaults.KEY_PREFIX

    @staticmethod
    def job(job_id: str) -> str:
        return RQ_JOB + job_id

    @staticmethod
    def results(job_id: str) -> str:
        return RQ_RESULTS + job_id

    def lane(self, queue: str, priority: int) -> str:
        """Ready list for one priority of a queue; priority 5 is RQ's own queue list."""
        if priority == defaults.PRIORITY:
            return RQ_QUEUE + queue
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

    def quarantined(self, queue: str) -> str:
        return f"{self.prefix}quarantined:{queue}"

    def lanes(self, queue: str) -> str:
        """Set of the non-default priorities a queue has used: claim.lua pops only those lanes."""
        return f"{self.prefix}lanes:{queue}"

    def wake(self, queue: str) -> str:
        return f"{self.prefix}wake:{queue}"

    def runs(self, job_id: str) -> str:
        return f"{self.prefix}runs:{job_id}"

    def idempotency(self, key: str) -> str:
        return f"{self.prefix}idem:{key}"

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
        """Outcome notifications to deliver to callback URLs, by due time (ms); workers/callbacks.py."""
        return f"{self.prefix}notify"

    def notify_entry(self, job_id: str) -> str:
        """What one notification says (state, result or error, url, attempts): outlives its job."""
        return f"{self.prefix}notify:{job_id}"

    @property
    def leases(self) -> str:
        return f"{self.prefix}leases"

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

    # The functions registry and cron schedules (functions.py, schedules.py and their Lua scripts).
    def function(self, namespace: str, name: str) -> str:
        return f"{self.prefix}function:{namespace}/{name}"

    def functions(self, namespace: str) -> str:
        return f"{self.prefix}functions:{namespace}"

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

    @property
    def schedules(self) -> str:
        return f"{self.prefix}schedules"

    @property
    def schedules_due(self) -> str:
        return f"{self.prefix}schedules:due"

    @property
    def schedules_pending(self) -> str:
        return f"{self.prefix}schedules:pending"

    def terminate(self, worker: str) -> str:
        """Ids an operator terminated that this worker is running: it stops them within a tick."""
        return f"{self.prefix}terminate:{worker}"
