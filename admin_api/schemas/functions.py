"""Schemas of the functions registry: functions, namespaces, sync."""
from __future__ import annotations

from typing import Any

from marshmallow import fields, validates_schema

from jobsvc import validation as v
from jobsvc.engine.functions import FUNCTION_NAME
from jobsvc.engine.serialization import IMPORT_PATH

from .common import (
    BackoffOutSchema,
    Base,
    Bool,
    FullMatch,
    NamespaceName,
    QueueName,
    RegistryBackoffSchema,
    Strict,
    Timestamp,
    exactly_one,
    in_range,
    length,
    max_length,
    some_change,
)

FunctionName = lambda **kw: fields.String(validate=FullMatch(FUNCTION_NAME.pattern), **kw)  # noqa: E731


class _FunctionFields(Base):
    path = fields.String(validate=[max_length(v.FUNCTION_REF), FullMatch(IMPORT_PATH.pattern)],
                         metadata={"description": "import path of the callable deployed with the workers"})
    handler = fields.String(validate=length(v.URL),
                            metadata={"description": "an https URL: jobs of this function are HTTP handler jobs "
                                                     "(instead of `path`)"})
    queue = QueueName(allow_none=True)
    timeout = Strict(allow_none=True, validate=in_range(v.TIMEOUT), metadata={"description": "seconds"})
    max_attempts = Strict(allow_none=True, validate=in_range(v.MAX_ATTEMPTS))
    backoff = fields.Nested(RegistryBackoffSchema, allow_none=True)
    priority = Strict(allow_none=True, validate=in_range(v.PRIORITY))
    enabled = Bool(metadata={"description": "a disabled function refuses new jobs (409); its queued "
                                                      "jobs wait"})
    description = fields.String(allow_none=True, validate=max_length(v.DESCRIPTION))


class FunctionSyncItemSchema(_FunctionFields):
    name = FunctionName(required=True)

    @validates_schema
    def _path_or_handler(self, data: dict[str, Any], **kwargs: Any) -> None:
        exactly_one(data, "path", "handler", "give an import path or a handler URL (one of them)")


class FunctionCreateSchema(FunctionSyncItemSchema):
    namespace = NamespaceName(load_default=None, metadata={"description": "default `default`"})
    replace = Bool(load_default=False, metadata={
        "description": "true: an existing function of this name gets exactly this body (fields left out go back "
                       "to their defaults); false (default): an existing name is refused with 409 (use PATCH)"})


class FunctionPatchSchema(_FunctionFields):
    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        some_change(data)


class FunctionListQuery(Base):
    namespace = NamespaceName()
    cursor = fields.String(validate=length(v.FUNCTION_CURSOR), metadata={"description": "`next_cursor` of the "
                                                                                      "previous page"})
    limit = fields.Integer(load_default=100, validate=in_range(v.PAGE_LIMIT))


class FunctionSchema(Base):
    namespace = fields.String(required=True)
    name = fields.String(required=True)
    ref = fields.String(required=True, metadata={"description": "`namespace/name`: use it as a job's `function`"})
    path = fields.String(allow_none=True, required=True)
    handler = fields.String(allow_none=True, required=True)
    queue = fields.String(allow_none=True, required=True)
    timeout = fields.Integer(allow_none=True, required=True)
    max_attempts = fields.Integer(allow_none=True, required=True)
    backoff = fields.Nested(BackoffOutSchema, allow_none=True, required=True)
    priority = fields.Integer(allow_none=True, required=True)
    enabled = Bool(required=True)
    description = fields.String(required=True)
    version = fields.Integer(required=True, metadata={"description": "goes up on every change"})
    created_at = Timestamp(allow_none=True, required=True)
    updated_at = Timestamp(allow_none=True, required=True)


class FunctionPageSchema(Base):
    functions = fields.List(fields.Nested(FunctionSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class NamespaceSchema(Base):
    namespace = fields.String(required=True)
    functions = fields.Integer(required=True)
    disabled = fields.Integer(required=True)


class NamespaceListSchema(Base):
    namespaces = fields.List(fields.Nested(NamespaceSchema), required=True)


class FunctionSyncSchema(Base):
    namespace = NamespaceName(metadata={"description": "default `default` (or the key's one namespace)"})
    functions = fields.List(fields.Nested(FunctionSyncItemSchema), required=True,
                          validate=max_length(v.FUNCTION_SYNC))
    delete_missing = Bool(load_default=False,
                                    metadata={"description": "delete the namespace's functions not listed "
                                                             "(needs X-Confirm: true unless dry_run)"})
    dry_run = Bool(load_default=False, metadata={"description": "report, change nothing"})


class FunctionSyncResultSchema(Base):
    namespace = fields.String(required=True)
    dry_run = Bool(required=True)
    created = fields.List(fields.String(), required=True)
    updated = fields.List(fields.String(), required=True)
    deleted = fields.List(fields.String(), required=True)
    unchanged = fields.List(fields.String(), required=True)
