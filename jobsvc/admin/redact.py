"""Job arguments as people may see them (dashboard) or as they are kept (audit log): values under
secret-looking keys masked, at any depth. Here in the core because the audit log (jobsvc.admin.audit) and the
dashboard (admin_api.dashboard.redact) both use it."""
from __future__ import annotations

import re
from typing import Any

from ..validation import encodable, shown

MASK = "••••••"
# Matched anywhere in a key, case-insensitively: db_password, X-Api-Key's api_key, refresh_token, ...
SECRET_KEY = re.compile(r"password|passwd|secret|token|api[_-]?key|authorization|credential|private[_-]?key",
                        re.IGNORECASE)


def redact(value: Any, depth: int = 0) -> Any:
    """A copy with every value under a secret-looking key (at any depth) replaced by MASK, and text UTF-8
    cannot encode (lone surrogates a Python caller stored) as backslash escapes, so it can be rendered."""
    if depth > 64:
        return "..."
    if isinstance(value, dict):
        return {_text(k): MASK if isinstance(k, str) and SECRET_KEY.search(k) else redact(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, depth + 1) for v in value]
    return _text(value)


def _text(value: Any) -> Any:
    return shown(value) if isinstance(value, str) and not encodable(value) else value
