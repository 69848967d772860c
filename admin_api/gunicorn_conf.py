"""gunicorn settings of the admin API: the one place for them. The Procfile's `web` line and `jobsvc up` both run

    gunicorn -c python:admin_api.gunicorn_conf          # app, worker and limits from here; `up` adds --bind

The worker (admin_api/gunicorn_worker.py) is gunicorn's gevent worker with a request-body deadline, so slow
or stalled clients wait on their own greenlet instead of blocking every answer (a sync worker let two
half-sent requests stop the API for up to `timeout`). What bounds a slow client:

- request line and headers: `keepalive` seconds (the gevent worker reads them under that timeout), at most
  `limit_request_line` / `limit_request_fields` x `limit_request_field_size` bytes;
- body: gunicorn_worker.BODY_TIMEOUT seconds, at most 256 KB (admin_api/errors.py MAX_BODY, 413 beyond);
- answer: gunicorn_worker.RESPONSE_WRITE_TIMEOUT seconds from its first byte (a client that stops reading);
- open connections: `worker_connections` per worker; beyond that new ones wait in the listen backlog.

Environment: PORT (Procfile; default 8000), WEB_CONCURRENCY (worker processes; default 2). Command-line
flags override these settings. On the open internet, put a reverse proxy (nginx, a cloud load balancer) in
front as well: it absorbs floods of connections that no application server should have to."""
from __future__ import annotations

import os

wsgi_app = "admin_api:create_app()"
bind = [f"0.0.0.0:{os.environ.get('PORT', '8000')}"]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "admin_api.gunicorn_worker.AdminApiWorker"
# Connections one worker holds at once, slow ones included (gunicorn's default, stated: it is what lets a
# few slow clients not matter).
worker_connections = 1000
# Seconds an idle kept-alive connection stays open, and the deadline for a request's line and headers:
# gunicorn's gevent worker reads each request under gevent.Timeout(keepalive). Must stay above 0 (with 0
# gunicorn reads the headers without any deadline).
keepalive = 5
# A worker whose event loop did not get to notify the arbiter for this long (a request hogging the CPU) is
# restarted. Slow clients no longer count against it: they wait on their own greenlets.
timeout = 120
graceful_timeout = 30
# gunicorn's defaults, stated because they bound what one request line and header block may cost.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# Answers go through the worker's deadline-bound sendall (gunicorn_worker.DeadlineSocket), never sendfile.
sendfile = False
