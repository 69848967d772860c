"""The Prometheus exposition of a jobsvc.admin.metrics snapshot: a Collector built per scrape over a fresh registry,
so nothing is counted in the API process (several gunicorn workers serve it; Redis is the source of truth)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from math import inf

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from jobsvc.admin.metrics import Histogram, Snapshot

GROUP_LABELS = ["queue", "namespace", "function"]
# (metric name without _total, event counted in the tally, help text)
COUNTERS = (
    ("jobsvc_jobs_enqueued", "enqueued", "Jobs enqueued."),
    ("jobsvc_jobs_completed", "completed", "Jobs that completed."),
    ("jobsvc_jobs_failed", "failed", "Jobs that failed for good (attempts used up, not retryable, or lease lost)."),
    ("jobsvc_jobs_retried", "retried", "Failed attempts scheduled for another try after backoff."),
    ("jobsvc_jobs_quarantined", "quarantined", "Jobs quarantined after losing too many leases."),
    ("jobsvc_jobs_cancelled", "cancelled", "Jobs cancelled or terminated by an operator."),
    ("jobsvc_lease_expiries", "lease_lost", "Leases that expired: the reaper took the job back from its worker."),
)
HISTOGRAMS = (
    ("jobsvc_job_run_duration_seconds", "run", "Time from start to outcome of each attempt."),
    ("jobsvc_job_enqueue_to_start_seconds", "wait", "Time from ready (enqueued, promoted or requeued) to started."),
)

Visible = Callable[[str, str | None], bool]  # (queue, namespace or None for queue-wide figures) -> shown?


class SnapshotCollector(Collector):
    """Yields the metric families of one snapshot, only the queues and namespaces `visible` allows."""

    def __init__(self, snap: Snapshot, visible: Visible):
        self.snap, self.visible = snap, visible

    def collect(self) -> Iterator[Metric]:
        snap = self.snap
        groups = [g for g in snap.groups if self.visible(g.group.queue, g.group.namespace)]
        for name, event, text in COUNTERS:
            family = CounterMetricFamily(name, text, labels=GROUP_LABELS)
            for g in groups:
                family.add_metric(_labels(g.group), g.events[event])
            yield family
        for name, key, text in HISTOGRAMS:
            hist = HistogramMetricFamily(name, text, labels=GROUP_LABELS)
            for g in groups:
                h = g.histograms[key]
                hist.add_metric(_labels(g.group), _buckets(h), h.sum_seconds)
            yield hist

        by_queue: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for g in groups:
            for state, n in g.states.items():
                by_queue[g.group.queue][state] += n
        running = GaugeMetricFamily("jobsvc_jobs_running", "Jobs running under a lease.", labels=["queue"])
        jobs = GaugeMetricFamily("jobsvc_jobs", "Jobs stored, by state.", labels=["queue", "state"])
        for queue in sorted(by_queue):
            running.add_metric([queue], by_queue[queue].get("running", 0))
            for state, n in sorted(by_queue[queue].items()):
                jobs.add_metric([queue, state], n)
        yield running
        yield jobs

        depth = GaugeMetricFamily("jobsvc_queue_depth", "Jobs waiting in the queue's ready lanes.", labels=["queue"])
        age = GaugeMetricFamily("jobsvc_queue_oldest_job_age_seconds",
                                "How long the longest-waiting ready job has waited (0: none waits).", labels=["queue"])
        for queue in snap.queues:
            if self.visible(queue, None):
                depth.add_metric([queue], snap.depth.get(queue, 0))
                age.add_metric([queue], (snap.oldest_age_ms.get(queue) or 0) / 1000)
        yield depth
        yield age

        sched = snap.scheduler
        yield GaugeMetricFamily("jobsvc_scheduler_lag_seconds",
                                "How late the scheduler's last promotion was: its most overdue job, due to queued.",
                                value=(sched.lag_ms or 0) / 1000)
        yield GaugeMetricFamily("jobsvc_scheduler_overdue_seconds",
                                "How overdue the earliest scheduled job not yet promoted is (0: none).",
                                value=sched.overdue_ms / 1000)
        # No pass ever: +Inf, so that an alert on a stale scheduler fires for one that never ran too.
        last_pass_age = inf if sched.last_pass_ms is None else max(0, snap.now_ms - sched.last_pass_ms) / 1000
        yield GaugeMetricFamily("jobsvc_scheduler_last_pass_age_seconds",
                                "Seconds since the leading scheduler's last promotion pass.", value=last_pass_age)
        yield GaugeMetricFamily("jobsvc_workers", "Workers registered (RQ's worker set).", value=snap.workers)


def _labels(group: object) -> list[str]:
    return [getattr(group, label) for label in GROUP_LABELS]


def _buckets(h: Histogram) -> list[tuple[str, float]]:
    return [("+Inf" if bound == inf else repr(bound), float(n)) for bound, n in h.buckets]


def render(snap: Snapshot, visible: Visible) -> bytes:
    """The Prometheus text exposition of a snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snap, visible))
    return generate_latest(registry)
