"""Schemas of bulk operations (retry, requeue quarantined, prune) and sweeps (expired jobs, stale jobs,
integrity)."""
from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

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


def _states_field(what: str) -> fields.List[str]:
    return fields.List(fields.String(validate=validate.OneOf(PRUNABLE)), validate=length(v.PRUNE_STATES),
                       metadata={"description": what})


def _at_most_one(data: dict[str, Any], *names: str) -> None:
    given = [n for n in names if data.get(n) is not None]
    if len(given) > 1:
        raise ValidationError(f"give one of {', '.join(names)}, not several", given[-1])


class BulkPruneSchema(_BulkBase):
    state = fields.String(validate=validate.OneOf(PRUNABLE),
                          metadata={"description": "one state; default (no state, states or statuses): completed, "
                                                   "failed and cancelled; quarantined jobs only when named"})
    states = _states_field("several states (instead of state)")
    statuses = _states_field("the same as states (the name other admin APIs use)")
    older_than_days = fields.Float(validate=in_range(v.AGE_DAYS),
                                   metadata={"description": "days (instead of older_than, in seconds)"})

    @validates_schema
    def _one_each(self, data: dict[str, Any], **kwargs: Any) -> None:
        _at_most_one(data, "state", "states", "statuses")
        _at_most_one(data, "older_than", "older_than_days")


class SweepSchema(Base):
    dry_run = Bool(load_default=False)


class TtlSweepSchema(SweepSchema):
    limit = fields.Integer(strict=True, validate=in_range(v.TTL_SWEEP_LIMIT),
                           metadata={"description": "expired entries handled in this call; `more` says if any remain"})


class IntegritySweepSchema(Base):
    fix = Bool(load_default=False, metadata={"description": "repair what is found (needs X-Confirm: true); "
                                                            "default: report only"})
    dry_run = Bool(metadata={"description": "true: report only, even with fix (kept for older clients)"})
    queue = QueueName(metadata={"description": "only this queue's jobs and structures"})
    namespace = NamespaceName(metadata={"description": "only this namespace's jobs and gauges"})


class CancelStaleSchema(Base):
    queue = QueueName()
    namespace = NamespaceName()
    function = fields.String(validate=length(v.FUNCTION_REF))
    queued_for = fields.Float(validate=in_range(v.DELAY),
                              metadata={"description": "seconds: cancel queued jobs created longer ago than this"})
    running_for = fields.Float(validate=in_range(v.DELAY),
                               metadata={"description": "seconds: terminate running jobs started longer ago "
                                                        "than this"})
    age_seconds = fields.Float(validate=in_range(v.DELAY), metadata={"description": "the same as queued_for"})
    runtime_seconds = fields.Float(validate=in_range(v.DELAY), metadata={"description": "the same as running_for"})
    action = fields.String(validate=validate.OneOf(["cancel"]),
                           metadata={"description": "only cancel (accepted for clients that send it)"})
    dry_run = Bool(load_default=False,
                   metadata={"description": "count and sample, change nothing (no X-Confirm needed)"})

    @validates_schema
    def _ages(self, data: dict[str, Any], **kwargs: Any) -> None:
        _at_most_one(data, "queued_for", "age_seconds")
        _at_most_one(data, "running_for", "runtime_seconds")
        if all(data.get(n) is None for n in ("queued_for", "age_seconds", "running_for", "runtime_seconds")):
            raise ValidationError("give queued_for or running_for (seconds), or both", "queued_for")


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
