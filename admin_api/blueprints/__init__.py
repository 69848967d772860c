"""One blueprint per resource, all under /api/v1 (health also at /health; Prometheus metrics at /metrics)."""
from __future__ import annotations

from flask import Flask

from . import audit, bulk, functions, job_runs, jobs, keys, meta, metrics, pull, queues, schedules, workers

ALL = (meta, metrics, job_runs, jobs, bulk, pull, queues, workers, keys, audit, schedules, functions)


def register(app: Flask) -> None:
    for module in ALL:
        app.register_blueprint(module.bp)
