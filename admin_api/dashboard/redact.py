"""Job payloads as the dashboard shows them: values under secret-looking keys masked, big ones cut."""
from __future__ import annotations

import json
import re
from typing import Any

from jobsvc import defaults

from ..api import jsonable

MASK = "••••••"
# Matched anywhere in a key, case-insensitively: db_password, X-Api-Key's api_key, refresh_token, ...
SECRET_KEY = re.compile(r"password|passwd|secret|token|api[_-]?key|authorization|credential|private[_-]?key",
                        re.IGNORECASE)


def redact(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy with every value under a secret-looking key (at any depth) replaced by MASK."""
    if depth > 64:
        return "..."
    if isinstance(value, dict):
        return {k: MASK if SECRET_KEY.search(k) else redact(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, depth + 1) for v in value]
    return value


def shown(value: Any, limit: int = defaults.DASHBOARD_PAYLOAD_MAX) -> str:
    """Pretty JSON of the redacted value, cut at `limit` characters with a note of how much was left out."""
    text = json.dumps(redact(jsonable(value)), indent=2, ensure_ascii=False, default=repr)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… ({len(text) - limit:,} more characters not shown)"
