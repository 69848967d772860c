"""GET /metrics: Prometheus text exposition at the app root (where scrapers look), read from Redis on every
scrape. Needs a key with jobs:read unless JOBSVC_METRICS_PUBLIC=1; a key limited to namespaces or queues sees
only their series."""
from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST

from jobsvc.admin import metrics
from jobsvc.admin.apikeys import READ
from jobsvc.engine.keys import Keys

from .. import prometheus
from ..api import config, conn, operation
from ..auth import Principal

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@operation("Prometheus metrics: job counters, run and wait histograms, queue depths, scheduler lag", scope=READ,
           public_if=lambda: config().metrics_public,
           responses={200: ("Prometheus text format 0.0.4 (see docs/metrics.md)", None)},
           description="No key is needed when the server runs with `JOBSVC_METRICS_PUBLIC=1`.")
def scrape(who: Principal | None) -> Response:
    snap = metrics.snapshot(conn(), Keys(config().key_prefix))
    return Response(prometheus.render(snap, _visible(who)), mimetype=None, content_type=CONTENT_TYPE_LATEST)


def _visible(who: Principal | None) -> prometheus.Visible:
    """Which series a caller sees: a namespace-limited key sees no queue-wide figure, since those mix namespaces."""
    if who is None or not who.limited:
        return lambda queue, namespace: True

    def visible(queue: str, namespace: str | None) -> bool:
        if namespace is None:
            return who.namespaces is None and who.sees(queue, None)
        return who.sees(queue, namespace)

    return visible
