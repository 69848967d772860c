"""Schemas of bulk operations (retry, requeue quarantined, prune) and sweeps (TTL, integrity)."""
from __future__ import annotations

from marshmallow import fields, validate

from jobsvc import validation as v
from jobsvc.engine import states as _states

from .common import Base, Bool, Counts, NamespaceName, QueueName, in_range, length

# The states bulk retry and prune accept: jobsvc.engine.states derives them from its edge table.
RETRYABLE = [s.value for s in _states.RETRYABLE]
PRUNABLE = [s.value for s in _states.PRUNABLE]


class _BulkBase(Base):
    queue = QueueName()
    namespace = NamespaceName()
    function = fields.String(validate=length(v.FUNCTION_REF))
    older_than = fields.Float(validate=in_range(v.DELAY),
                              metadata={"description": "seconds: jobs that ended (or, never ended, were created) "
                                                       "longer ago than this"})
    newer_than = fields.Float(validate=in_range(v.DELAY),
                              metadata={"description": "seconds: jobs that ended more recently than this"})
    error_contains = fields.String(validate=length(v.DESCRIPTION),
                                   metadata={"description": "substring of the error (case-insensitive)"})
    dry_run = Bool(load_default=False,
                             metadata={"description": "count and sample, change nothing (no X-Confirm needed)"})


class BulkRetrySchema(_BulkBase):
    state = fields.String(validate=validate.OneOf(RETRYABLE), metadata={"description": "default: failed"})


class BulkQuarantineSchema(_BulkBase):
    pass


class BulkPruneSchema(_BulkBase):
    state = fields.String(validate=validate.OneOf(PRUNABLE), metadata={"description": "default: every ended state"})


class SweepSchema(Base):
    dry_run = Bool(load_default=False)


class TtlSweepSchema(SweepSchema):
    limit = fields.Integer(strict=True, validate=in_range(v.TTL_SWEEP_LIMIT),
                           metadata={"description": "expired entries handled in this call; `more` says if any remain"})


class BulkResultSchema(Base):
    operation = fields.String(required=True)
    dry_run = Bool(required=True)
    matched = fields.Integer(required=True)
    changed = fields.Integer(required=True)
    sample = fields.List(fields.String(), required=True, metadata={"description": "some matched job ids"})
    skipped = fields.Integer(required=True, metadata={"description": "gone or moved on meanwhile: safe to repeat"})
    details = Counts(required=True, metadata={"description": "per-operation counts"})
    more = Bool(required=True, metadata={"description": "stopped at a limit: call again"})


class IntegrityReportSchema(Base):
    fixed = Bool(required=True)
    clean = Bool(required=True)
    total = fields.Integer(required=True, metadata={"description": "problems found"})
    counts = Counts(required=True, metadata={"description": "problems per category"})
    samples = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True,
                          metadata={"description": "some job ids per category"})
    scanned = fields.Integer(required=True, metadata={"description": "job hashes looked at"})
    busy_groups = fields.List(fields.String(), required=True,
                              metadata={"description": "gauges that moved while counted: run again"})


class IntegrityResultSchema(Base):
    operation = fields.String(required=True)
    dry_run = Bool(required=True)
    report = fields.Nested(IntegrityReportSchema, required=True)
