"""Helpers of the admin API tests (fixtures are in conftest.py)."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

ADMIN_KEY = "test-admin-key-0123456789abcdef"
NOOP = "tests.jobfuncs.noop"


def field_errors(resp: Any) -> dict[str, Any]:
    """The per-field messages of a 422 answer (asserting it is one): {} when the error names no field."""
    assert resp.status_code == 422, resp.get_json()
    fields: dict[str, Any] = resp.get_json()["error"]["details"].get("fields", {})
    return fields


class Api:
    """Flask test client bound to one key (None: send no key)."""

    def __init__(self, app: Any, key: str | None, bearer: bool = False):
        self.app, self.key, self.bearer = app, key, bearer
        self.http = app.test_client()

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h: dict[str, str] = {}
        if self.key is not None:
            if self.bearer:
                h["Authorization"] = f"Bearer {self.key}"
            else:
                h["X-Admin-Key"] = self.key
        h.update(extra or {})
        return h

    def call(self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        url = path if path.startswith(("/health", "/metrics")) else f"/api/v1{path}"
        return self.http.open(url, method=method, json=json, headers=self.headers(headers), **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, json=json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.call("PATCH", path, json=json, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.call("DELETE", path, **kw)

    def as_key(self, key: str | None, bearer: bool = False) -> Api:
        return Api(self.app, key, bearer)



def make_running(client, leases, queue: str = "default", **options: Any) -> str:
    """A job that a (pretend) worker holds under a lease."""
    job_id = client.enqueue(NOOP, queue=queue, **options).id
    lease = leases.claim([queue], "host.1.w")
    assert lease is not None and lease.job_id == job_id
    return job_id


def make_failed(client, leases, queue: str = "default", message: str = "boom", **options: Any) -> str:
    job_id = client.enqueue(NOOP, queue=queue, max_attempts=1, **options).id
    lease = leases.claim([queue], "host.1.w")
    assert lease is not None and lease.job_id == job_id
    assert leases.fail(lease, RuntimeError(message), retryable=False) == "failed"
    return job_id


@contextlib.contextmanager
def live_admin_client(app: Any) -> Iterator[Any]:
    """An AdminClient speaking to `app` served by werkzeug in a thread, for as long as the block runs."""
    from werkzeug.serving import make_server

    from admin_api.client import AdminClient

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield AdminClient(f"http://127.0.0.1:{server.server_port}", ADMIN_KEY, timeout=10)
    finally:
        server.shutdown()
        thread.join(5)
