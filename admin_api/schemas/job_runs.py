"""Schemas of a job's run history and of the per-job actions that are not state changes (disable, enable) or
that answer with a run (trigger): admin_api/blueprints/job_runs.py."""
from __future__ import annotations

from marshmallow import fields, validate

from jobsvc import validation as v

from .common import Base, Timestamp, in_range


class JobRunsQuery(Base):
    cursor = fields.String(validate=validate.Regexp(r"^[0-9]{1,12}$", error="not a cursor this listing gave"),
                           metadata={"description": "`next_cursor` of the previous page"})
    limit = fields.Integer(load_default=50, validate=in_range(v.PAGE_LIMIT))


class JobRunSchema(Base):
    id = fields.String(required=True, metadata={"description": "`<job id>.<n>`: the n-th run of the job, stable"})
    job_id = fields.String(required=True)
    attempt = fields.Integer(allow_none=True, required=True)
    outcome = fields.String(allow_none=True, required=True,
                            metadata={"description": "completed, retrying, failed, lease_lost, quarantined, "
                                                           "handed_back, terminated, stopped, accepted, ..."})
    worker = fields.String(allow_none=True, required=True)
    scheduled_at = Timestamp(allow_none=True, required=True,
                             metadata={"description": "jobs fired by a schedule: the fire time it was meant for"})
    started_at = Timestamp(allow_none=True, required=True)
    ended_at = Timestamp(allow_none=True, required=True)
    duration_ms = fields.Float(allow_none=True, required=True,
                               metadata={"description": "an HTTP handler's call time; else end minus start"})
    exc_type = fields.String(allow_none=True, required=True)
    message = fields.String(allow_none=True, required=True)
    traceback = fields.String(allow_none=True, required=True)
    http_status = fields.Integer(allow_none=True, required=True,
                                 metadata={"description": "HTTP handler jobs: the handler's answer (null: none)"})


class JobRunPageSchema(Base):
    runs = fields.List(fields.Nested(JobRunSchema), required=True, metadata={"description": "oldest first"})
    next_cursor = fields.String(allow_none=True, required=True)


class TriggeredSchema(Base):
    job_id = fields.String(required=True)
    run_id = fields.String(required=True, metadata={"description": "the id the run now due will have in "
                                                                   "GET /jobs/{id}/runs"})
    triggered_at = Timestamp(required=True, metadata={"description": "Redis time of the trigger"})


__all__ = ["JobRunPageSchema", "JobRunSchema", "JobRunsQuery", "TriggeredSchema"]
