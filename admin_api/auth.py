"""Who is calling: `X-Admin-Key: <key>` (alias `X-API-KEY`) or `Authorization: Bearer <key>`.

ADMIN_API_KEY has every scope and no limits. Scoped keys (jobsvc.admin.apikeys) have their scopes and
optional namespace / queue limits. No key or a wrong key is 401; a key without the scope is 403.
In a dev run started without ADMIN_API_KEY, a request without a key acts as an unlimited "dev" key
(a presented key is still checked). Keys never reach a log line or an error message."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flask import current_app, g, request

from jobsvc.admin import apikeys

from .errors import ApiError

ADMIN_ID = "admin"
DEV_ID = "dev"


@dataclass(frozen=True)
class Principal:
    key_id: str
    scopes: tuple[str, ...]
    namespaces: frozenset[str] | None = None  # None: any
    queues: frozenset[str] | None = None

    @property
    def limited(self) -> bool:
        return self.namespaces is not None or self.queues is not None

    def grants(self, scope: str) -> bool:
        return apikeys.grants(self.scopes, scope)

    def sees(self, queue: str | None, namespace: str | None) -> bool:
        """May this key see / act on a job of that queue and namespace?"""
        if self.queues is not None and queue not in self.queues:
            return False
        return self.namespaces is None or namespace in self.namespaces

    def narrow(self, what: str, value: str | None) -> str | None:
        """A filter value for a limited key: the given one if allowed, the only allowed one if none given.
        403 when the value is outside the limits or a key limited to several gives none."""
        allowed = self.queues if what == "queue" else self.namespaces
        if allowed is None:
            return value
        if value is None:
            if len(allowed) == 1:
                return next(iter(allowed))
            raise forbidden(f"this key is limited to {what}s {', '.join(sorted(allowed))}: pass {what}=")
        if value not in allowed:
            raise forbidden(f"this key is not allowed {what} {value!r}")
        return value


UNLIMITED = (apikeys.ADMIN,)


def forbidden(message: str) -> ApiError:
    return ApiError(403, message, "forbidden")


def _presented() -> str | None:
    # X-API-KEY: the header of the admin API some clients migrate from (issue 16); the same key.
    key = request.headers.get("X-Admin-Key") or request.headers.get("X-API-KEY")
    if key:
        return key.strip()
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def authenticate() -> Principal:
    """The caller, or ApiError 401. Cached on flask.g for the request."""
    cached = getattr(g, "principal", None)
    if cached is not None:
        return cached
    presented = _presented()
    principal: Principal | None = None
    if presented is None:
        if dev_without_key():
            principal = Principal(DEV_ID, UNLIMITED)
        else:
            raise ApiError(401, "missing API key: send X-Admin-Key or Authorization: Bearer",
                           headers={"WWW-Authenticate": 'Bearer realm="jobsvc"'})
    else:
        principal = principal_for(presented)
    if principal is None:
        raise ApiError(401, "invalid API key", headers={"WWW-Authenticate": 'Bearer realm="jobsvc"'})
    g.principal = principal
    return principal


def dev_without_key() -> bool:
    """A dev run started without ADMIN_API_KEY: a caller without a key acts as the "dev" key."""
    return current_app.config["JOBSVC_ADMIN_KEY"] is None and bool(current_app.config["JOBSVC_DEV"])


def principal_for(presented: str) -> Principal | None:
    """The principal a presented key belongs to, or None: ADMIN_API_KEY, else a scoped key (both checks
    constant-time in the secret). Also the dashboard's sign-in."""
    admin_key: str | None = current_app.config["JOBSVC_ADMIN_KEY"]
    if admin_key is not None and apikeys.same_secret(presented, admin_key):
        return Principal(ADMIN_ID, UNLIMITED)
    key = apikeys.verify(current_app.extensions["jobsvc_redis"], current_app.config["JOBSVC"].key_prefix, presented)
    return principal_of(key) if key is not None else None


def principal_of(key: apikeys.ApiKey) -> Principal:
    return Principal(key.id, key.scopes, _set(key.namespaces), _set(key.queues))


def require(scope: str) -> Principal:
    principal = authenticate()
    if not principal.grants(scope):
        raise forbidden(f"this key lacks the {scope} scope")
    return principal


def require_unlimited(principal: Principal, what: str) -> None:
    if principal.limited:
        raise forbidden(f"{what} needs a key that is not limited to namespaces or queues")


def _set(values: Iterable[str] | None) -> frozenset[str] | None:
    return frozenset(values) if values is not None else None


def require_code_choice(who: Principal, path: str, what: str) -> None:
    """Only an admin key may name the Python code a job runs, and only inside the allow-list of modules
    (JOBSVC_ALLOWED_MODULES, jobsvc.allowlist): 403 for a lesser key, 422 (module_not_allowed) outside it.
    Everyone else names a registry function (`ns/name`) an admin declared, or a handler URL."""
    if not who.grants(apikeys.ADMIN):
        raise forbidden(f"{what} names Python code ({path!r}): only an admin key may; name a registry function "
                        f"(namespace/name) or a handler URL instead")
    current_app.config["JOBSVC"].module_allow_list().check_path(path)
