"""RQ's job format: the `data` field (zlib + pickle of func name, instance, args, kwargs),
its timestamp format and its result payloads."""
from __future__ import annotations

import contextlib
import pickle
import re
import zlib
from base64 import b64encode
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
IMPORT_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def utcnow_str() -> str:
    return datetime.now(timezone.utc).strftime(_TIMESTAMP_FORMAT)


def func_name(func: Callable[..., Any] | str) -> str:
    """The import path RQ stores for a callable."""
    if isinstance(func, str):
        if not IMPORT_PATH.match(func):
            raise ValueError(f"{func!r} is not an import path like 'package.module.function'")
        return func
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname or "<lambda>" in qualname:
        raise ValueError(f"{func!r} is not importable by workers: use a module-level function or its import path")
    return f"{module}.{qualname}"


# Payloads below this many bytes are stored uncompressed: zlib saves nothing on them and costs a
# few microseconds each way. RQ reads both (a pickle never starts with a zlib header byte).
COMPRESS_ABOVE = 512


def dump_data(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    raw = pickle.dumps((name, None, args, kwargs), pickle.HIGHEST_PROTOCOL)
    return zlib.compress(raw) if len(raw) > COMPRESS_ABOVE else raw


def load_data(raw: bytes) -> tuple[str, Any, tuple[Any, ...], dict[str, Any]]:
    if raw[:1] != b"\x80":  # not a bare pickle: RQ's (and our large payloads') zlib stream
        with contextlib.suppress(zlib.error):
            raw = zlib.decompress(raw)
    name, instance, args, kwargs = pickle.loads(raw)
    return name, instance, tuple(args), dict(kwargs)


def dump_result(value: Any) -> str:
    """RQ's result stream payload; '' stands for None (RQ stores no field then)."""
    if value is None:
        return ""
    try:
        raw = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - pickling raises whatever the value's reducers raise; RQ does the same
        raw = pickle.dumps("Unserializable return value", pickle.HIGHEST_PROTOCOL)
    return b64encode(raw).decode()


def dump_exc_string(text: str) -> str:
    return b64encode(zlib.compress(text.encode())).decode()
