"""One blueprint per resource, all under /api/v1 (health also at /health; Prometheus metrics at /metrics)."""
from __future__ import annotations

from flask import Flask

from . import audit, bulk, functions, job_runs, jobs, keys, meta, metrics, pull, queues, schedules, workers

# job_runs before jobs: its GET /jobs/{id}/runs (paged) is the one served while jobs.py still declares the
# older, unpaged view of that path (the first rule registered wins; admin_api.openapi documents that one).
ALL = (meta, metrics, job_runs, jobs, bulk, pull, queues, workers, keys, audit, schedules, functions)


def register(app: Flask) -> None:
    for module in ALL:
        app.register_blueprint(module.bp)
