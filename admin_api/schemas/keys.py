"""Schemas of API keys and the audit log."""
from __future__ import annotations

from marshmallow import fields, validate

from jobsvc import validation as v
from jobsvc.admin import apikeys

from .common import Base, NamespaceName, QueueName, Timestamp, in_range, length


class KeyCreateSchema(Base):
    name = fields.String(required=True, validate=length(v.KEY_NAME))
    scopes = fields.List(fields.String(validate=validate.OneOf(apikeys.SCOPES)), required=True,
                         validate=length(v.Bounds(1, len(apikeys.SCOPES))))  # each at most once
    namespaces = fields.List(NamespaceName(), validate=length(v.KEY_LIMITS),
                             metadata={"description": "limit the key to these namespaces"})
    queues = fields.List(QueueName(), validate=length(v.KEY_LIMITS),
                         metadata={"description": "limit the key to these queues"})


class KeySchema(Base):
    id = fields.String(required=True)
    name = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)
    namespaces = fields.List(fields.String(), allow_none=True, required=True)
    queues = fields.List(fields.String(), allow_none=True, required=True)
    created_at = Timestamp(allow_none=True, required=True)


class KeyCreatedSchema(KeySchema):
    secret = fields.String(required=True, metadata={"description": "shown once; only its hash is stored"})


class KeyListSchema(Base):
    keys = fields.List(fields.Nested(KeySchema), required=True)


class AuditQuery(Base):
    cursor = fields.String(validate=length(v.AUDIT_CURSOR))
    limit = fields.Integer(load_default=50, validate=in_range(v.PAGE_LIMIT))


class AuditEntrySchema(Base):
    id = fields.String(required=True)
    time = Timestamp(required=True)
    key_id = fields.String(required=True)
    action = fields.String(required=True)
    status = fields.Integer(allow_none=True, required=True)
    params = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)


class AuditPageSchema(Base):
    entries = fields.List(fields.Nested(AuditEntrySchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
