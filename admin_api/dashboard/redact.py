"""Job payloads as the dashboard shows them: values under secret-looking keys masked (jobsvc.admin.redact, the
audit log's rule too), big ones cut."""
from __future__ import annotations

import json
from typing import Any

from jobsvc import defaults
from jobsvc.admin.redact import MASK, SECRET_KEY, redact  # shared with the audit log

from ..api import jsonable

__all__ = ["MASK", "SECRET_KEY", "redact", "shown"]


def shown(value: Any, limit: int = defaults.DASHBOARD_PAYLOAD_MAX) -> str:
    """Pretty JSON of the redacted value, cut at `limit` characters with a note of how much was left out."""
    text = json.dumps(redact(jsonable(value)), indent=2, ensure_ascii=False, default=repr)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… ({len(text) - limit:,} more characters not shown)"
