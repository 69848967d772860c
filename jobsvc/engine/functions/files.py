"""Declarative files of functions (and of schedules, jobsvc/scheduling/schedules/sync.py): reading one (JSON, YAML,
TOML) and taking its namespace and list of entries."""
from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from ...errors import ValidationError
from ..job import DEFAULT_NAMESPACE


def load_file(path: str) -> Any:
    """A declarative file: JSON, YAML (.yaml/.yml, needs PyYAML) or TOML (.toml)."""
    from pathlib import Path

    p = Path(path)
    try:
        content = p.read_text()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    suffix = p.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ValidationError("YAML files need PyYAML (pip install pyyaml); or use JSON or TOML") from None
            return yaml.safe_load(content)
        if suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # tomllib is new in 3.11; tomli is the same parser (a dependency on 3.10 only)
                import tomli as tomllib
            return tomllib.loads(content)
        return json.loads(content)
    except ValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - every parser has its own error type
        raise ValidationError(f"{path}: cannot parse: {exc}") from None


def sync_file_items(data: Any, field: str, shape: str) -> tuple[Any, list[Mapping[str, Any]]]:
    """The `namespace` (as given, None if absent) and the list under `field` of a sync file {namespace?, field:
    [...]} (functions and schedules files alike); `shape` shows the expected document in the error."""
    if not isinstance(data, Mapping) or field not in data:
        raise ValidationError(f"a {field} file is {shape}")
    unknown = set(data) - {"namespace", field}
    if unknown:
        raise ValidationError(f"unknown top-level field(s): {', '.join(sorted(unknown))}")
    items = data[field] or []
    if not isinstance(items, list):
        raise ValidationError(f"{field} must be a list")
    return data.get("namespace"), items


def functions_file(data: Any) -> tuple[str, list[Mapping[str, Any]]]:
    """The namespace and functions of a functions file: {namespace, functions: [{name, path, ...}]}."""
    namespace, items = sync_file_items(data, "functions", "{namespace: NS, functions: [{name, path, ...}, ...]}")
    return namespace or DEFAULT_NAMESPACE, items
