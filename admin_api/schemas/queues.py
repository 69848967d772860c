"""Schemas of queues and workers."""
from __future__ import annotations

from marshmallow import fields, validate

from jobsvc import defaults

from .common import Base, Bool, Counts, Timestamp


class QueueSchema(Base):
    name = fields.String(required=True)
    paused = Bool(required=True)
    counts = Counts(required=True, metadata={"description": "jobs per state"})


class QueueListSchema(Base):
    queues = fields.List(fields.Nested(QueueSchema), required=True)


class CurrentJobSchema(Base):
    id = fields.String(required=True)
    queue = fields.String(allow_none=True, required=True)
    lease_expires_at = Timestamp(allow_none=True, required=True)


class WorkerSchema(Base):
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["rq", "pull"]), metadata={
        "description": "`rq`, a registered worker (jobsvc's or plain RQ's), or `pull`, a pull worker over HTTP"})
    hostname = fields.String(allow_none=True, required=True)
    pid = fields.Integer(allow_none=True, required=True)
    queues = fields.List(fields.String(), required=True)
    state = fields.String(allow_none=True, required=True)
    birth_at = Timestamp(allow_none=True, required=True)
    last_heartbeat_at = Timestamp(allow_none=True, required=True)
    current_jobs = fields.List(fields.Nested(CurrentJobSchema), required=True)
    processed = fields.Integer(required=True, metadata={"description": "jobs completed"})
    failed = fields.Integer(required=True, metadata={"description": "jobs failed"})


class WorkerListSchema(Base):
    workers = fields.List(fields.Nested(WorkerSchema), required=True)
    leases_truncated = Bool(required=True, metadata={
        "description": f"more leases exist than the {defaults.WORKERS_LEASES_MAX} soonest-expiring ones read: "
                       "current_jobs may leave some running jobs out"})
