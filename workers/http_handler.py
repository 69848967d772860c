"""Running an HTTP handler job: POST {job_id, attempt, payload} to its URL, signed, and map the answer.

2xx completes the job with the body as its result (capped); 202 leaves it running under a callback lease;
408, 429, 5xx, timeouts and connection errors retry with backoff (429/503 honour Retry-After); a redirect,
another 4xx or a URL the SSRF guard refuses fails it at once."""
from __future__ import annotations

import email.utils
import json
import signal
import time
from collections.abc import Callable
from typing import Any

import requests

from jobsvc import defaults
from jobsvc.config import Config
from jobsvc.engine.job import DEFAULT_NAMESPACE
from jobsvc.engine.leases import Lease
from jobsvc.http import signing, urlguard

from .execution import HandBack, Outcome, Terminated

RETRYABLE_STATUS = frozenset({408, 429})
# Seconds past the request timeout before SIGALRM stops a call stuck where requests' timeout does not
# reach (a slow DNS answer): the worker is never held much longer than the job's timeout.
ALARM_SLACK = 5


class HandlerCaller:
    """One pooled, SSRF-guarded session per worker process."""

    def __init__(self, config: Config):
        self.config = config
        self.session = urlguard.safe_session(allow_private=config.allow_private_urls,
                                             pool_maxsize=defaults.HTTP_POOL_SIZE)

    def call(self, lease: Lease, on_start: Callable[[], None], on_end: Callable[[], None]) -> Outcome:
        """Call the job's handler. HandBack and Terminated propagate to the caller, as for Python jobs."""
        fields = lease.fields
        url = fields["js_handler"]
        namespace = fields.get("js_ns") or DEFAULT_NAMESPACE
        secret = self.config.secret_for(namespace)
        if not secret:
            return _failed("HandlerNotConfigured", "no JOBSVC_HANDLER_SECRET: this worker does not send unsigned "
                                                   "handler requests", retryable=False)
        idempotency_key = fields.get("js_idem") or lease.job_id
        body = request_body(lease.job_id, lease.attempt, namespace, idempotency_key, fields.get("js_payload"))
        headers = signing.headers(secret, body, job_id=lease.job_id, attempt=lease.attempt,
                                  idempotency_key=idempotency_key)
        headers["X-Jobsvc-Namespace"] = namespace
        # The service finishes a 202-accepted job with this token (POST /api/v1/jobs/{id}/callback).
        headers["X-Jobsvc-Token"] = lease.token
        timeout = float(lease.timeout or defaults.HANDLER_TIMEOUT)
        started = time.monotonic()
        status: int | None = None
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout + ALARM_SLACK)
            on_start()
            try:
                # The whole answer within the timeout, and no more of its body than is kept (a URL any
                # writer chooses must not stream gigabytes into the worker).
                resp = urlguard.post(self.session, url, body=body, headers=headers, timeout=timeout,
                                     max_body=defaults.HANDLER_RESULT_MAX, deadline=timeout)
            finally:
                on_end()
                signal.setitimer(signal.ITIMER_REAL, 0)
            status = resp.status_code
            return outcome_of(resp, _run(status, started))
        except (HandBack, Terminated):
            raise
        except requests.Timeout:
            return _failed("HandlerTimeout", f"no answer within {timeout:g}s", run=_run(status, started))
        except Exception as exc:  # noqa: BLE001 - connection errors, refused addresses, a timeout alarm
            if urlguard.is_blocked(exc):
                return _failed("UnsafeURL", f"refused to call the handler: {_root(exc)}", retryable=False,
                               run=_run(status, started))
            return _failed(type(exc).__name__, f"cannot reach the handler: {_root(exc)}", run=_run(status, started))


def request_body(job_id: str, attempt: int, namespace: str, idempotency_key: str, payload_json: str | None) -> bytes:
    """The JSON body POSTed to a handler; the stored payload text is spliced in as is (already JSON). The
    namespace and idempotency key are in the body, so the signature covers them."""
    return (f'{{"job_id":{json.dumps(job_id)},"attempt":{int(attempt)},"namespace":{json.dumps(namespace)},'
            f'"idempotency_key":{json.dumps(idempotency_key)},"payload":{payload_json or "null"}}}').encode()


def outcome_of(resp: requests.Response, run: dict[str, Any]) -> Outcome:
    status = resp.status_code
    if status == 202:
        return Outcome(True, accepted=True, run=run)
    if 200 <= status < 300:
        result, truncated = response_result(resp)
        if truncated:
            run["result_truncated"] = True
        return Outcome(True, result, run=run)
    message = f"handler answered {status}{_snippet(resp)}"
    if 300 <= status < 400:
        return _failed("HandlerRedirect", f"{message} (redirects are not followed)", retryable=False, run=run)
    if status in RETRYABLE_STATUS or status >= 500:
        out = _failed("HandlerHTTPError", message, run=run)
        out.min_delay = retry_after(resp.headers.get("Retry-After"))
        return out
    return _failed("HandlerRejected", message, retryable=False, run=run)


def response_result(resp: requests.Response) -> tuple[Any, bool]:
    """The body as the job's result: JSON when it says so and parses, else text; capped in size."""
    raw = resp.content[:defaults.HANDLER_RESULT_MAX + 1]
    truncated = len(raw) > defaults.HANDLER_RESULT_MAX
    raw = raw[:defaults.HANDLER_RESULT_MAX]
    if not raw:
        return None, False
    if not truncated and "json" in resp.headers.get("Content-Type", ""):
        try:
            return json.loads(raw), False
        except ValueError:
            pass
    return raw.decode(resp.encoding or "utf-8", errors="replace"), truncated


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), capped; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, min(seconds, float(defaults.RETRY_AFTER_MAX)))


def _run(status: int | None, started: float) -> dict[str, Any]:
    return {"http_status": status, "duration_ms": round((time.monotonic() - started) * 1000, 1)}


def _failed(exc_type: str, message: str, retryable: bool = True, run: dict[str, Any] | None = None) -> Outcome:
    return Outcome(False, exc_type=exc_type, message=message, retryable=retryable, run=run)


def _snippet(resp: requests.Response) -> str:
    text = resp.content[:300].decode(resp.encoding or "utf-8", errors="replace").strip()
    return f": {text}" if text else ""


def _root(exc: BaseException) -> str:
    """The innermost cause's message: requests wraps the interesting part two or three levels deep."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        nxt = seen.__cause__ or seen.__context__
        if nxt is None or nxt is seen:
            break
        seen = nxt
    return str(seen) or type(seen).__name__
