"""/api/v1/keys: create (the secret is shown once), list, get and revoke scoped API keys.
Needs jobs:admin on a key without namespace or queue limits (a limited key must not mint wider ones)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from jobsvc.admin import apikeys
from jobsvc.admin.apikeys import ADMIN, ApiKey

from .. import schemas as s
from ..api import audit_counts, config, conn, no_content, operation, reply
from ..auth import Principal, require_unlimited

bp = Blueprint("keys", __name__, url_prefix="/api/v1")

KEY = ("the key (never its secret)", s.KeySchema)


def key_dict(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "scopes": list(key.scopes),
            "namespaces": list(key.namespaces) if key.namespaces is not None else None,
            "queues": list(key.queues) if key.queues is not None else None, "created_at": key.created_ms}


@bp.post("/keys")
@operation("Create a scoped API key", scope=ADMIN, body=s.KeyCreateSchema, action="keys.create",
           responses={201: ("the key and its secret: shown this once", s.KeyCreatedSchema)},
           description="Scopes: jobs:read < jobs:write < jobs:admin. `namespaces` / `queues` limit what the key "
                       "sees and changes. Use the secret as X-Admin-Key or Authorization: Bearer.")
def create(who: Principal, body: dict[str, Any]) -> Response:
    require_unlimited(who, "managing keys")
    key, secret = apikeys.create(conn(), config().key_prefix, body["name"], body["scopes"], body.get("namespaces"),
                                 body.get("queues"))
    audit_counts(created=1, key_id=key.id)
    return reply(s.KeyCreatedSchema, dict(key_dict(key), secret=secret), 201)


@bp.get("/keys")
@operation("List API keys (never their secrets)", scope=ADMIN, responses={200: ("keys", s.KeyListSchema)})
def list_(who: Principal) -> Response:
    require_unlimited(who, "managing keys")
    return reply(s.KeyListSchema, {"keys": [key_dict(k) for k in apikeys.list_keys(conn(), config().key_prefix)]})


@bp.get("/keys/<key_id>")
@operation("One API key", scope=ADMIN, responses={200: KEY}, errors=(404,))
def get(key_id: str, who: Principal) -> Response:
    require_unlimited(who, "managing keys")
    return reply(s.KeySchema, key_dict(apikeys.get(conn(), config().key_prefix, key_id)))


@bp.delete("/keys/<key_id>")
@operation("Revoke an API key: it stops working at once", scope=ADMIN, action="keys.revoke",
           responses={204: ("revoked", None)}, errors=(404,))
def revoke(key_id: str, who: Principal) -> Response:
    require_unlimited(who, "managing keys")
    apikeys.revoke(conn(), config().key_prefix, key_id)
    audit_counts(revoked=1)
    return no_content()
