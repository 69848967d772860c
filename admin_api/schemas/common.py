"""What every schema module shares: the base class, field types, validators, time conversion, and the
schemas of errors, health and backoff.

Requests reject unknown fields (422). Times go out as ISO 8601 UTC strings with milliseconds
(`2026-01-02T03:04:05.678Z`) and come in as ISO 8601 (a time without a zone is UTC)."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, NoReturn, cast, overload

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from jobsvc import validation as v
from jobsvc.engine.backoff import KINDS as BACKOFF_KINDS
from jobsvc.engine.functions import FUNCTION_NAME
from jobsvc.engine.serialization import IMPORT_PATH
from jobsvc.errors import ValidationError as _CoreInvalid
from jobsvc.validation import NAMESPACE_NAME, QUEUE_NAME, Bounds, is_name

# Every range and length of the API is a jobsvc.validation Bounds (built from jobsvc.defaults), given to
# marshmallow through these: the CLI and the core check the same bounds, never numbers of their own.


def in_range(bounds: Bounds) -> validate.Range:
    return validate.Range(bounds.low, bounds.high)


def length(bounds: Bounds) -> validate.Length:
    """A Length of `bounds`; a low of 0 sets no minimum (other rules refuse, or allow, the empty value)."""
    return validate.Length(int(bounds.low) or None, int(bounds.high))


def max_length(bounds: Bounds) -> validate.Length:
    """Only the maximum of `bounds`: the empty value is another rule's to refuse, with that rule's message."""
    return validate.Length(max=int(bounds.high))


class FullMatch(validate.Regexp):
    """Regexp that must match the whole value (Python's `$` also matches before a final newline)."""

    @overload
    def __call__(self, value: str) -> str: ...

    @overload
    def __call__(self, value: bytes) -> NoReturn: ...  # only text can match: bytes are refused

    def __call__(self, value: str | bytes) -> str:
        # Built from str patterns only (the FullMatch(...) calls below); Regexp types it str or bytes. is_name:
        # the one whole-value match of names, here and in the core.
        if is_name(value, cast("re.Pattern[str]", self.regex)):
            return value
        raise ValidationError(self._format_error(value))


def depth_ok(value: Any) -> None:
    limit = v.JSON_DEPTH.high
    stack = [(value, 1)]
    while stack:
        node, d = stack.pop()
        if d > limit:
            raise ValidationError(f"nested deeper than {limit} levels")
        if isinstance(node, dict):
            stack.extend((x, d + 1) for x in node.values())
        elif isinstance(node, list):
            stack.extend((x, d + 1) for x in node)


class Bool(fields.Boolean):
    """A JSON boolean, true or false, and nothing else. marshmallow's Boolean also reads 0 / 1 / "yes" / "off"
    ...: `"dry_run": 0` was then a real run. Every boolean of the API is one of these (or a QueryBool)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid")


class QueryBool(fields.Boolean):
    """A boolean query parameter: exactly `true` or `false` (not 1, yes or True)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        raise self.make_error("invalid")


QueueName = lambda **kw: fields.String(validate=FullMatch(QUEUE_NAME.pattern), **kw)  # noqa: E731
NamespaceName = lambda **kw: fields.String(validate=FullMatch(NAMESPACE_NAME.pattern), **kw)  # noqa: E731
Payload = lambda **kw: fields.List(fields.Raw(), validate=depth_ok, **kw)  # noqa: E731
Mapping = lambda **kw: fields.Dict(keys=fields.String(), values=fields.Raw(), validate=depth_ok, **kw)  # noqa: E731
Strict = lambda **kw: fields.Integer(strict=True, **kw)  # noqa: E731

# A registry function's `namespace/name`, from the patterns of its two parts (anchored like them).
FUNCTION_REF = re.compile(f"^{NAMESPACE_NAME.pattern.strip('^$')}/{FUNCTION_NAME.pattern.strip('^$')}$")


def core_check(check: Any) -> Any:
    """A marshmallow validator from a jobsvc check that raises jobsvc's ValidationError (field-level 422)."""

    def validator(value: Any) -> None:
        try:
            check(value)
        except _CoreInvalid as exc:
            raise ValidationError(str(exc)) from None

    return validator


def exactly_one(data: dict[str, Any], first: str, second: str, message: str) -> None:
    """Schema-level check that exactly one of two alternative fields is given (what a job, schedule or registry
    function runs: a function or import path, or a handler URL); marshmallow has no rule across fields. The
    error names `first`."""
    if (data.get(first) is None) == (data.get(second) is None):
        raise ValidationError(message, first)


def some_change(data: dict[str, Any], message: str = "nothing to change") -> None:
    """Schema-level check of a PATCH body: an empty one would change nothing, yet be audited as a change."""
    if not data:
        raise ValidationError(message)


def _path_or_ref(value: str) -> None:
    if not isinstance(value, str) or not (is_name(value, IMPORT_PATH) or is_name(value, FUNCTION_REF)):
        raise ValidationError("an import path (`app.tasks.f`) or a registry function (`namespace/name`)")


JobFunction = lambda **kw: fields.String(validate=[max_length(v.FUNCTION_REF), _path_or_ref], **kw)  # noqa: E731


class Timestamp(fields.DateTime):
    """Epoch milliseconds (int) dumped as an ISO 8601 UTC string; None stays None."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return iso_ms(value)


def iso_ms(ms: float | None) -> str | None:
    if ms is None:
        return None
    try:
        dt = datetime.fromtimestamp(float(ms) / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def epoch_ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


Time = lambda **kw: fields.AwareDateTime(default_timezone=timezone.utc, **kw)  # noqa: E731


class Base(Schema):
    class Meta:
        unknown = RAISE


# -- errors and health --------------------------------------------------------------------------------


class ErrorBodySchema(Base):
    code = fields.String(required=True, metadata={"description": "machine-readable error code"})
    message = fields.String(required=True)
    details = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True,
                          metadata={"description": "e.g. `state` for 409, `fields` for 422"})


class ErrorSchema(Base):
    error = fields.Nested(ErrorBodySchema, required=True)


class HealthSchema(Base):
    status = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable"]))
    redis = fields.String(required=True, validate=validate.OneOf(["up", "down"]))
    error = fields.Nested(ErrorBodySchema)


class BackoffSchema(Base):
    """A job's `backoff` between attempts."""

    type = fields.String(required=True, validate=validate.OneOf(BACKOFF_KINDS))
    base = fields.Float(validate=in_range(v.BACKOFF_BASE), metadata={"description": "seconds"})
    cap = fields.Float(validate=in_range(v.BACKOFF_CAP), metadata={"description": "seconds"})
    jitter = Bool(metadata={"description": "full jitter (default true)"})


class RegistryBackoffSchema(BackoffSchema):
    """A backoff default of a registry function or schedule (the shape of a job's `backoff`; its own name in
    the OpenAPI document)."""


class BackoffOutSchema(Base):
    type = fields.String(required=True)
    base = fields.Float(required=True)
    cap = fields.Float(required=True)
    jitter = Bool(required=True)


Counts = lambda **kw: fields.Dict(keys=fields.String(), values=fields.Integer(), **kw)  # noqa: E731
GroupCounts = lambda **kw: fields.Dict(keys=fields.String(), values=Counts(), **kw)  # noqa: E731
