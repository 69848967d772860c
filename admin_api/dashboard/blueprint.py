"""The dashboard blueprint: the sign-in gate and CSRF check in front of every view, security headers,
HTML error pages (JSON for the live-refresh endpoints), and the helpers templates use."""
from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from flask import Blueprint, Flask, Response, redirect, render_template, request, url_for
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse  # what redirect() makes

from jobsvc import defaults
from jobsvc.errors import JobsvcError

from ..errors import ApiError, status_of, to_response
from . import session as sess
from .data import Rights

log = logging.getLogger("jobsvc.api")

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates",
               static_folder="static", static_url_path="/static")

PUBLIC = frozenset({"dashboard.login", "dashboard.static"})
LIVE_PREFIX = "/dashboard/api/"
# Pages load only their own script, style and inline SVG: an injected <script> or a framing site gets nothing.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def is_live() -> bool:
    """A live-refresh (JSON) request rather than a page."""
    return request.path.startswith(LIVE_PREFIX)


def safe_next(target: str | None, default: str) -> str:
    """A redirect target from a form or query: only a path inside the dashboard (no open redirect)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or not parts.path.startswith("/dashboard"):
        return default
    return target


@bp.before_request
def gate() -> BaseResponse | None:
    if request.method == "POST":
        sess.check_csrf()  # every POST, the sign-in form's included, before anything else runs
    if request.endpoint in PUBLIC:
        return None
    if sess.current() is None:
        if is_live():
            raise ApiError(401, "not signed in (or the session ended): reload the page to sign in")
        return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
    return None


@bp.after_request
def headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "dashboard.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(Exception)
def error_page(exc: Exception) -> Any:
    if is_live():
        return to_response(exc)
    status = status_of(exc)
    if isinstance(exc, ApiError):
        message = exc.message
    elif isinstance(exc, JobsvcError):
        message = str(exc)
    elif isinstance(exc, HTTPException):
        message = exc.description or exc.name
    elif status == 503:
        message = "Redis is unavailable; try again shortly"
    else:
        # not log.exception: an error handler runs outside the except block, so the exception is passed
        log.error("unhandled error in the dashboard", exc_info=exc)
        message = "internal error"
    return render_template("dashboard/error.html", status=status, message=message), status


# -- template helpers -----------------------------------------------------------------------------------


def fmt_ms(ms: int | None) -> str:
    """Epoch ms as UTC date and time to the second."""
    if not ms:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + " UTC"


def fmt_short(ms: int | None) -> str:
    """Epoch ms as UTC date and time to the second, without the zone (the column header says UTC)."""
    if not ms:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


def duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    ms = float(ms)
    if ms < 1000:
        return f"{ms:.0f} ms"
    s = ms / 1000
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def ago(ms: int | None) -> str:
    """Relative to now: "12 s ago" or "in 3.0 min"."""
    if not ms:
        return "—"
    delta = time.time() * 1000 - ms
    return f"{duration(delta)} ago" if delta >= 0 else f"in {duration(-delta)}"


def compact(value: Any, limit: int) -> str:
    """One-line JSON, cut at `limit` characters."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, default=repr)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dotted(name: str | None) -> Markup:
    """A dotted name (a function's import path) that may wrap after its dots, and only there."""
    return Markup(".<wbr>").join(escape(part) for part in (name or "").split("."))


def pretty(value: Any, limit: int) -> str:
    """Indented JSON, cut at `limit` characters (the audit log's parameters in full, when they are long)."""
    text = json.dumps(value, indent=2, sort_keys=True, default=repr, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@bp.context_processor
def template_globals() -> dict[str, Any]:
    try:
        who = sess.current() if request.endpoint not in PUBLIC else None
    except redis.RedisError:  # the error page of a Redis outage must still render
        who = None
    return {"who": who, "rights": Rights.of(who) if who else None, "csrf_token": sess.csrf_token,
            "refresh_ms": defaults.DASHBOARD_REFRESH * 1000, "fmt_ms": fmt_ms, "ago": ago, "duration": duration,
            "compact": compact, "pretty": pretty, "fmt_short": fmt_short, "dotted": dotted}


def register(app: Flask) -> None:
    """Session settings and the blueprint (its routes are added by pages, actions and signin)."""
    sess.configure(app)
    app.register_blueprint(bp)
