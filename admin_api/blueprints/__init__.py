"""One blueprint per resource, all under /api/v1 (health also at /health)."""
from __future__ import annotations

from flask import Flask

from . import audit, bulk, functions, jobs, keys, meta, queues, schedules, workers

ALL = (meta, jobs, bulk, queues, workers, keys, audit, schedules, functions)


def register(app: Flask) -> None:
    for module in ALL:
        app.register_blueprint(module.bp)
