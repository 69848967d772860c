"""Dashboard sessions: sign-in with an API key, a signed cookie that names the key (never holds it), the key
re-checked on every request, and a per-session CSRF token on every POST.

The cookie (Flask's signed session) carries: `kid` (the key id, or "admin" / "dev"), `ak` (for ADMIN_API_KEY,
an HMAC of it under the session secret, so rotating the admin key ends its sessions), `t` (sign-in time)
and `csrf`. It is HttpOnly, SameSite=Strict, scoped to /dashboard, and Secure when the request came over
https (or X-Forwarded-Proto says so and JOBSVC_DASHBOARD_TRUST_PROXY=1)."""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from datetime import timedelta

from flask import Flask, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.wrappers import Request

from jobsvc import defaults
from jobsvc.admin import apikeys
from jobsvc.errors import NotFound

from ..auth import ADMIN_ID, DEV_ID, UNLIMITED, Principal, dev_without_key, principal_for, principal_of
from ..errors import ApiError

log = logging.getLogger("jobsvc.api")

SECRET_ENV = "JOBSVC_DASHBOARD_SECRET"
TRUST_PROXY_ENV = "JOBSVC_DASHBOARD_TRUST_PROXY"
COOKIE_NAME = "jobsvc_dashboard"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class DashboardSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, Secure whenever the request itself was https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(super().get_cookie_secure(app)) or is_https()

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # Only the dashboard has sessions (its cookie is scoped to /dashboard): API calls skip building the
        # cookie signer, a third of a millisecond on every pull claim and ack.
        if not request.path.startswith("/dashboard"):
            return self.null_session_class()
        return super().open_session(app, request)


def is_https() -> bool:
    if request.is_secure:
        return True
    if current_app.config.get("JOBSVC_DASHBOARD_TRUST_PROXY"):
        return request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower() == "https"
    return False


def _secret(app: Flask) -> bytes:
    """The session-signing secret: $JOBSVC_DASHBOARD_SECRET, else derived from ADMIN_API_KEY (the same in every
    gunicorn worker and across restarts), else random per process (dev runs without a key)."""
    configured = os.environ.get(SECRET_ENV, "").strip()
    if configured:
        return configured.encode()
    admin_key = app.config.get("JOBSVC_ADMIN_KEY")
    if admin_key:
        return hmac.new(admin_key.encode(), b"jobsvc dashboard sessions v1", hashlib.sha256).digest()
    log.warning("dashboard: no %s and no ADMIN_API_KEY: sessions are signed with a random per-process secret "
                "(sign-ins do not survive a restart and break with several web workers)", SECRET_ENV)
    return secrets.token_bytes(32)


def configure(app: Flask) -> None:
    """Session secret and cookie flags. The cookie is scoped to /dashboard: the API never reads it."""
    if not app.secret_key:
        app.secret_key = _secret(app)
    app.session_interface = DashboardSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME, SESSION_COOKIE_PATH="/dashboard", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=defaults.DASHBOARD_SESSION_TTL),
        # The cookie's expiry stays the sign-in time + TTL instead of sliding with every poll.
        SESSION_REFRESH_EACH_REQUEST=False,
        JOBSVC_DASHBOARD_TRUST_PROXY=os.environ.get(TRUST_PROXY_ENV, "").strip().lower() in ("1", "true", "yes"),
    )


def _admin_marker(admin_key: str) -> str:
    # Keyed by the session secret: the cookie is readable by its holder, and a plain hash of a short admin
    # key could be brute-forced offline.
    secret = current_app.secret_key
    key = secret if isinstance(secret, bytes) else str(secret).encode()
    return hmac.new(key, admin_key.encode(), hashlib.sha256).hexdigest()[:32]


def sign_in(presented: str) -> Principal | None:
    """Check a key exactly as X-Admin-Key is checked; on success start a fresh session naming it.
    An empty key signs in as "dev" only in a dev run without ADMIN_API_KEY."""
    presented = presented.strip()
    principal = principal_for(presented) if presented else _dev_principal()
    if principal is None:
        return None
    session.clear()  # a new session on sign-in: nothing set before it (fixation) carries over
    session.permanent = True
    session["kid"] = principal.key_id
    if principal.key_id == ADMIN_ID:
        session["ak"] = _admin_marker(current_app.config["JOBSVC_ADMIN_KEY"])
    session["t"] = int(time.time())
    session[CSRF_FIELD] = secrets.token_urlsafe(32)
    g.dashboard_principal = principal
    return principal


def sign_out() -> None:
    session.clear()


def current() -> Principal | None:
    """The signed-in key, re-checked now (revoked, rotated or expired: None and the session is cleared)."""
    if "dashboard_principal" in g:
        return g.dashboard_principal
    principal = _check(session.get("kid"))
    if principal is None and session.get("kid"):
        session.clear()
    g.dashboard_principal = principal
    return principal


def _check(kid: object) -> Principal | None:
    if not isinstance(kid, str) or not kid:
        return None
    started = session.get("t")
    if not isinstance(started, int) or not 0 <= time.time() - started <= defaults.DASHBOARD_SESSION_TTL:
        return None
    if kid == ADMIN_ID:
        admin_key = current_app.config.get("JOBSVC_ADMIN_KEY")
        marker = session.get("ak")
        if admin_key and isinstance(marker, str) and hmac.compare_digest(marker, _admin_marker(admin_key)):
            return Principal(ADMIN_ID, UNLIMITED)
        return None
    if kid == DEV_ID:
        return _dev_principal()
    try:
        key = apikeys.get(current_app.extensions["jobsvc_redis"], current_app.config["JOBSVC"].key_prefix, kid)
    except NotFound:
        return None
    return principal_of(key)


def _dev_principal() -> Principal | None:
    """The "dev" sign-in: only in a dev run without ADMIN_API_KEY."""
    return Principal(DEV_ID, UNLIMITED) if dev_without_key() else None


def csrf_token() -> str:
    """This session's CSRF token (made on first use: the sign-in form needs one before anyone signs in)."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str) or not token:
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """403 unless the POST carries this session's token (form field or header)."""
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not isinstance(expected, str) or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ApiError(403, "missing or wrong CSRF token: reload the page and try again", "csrf_failed")
