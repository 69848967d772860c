"""Python client of the admin API: one method per endpoint.

    from admin_api.client import AdminClient
    api = AdminClient("http://127.0.0.1:8000", key)
    page = api.list_jobs(state="failed", queue="mail", limit=100)
    api.bulk_retry(state="failed", queue="mail", dry_run=True)   # count and sample, nothing changes
    api.bulk_retry(state="failed", queue="mail")                 # sends X-Confirm: true

Errors come back as AdminApiError with the HTTP status and the API's error code, message, details."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

API = "/api/v1"


class AdminApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details or {}


class AdminClient:
    def __init__(self, base_url: str, key: str, timeout: float = 30.0, session: requests.Session | None = None):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["X-Admin-Key"] = key

    # -- plumbing ------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None,
              confirm: bool = False) -> Any:
        headers = {"X-Confirm": "true"} if confirm else None
        # The API reads only `true` / `false` as query booleans (requests would send True as "True").
        clean = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in (params or {}).items() if v is not None}
        resp = self.session.request(method, self.base + path, params=clean, json=json, headers=headers,
                                    timeout=self.timeout)
        if resp.status_code >= 400:
            try:
                err = resp.json()["error"]
            except (ValueError, KeyError, TypeError):
                err = {"code": "http_error", "message": resp.text[:500]}
            raise AdminApiError(resp.status_code, err.get("code", "error"), err.get("message", ""),
                                err.get("details"))
        return resp.json() if resp.content else None

    @staticmethod
    def _body(**fields: Any) -> dict[str, Any]:
        return {k: v for k, v in fields.items() if v is not None}

    # -- meta ----------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def openapi(self) -> dict[str, Any]:
        return self._call("GET", f"{API}/openapi.json")

    # -- jobs ----------------------------------------------------------------------------------------

    def create_job(self, function: str, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None,
                   **options: Any) -> dict[str, Any]:
        """Options: queue, namespace, priority, max_attempts, backoff {type, base, cap}, timeout, delay | run_at,
        idempotency_key, result_ttl, failure_ttl."""
        return self._call("POST", f"{API}/jobs", json=self._body(function=function, args=args, kwargs=kwargs,
                                                                   **options))

    def create_handler_job(self, handler: str, payload: Any = None, **options: Any) -> dict[str, Any]:
        """An HTTP handler job (docs/http.md). Options as create_job, plus callback_url and callback_timeout;
        timeout is the request's, 1-30 s."""
        return self._call("POST", f"{API}/jobs", json=self._body(handler=handler, payload=payload, **options))

    def create_jobs(self, jobs: list[dict[str, Any]]) -> dict[str, Any]:
        """Up to 100 jobs, all or nothing."""
        return self._call("POST", f"{API}/jobs/batch", json={"jobs": jobs})

    def list_jobs(self, **filters: Any) -> dict[str, Any]:
        """Filters: queue, state, function, namespace, trigger, created_after, created_before, cursor, limit,
        include_result. Returns {"jobs": [...], "next_cursor": str | None}."""
        return self._call("GET", f"{API}/jobs", params=filters)

    def iter_jobs(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every job matching the filters, page after page."""
        cursor = None
        while True:
            page = self.list_jobs(cursor=cursor, **filters)
            yield from page["jobs"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def get_job(self, job_id: str, include_result: bool = False) -> dict[str, Any]:
        return self._call("GET", f"{API}/jobs/{job_id}", params={"include_result": include_result or None})

    def job_runs(self, job_id: str, cursor: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """Oldest first: {"runs": [{id, job_id, attempt, outcome, scheduled_at, started_at, ended_at, duration_ms,
        ...}], "next_cursor"}."""
        return self._call("GET", f"{API}/jobs/{job_id}/runs", params={"cursor": cursor, "limit": limit})

    def disable_job(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"{API}/jobs/{job_id}/disable")

    def enable_job(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"{API}/jobs/{job_id}/enable")

    def trigger_job(self, job_id: str) -> dict[str, Any]:
        """Run a scheduled job now: {"job_id", "run_id", "triggered_at"}."""
        return self._call("POST", f"{API}/jobs/{job_id}/trigger")

    def patch_job(self, job_id: str, **changes: Any) -> dict[str, Any]:
        """Changes: args, kwargs, priority, run_at (only scheduled or queued jobs)."""
        return self._call("PATCH", f"{API}/jobs/{job_id}", json=changes)

    def delete_job(self, job_id: str) -> Any:
        return self._call("DELETE", f"{API}/jobs/{job_id}")

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"{API}/jobs/{job_id}/cancel")

    def terminate_job(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"{API}/jobs/{job_id}/terminate")

    def retry_job(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"{API}/jobs/{job_id}/retry")

    def stats(self, by: str | None = None) -> dict[str, Any]:
        return self._call("GET", f"{API}/jobs/stats", params={"by": by})

    # -- pull workers (docs/http.md) ------------------------------------------------------------------

    def claim(self, queue: str, count: int = 1, visibility_timeout: float | None = None,
              worker: str | None = None) -> list[dict[str, Any]]:
        """Lease up to `count` jobs of `queue`; each has `id`, `token`, `attempt`, `function`, `args`, `kwargs`,
        `payload` and its lease expiry. An empty list when nothing is ready."""
        body = self._body(queue=queue, count=count, visibility_timeout=visibility_timeout, worker=worker)
        return self._call("POST", f"{API}/jobs/claim", json=body)["jobs"]

    def heartbeat(self, job_id: str, token: str, visibility_timeout: float | None = None) -> dict[str, Any]:
        """Extend the lease; AdminApiError 409 when the token no longer holds it."""
        return self._call("POST", f"{API}/jobs/{job_id}/heartbeat",
                          json=self._body(token=token, visibility_timeout=visibility_timeout))

    def ack(self, job_id: str, token: str, status: str = "completed", result: Any = None,
            error: str | dict[str, Any] | None = None, retryable: bool | None = None) -> dict[str, Any]:
        """Finish a pulled job: status completed (with result) or failed (with error, retryable)."""
        return self._call("POST", f"{API}/jobs/{job_id}/ack", json=self._ack_body(token, status, result, error,
                                                                                 retryable))

    def ack_many(self, acks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Up to 100 acks in one request, each {id, token, status, result | error, retryable}; one result per
        ack, in order: {id, state, run_at, error} (error set, state null, for a token that lost its job)."""
        return self._call("POST", f"{API}/jobs/ack", json={"acks": acks})["results"]

    def callback(self, job_id: str, token: str, status: str = "completed", result: Any = None,
                 error: str | dict[str, Any] | None = None, retryable: bool | None = None) -> dict[str, Any]:
        """The later outcome of an HTTP handler job that answered 202 (the body and effect of `ack`)."""
        return self._call("POST", f"{API}/jobs/{job_id}/callback", json=self._ack_body(token, status, result, error,
                                                                                      retryable))

    @staticmethod
    def _ack_body(token: str, status: str, result: Any, error: Any, retryable: bool | None) -> dict[str, Any]:
        body: dict[str, Any] = {"token": token, "status": status}
        if result is not None:
            body["result"] = result
        if error is not None:
            body["error"] = error
        if retryable is not None:
            body["retryable"] = retryable
        return body

    # -- bulk (a dry run needs no confirmation; the real run sends X-Confirm: true) --------------------

    def _bulk(self, path: str, dry_run: bool, filters: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"{API}{path}", json=self._body(dry_run=dry_run, **filters), confirm=not dry_run)

    def bulk_retry(self, dry_run: bool = False, **filters: Any) -> dict[str, Any]:
        """Filters: queue, namespace, function, state, older_than, newer_than (seconds), error_contains."""
        return self._bulk("/jobs/batch/retry", dry_run, filters)

    def requeue_quarantined(self, dry_run: bool = False, **filters: Any) -> dict[str, Any]:
        return self._bulk("/jobs/batch/requeue_quarantined", dry_run, filters)

    def prune(self, dry_run: bool = False, **filters: Any) -> dict[str, Any]:
        return self._bulk("/jobs/prune", dry_run, filters)

    def delete_expired(self, dry_run: bool = False, **options: Any) -> dict[str, Any]:
        """Delete ended jobs past their result / failure TTL. Options: limit (expired entries handled in this call;
        `more` in the reply says if some remain)."""
        return self._bulk("/jobs/expired/delete", dry_run, options)

    ttl_sweep = delete_expired  # the old name, as /jobs/ttl/sweep is the old path

    def cancel_stale(self, dry_run: bool = False, **options: Any) -> dict[str, Any]:
        """Cancel queued jobs older than queued_for seconds, terminate jobs running longer than running_for
        seconds; filters: queue, namespace, function."""
        return self._bulk("/jobs/stale/cancel", dry_run, options)

    def integrity_sweep(self, fix: bool = False, **scope: Any) -> dict[str, Any]:
        """fix=False reports; fix=True repairs (and sends the confirmation header). Scope: queue, namespace."""
        return self._call("POST", f"{API}/jobs/integrity/sweep", json=self._body(fix=fix, **scope), confirm=fix)

    # -- queues, workers ---------------------------------------------------------------------------------

    def queues(self) -> dict[str, Any]:
        return self._call("GET", f"{API}/queues")

    def queue(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"{API}/queues/{name}")

    def pause_queue(self, name: str) -> dict[str, Any]:
        return self._call("POST", f"{API}/queues/{name}/pause")

    def resume_queue(self, name: str) -> dict[str, Any]:
        return self._call("POST", f"{API}/queues/{name}/resume")

    def workers(self) -> dict[str, Any]:
        return self._call("GET", f"{API}/workers")

    # -- keys, audit -----------------------------------------------------------------------------------

    def create_key(self, name: str, scopes: list[str], namespaces: list[str] | None = None,
                   queues: list[str] | None = None) -> dict[str, Any]:
        return self._call("POST", f"{API}/keys", json=self._body(name=name, scopes=scopes, namespaces=namespaces,
                                                                   queues=queues))

    def list_keys(self) -> dict[str, Any]:
        return self._call("GET", f"{API}/keys")

    def get_key(self, key_id: str) -> dict[str, Any]:
        return self._call("GET", f"{API}/keys/{key_id}")

    def revoke_key(self, key_id: str) -> Any:
        return self._call("DELETE", f"{API}/keys/{key_id}")

    def audit(self, cursor: str | None = None, limit: int | None = None) -> dict[str, Any]:
        return self._call("GET", f"{API}/audit", params={"cursor": cursor, "limit": limit})

    # -- schedules -------------------------------------------------------------------------------------

    def list_schedules(self, cursor: str | None = None, limit: int | None = None, namespace: str | None = None,
                       enabled: bool | None = None) -> dict[str, Any]:
        """Returns {"schedules": [...], "next_cursor": str | None}."""
        params = {"cursor": cursor, "limit": limit, "namespace": namespace,
                  "enabled": None if enabled is None else str(enabled).lower()}
        return self._call("GET", f"{API}/schedules", params=params)

    def iter_schedules(self, **filters: Any) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.list_schedules(cursor=cursor, **filters)
            yield from page["schedules"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def create_schedule(self, function: str, *, cron: str | None = None, interval: float | None = None,
                        **fields: Any) -> dict[str, Any]:
        """Fields: id, timezone, args, kwargs, queue, namespace, priority, max_attempts, backoff {type, base, cap,
        jitter}, timeout, result_ttl, failure_ttl, enabled, start_at, end_at, misfire, misfire_grace, max_catchup,
        overlap, description."""
        return self._call("POST", f"{API}/schedules", json=self._body(function=function, cron=cron, interval=interval,
                                                                        **fields))

    def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        return self._call("GET", f"{API}/schedules/{schedule_id}")

    def patch_schedule(self, schedule_id: str, **changes: Any) -> dict[str, Any]:
        """Any definition field (None clears an optional one, e.g. end_at); enabled=False disables it."""
        return self._call("PATCH", f"{API}/schedules/{schedule_id}", json=changes)

    def delete_schedule(self, schedule_id: str) -> Any:
        return self._call("DELETE", f"{API}/schedules/{schedule_id}")

    def execute_schedule(self, schedule_id: str) -> dict[str, Any]:
        """Run it now: returns {"schedule_id", "job_id"}."""
        return self._call("POST", f"{API}/schedules/{schedule_id}/execute")

    def schedule_runs(self, schedule_id: str, cursor: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """Newest first: {"runs": [{job_id, scheduled_at, trigger, status, started_at, finished_at, duration_ms,
        error}], "next_cursor"}."""
        return self._call("GET", f"{API}/schedules/{schedule_id}/runs", params={"cursor": cursor, "limit": limit})

    # -- functions registry ------------------------------------------------------------------------------

    def list_functions(self, namespace: str | None = None, cursor: str | None = None,
                       limit: int | None = None) -> dict[str, Any]:
        return self._call("GET", f"{API}/functions", params={"namespace": namespace, "cursor": cursor, "limit": limit})

    def register_function(self, name: str, path: str, namespace: str | None = None, **options: Any) -> dict[str, Any]:
        """Create `namespace/name` (an existing one: 409 already_exists, unless `replace=True`, which sets every
        field to these, the rest to defaults). Options: queue, timeout, max_attempts, backoff {type, base, cap,
        jitter}, priority, enabled, description, replace."""
        return self._call("POST", f"{API}/functions", json=self._body(namespace=namespace, name=name, path=path,
                                                                        **options))

    def get_function(self, namespace: str, name: str) -> dict[str, Any]:
        return self._call("GET", f"{API}/functions/{namespace}/{name}")

    def patch_function(self, namespace: str, name: str, **changes: Any) -> dict[str, Any]:
        return self._call("PATCH", f"{API}/functions/{namespace}/{name}", json=changes)

    def delete_function(self, namespace: str, name: str) -> Any:
        return self._call("DELETE", f"{API}/functions/{namespace}/{name}")

    def namespaces(self) -> dict[str, Any]:
        return self._call("GET", f"{API}/namespaces")

    def sync_functions(self, namespace: str, functions: list[dict[str, Any]], delete_missing: bool = False,
                       dry_run: bool = False) -> dict[str, Any]:
        """Make `namespace` hold exactly these functions ({name, path, ...}); a real run sends X-Confirm: true."""
        return self._call("POST", f"{API}/functions/sync",
                          json={"namespace": namespace, "functions": functions, "delete_missing": delete_missing,
                                "dry_run": dry_run}, confirm=not dry_run)
