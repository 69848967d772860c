"""Input rules shared by the core and the admin API, so that both refuse the same values.

Text: every string stored in Redis or sent over HTTP must encode as UTF-8. Python strings can hold lone
surrogates (`"\\udc00"`: JSON's `"\\udc00"` escape, or a file name decoded with surrogateescape) that
UTF-8 cannot encode; such a value fails later, where nobody can answer the caller (a schedule that never
fires, a 500), so it is refused where it enters.

Idempotency keys travel as an HTTP header (`X-Jobsvc-Idempotency-Key`, jobsvc.http.signing) on every delivery
of a handler job: only text every HTTP stack sends unchanged is accepted.

Ranges and lengths: each is one `Bounds` here, built from jobsvc/defaults.py, that the HTTP schemas
(admin_api/schemas: marshmallow's Range and Length, and so the OpenAPI document), the CLI's argument types
(jobsvc_cli/args.py) and the core's own checks read, so no surface accepts what another refuses."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from . import defaults
from .errors import ValidationError

Path = list[str | int]

# Names that become part of Redis keys (jobsvc/engine/keys.py's layout rule) and of URLs. Queue names and job ids may
# hold ':' as RQ's do; namespaces may not (they are followed by ':' in key names). Matched whole, always through
# is_name: `.match` with a `$`-anchored pattern once let "default\n" through.
# Anchored for the OpenAPI document (JSON Schema patterns are unanchored); matched with fullmatch here.
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
NAMESPACE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


# A schedule's policies (jobsvc/scheduling/cron.py applies the misfire one, jobsvc/scheduling/schedules the overlap
# one). Here, with no croniter behind them, so the CLI's argument choices can read them without loading the
# schedules code.
MISFIRE_POLICIES = ("skip", "run_once", "run_all")
OVERLAP_POLICIES = ("allow", "skip")


def is_name(value: Any, pattern: re.Pattern[str]) -> TypeGuard[str]:
    """Whether `value` is a string that `pattern` matches whole (the value first: a TypeGuard narrows it)."""
    return isinstance(value, str) and pattern.fullmatch(value) is not None


@dataclass(frozen=True)
class Bounds:
    """An inclusive range of a number, or of a length (of text or of a list)."""

    low: int | float
    high: int | float

    def holds(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


# Numbers (seconds where they are times).
PRIORITY = Bounds(defaults.PRIORITY_MIN, defaults.PRIORITY_MAX)
MAX_ATTEMPTS = Bounds(1, defaults.MAX_ATTEMPTS_LIMIT)
TIMEOUT = Bounds(1, defaults.TIMEOUT_MAX)
JOB_TIMEOUT = Bounds(-1, defaults.TIMEOUT_MAX)  # a job's: -1 for none (0, inside the range, is refused on its own)
CALLBACK_TIMEOUT = Bounds(1, defaults.CALLBACK_TIMEOUT_MAX)
DELAY = Bounds(0, defaults.DELAY_MAX)  # also bulk filters' older_than / newer_than
AGE_DAYS = Bounds(0, defaults.DELAY_MAX / 86_400)  # prune's older_than_days: DELAY in days
TTL = Bounds(-1, defaults.TTL_MAX)  # -1 keeps forever
BACKOFF_BASE = Bounds(0, defaults.BACKOFF_BASE_MAX)
BACKOFF_CAP = Bounds(0, defaults.BACKOFF_CAP_MAX)
INTERVAL = Bounds(defaults.SCHEDULE_MIN_INTERVAL, defaults.SCHEDULE_MAX_INTERVAL)
MISFIRE_GRACE = Bounds(1, defaults.DELAY_MAX)
MAX_CATCHUP = Bounds(1, defaults.SCHEDULE_CATCHUP_LIMIT)
VISIBILITY_TIMEOUT = Bounds(1, defaults.PULL_VISIBILITY_MAX)
PULL_COUNT = Bounds(1, defaults.PULL_COUNT_MAX)
PAGE_LIMIT = Bounds(1, defaults.PAGE_LIMIT_MAX)
TTL_SWEEP_LIMIT = Bounds(1, defaults.TTL_SWEEP_LIMIT_MAX)
JSON_DEPTH = Bounds(1, defaults.JSON_DEPTH_MAX)

# Lengths of lists.
JOB_BATCH = Bounds(1, defaults.JOB_BATCH_MAX)
ACK_BATCH = Bounds(1, defaults.PULL_COUNT_MAX)  # one ack per job a claim may have leased
FUNCTION_SYNC = Bounds(0, defaults.FUNCTION_SYNC_MAX)
PRUNE_STATES = Bounds(1, 4)  # prune's states: the terminal states, each once
KEY_LIMITS = Bounds(1, defaults.KEY_LIMITS_MAX)  # an API key's namespaces or queues (none: leave the field out)

# Lengths of text. A low of 0 means no minimum (the empty value is refused, or allowed, by other rules).
URL = Bounds(1, defaults.URL_MAX)
KEY_NAME = Bounds(1, defaults.KEY_NAME_MAX)
DESCRIPTION = Bounds(1, defaults.DESCRIPTION_MAX)
FUNCTION_REF = Bounds(1, defaults.FUNCTION_REF_MAX)
PULL_TOKEN = Bounds(1, defaults.PULL_TOKEN_MAX)
ACK_ERROR_TEXT = Bounds(0, defaults.ACK_ERROR_TEXT_MAX)
# Fixed by what the text is, not tunable: an exception's type name and a cron expression (255, as function
# references), an IANA zone name (the longest is 32), an id of a job (QUEUE_NAME's 128).
TYPE_NAME = Bounds(1, 255)
CRON_EXPR = Bounds(1, 255)
ZONE_NAME = Bounds(1, 64)
JOB_ID = Bounds(1, 128)
# Cursors (opaque to callers), each long enough for the position its listing encodes in it: anything longer
# is not one of ours. Jobs, schedules, a schedule's runs, registry functions, the audit log.
JOB_CURSOR = Bounds(1, 2048)
SCHEDULE_CURSOR = Bounds(1, 64)
RUN_CURSOR = Bounds(1, 256)
FUNCTION_CURSOR = Bounds(1, 200)
AUDIT_CURSOR = Bounds(1, 64)


IDEMPOTENCY_KEY_MAX = 256
# Printable ASCII, spaces inside only: header values are Latin-1 on the wire (anything else cannot be
# sent), CR / LF would split the header, and receivers strip leading and trailing whitespace.
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def encodable(text: str) -> bool:
    """Whether UTF-8 can encode `text` (False only for lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unencodable(value: Any) -> tuple[Path, bool] | None:
    """The path to the first string UTF-8 cannot encode in a JSON-like value (dict keys and values, lists,
    tuples, at any depth), and whether it is a dict key (the path then ends with that key); None if all
    encode. Iterative: depth is bounded by the caller's parser, not by Python's stack."""
    if isinstance(value, str):
        return None if encodable(value) else ([], False)
    try:  # the common case, everything encodes, at C speed (a 256 KB request body: milliseconds)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        return None
    except (UnicodeEncodeError, TypeError, ValueError, RecursionError):
        pass  # something does not encode (walk to find where), or not plain JSON (walk it all)
    stack: list[tuple[Any, Path]] = [(value, [])]
    while stack:  # only containers are pushed: a long list of numbers costs one pass, no allocations
        node, path = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(k, str) and not encodable(k):
                    return [*path, k], True
                if isinstance(v, str):
                    if not encodable(v):
                        return [*path, k], False
                elif isinstance(v, (dict, list, tuple)):
                    stack.append((v, [*path, k]))
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                if isinstance(v, str):
                    if not encodable(v):
                        return [*path, i], False
                elif isinstance(v, (dict, list, tuple)):
                    stack.append((v, [*path, i]))
    return None


def shown(text: str) -> str:
    """Text safe to print or send back: what UTF-8 cannot encode as a backslash escape (`\\udc00`)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def dotted(path: Path) -> str:
    """A path as `jobs[0].kwargs.name`, its unencodable parts escaped."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{shown(part)}" if out else shown(part))
    return out


def text_problem(is_key: bool) -> str:
    what = "this key" if is_key else "this value"
    return f"{what} is not valid Unicode text (a lone surrogate such as \\udc00, which UTF-8 cannot encode)"


def check_text(value: Any, name: str = "") -> None:
    """ValidationError naming the place of the first string in `value` that UTF-8 cannot encode."""
    found = unencodable(value)
    if found is None:
        return
    path, is_key = found
    where = dotted([name, *path] if name else path) or "value"
    raise ValidationError(f"{where}: {text_problem(is_key)}")


def check_idempotency_key(key: Any) -> None:
    """An idempotency key is 1-256 printable ASCII characters, no leading or trailing space."""
    if not isinstance(key, str) or len(key) > IDEMPOTENCY_KEY_MAX or IDEMPOTENCY_KEY.fullmatch(key) is None:
        raise ValidationError(f"idempotency_key must be 1-{IDEMPOTENCY_KEY_MAX} printable ASCII characters (space "
                              "to ~, no leading or trailing space): it is sent as an HTTP header")
