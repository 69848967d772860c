"""Sync: make the stored schedules match a list of definitions (a schedules file, `schedules_file`)."""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Mapping
from typing import Any

from ...engine.functions import sync_file_items
from ...engine.versioned import SyncReport, plan_sync
from ...errors import NotFound, ValidationError
from .spec import ScheduleSpec
from .store import ScheduleStore


class ScheduleSync(ScheduleStore):
    """Sync of the stored schedules with wanted definitions."""

    def sync(self, schedules: Iterable[Mapping[str, Any] | ScheduleSpec], delete_missing: bool = False,
             dry_run: bool = False, namespace: str | None = None) -> SyncReport:
        """Make the stored schedules match these (each with an id): create the new, update the changed, and
        with delete_missing delete the others -- all of them, or only those of `namespace` when given. A dry
        run reports the same and changes nothing."""
        wanted = self._sync_wanted(schedules, namespace)
        current = {s.id: s for s in self.all() if namespace is None or self._namespace(s) == namespace}
        report = plan_sync(SyncReport(dry_run), {sid: spec.def_json() for sid, spec in wanted.items()},
                           {sid: s.spec.def_json() for sid, s in current.items()}, delete_missing)
        for sid in report.created:
            if self._load_spec(sid) is not None:  # stored, yet not among `current`: in another namespace
                raise ValidationError(f"schedule {sid} exists in another namespace")
        if not dry_run:
            self._sync_apply(wanted, report)
        return report

    def _sync_wanted(self, schedules: Iterable[Mapping[str, Any] | ScheduleSpec],
                     namespace: str | None) -> dict[str, ScheduleSpec]:
        """The wanted schedules by id, each checked (unique, in `namespace`, its function) before any change."""
        wanted: dict[str, ScheduleSpec] = {}
        for item in schedules:
            spec = item if isinstance(item, ScheduleSpec) else ScheduleSpec.from_dict(item)
            if spec.id in wanted:
                raise ValidationError(f"schedule {spec.id!r} is listed twice")
            if namespace is not None and self._namespace(spec) != namespace:
                raise ValidationError(f"schedule {spec.id} is not in namespace {namespace!r}")
            self._check_function(spec)
            wanted[spec.id] = spec
        return wanted

    def _sync_apply(self, wanted: dict[str, ScheduleSpec], report: SyncReport) -> None:
        for sid in report.created:
            self._save(wanted[sid], "create")
        for sid in report.updated:
            self.retry_on_conflict(sid, functools.partial(self._sync_update, wanted[sid]))
        for sid in report.deleted:
            with contextlib.suppress(NotFound):  # deleted meanwhile: already as wanted
                self.delete(sid)

    def _sync_update(self, spec: ScheduleSpec) -> None:
        """Save `spec` over the stored version (read now), or create it if it was deleted meanwhile."""
        loaded = self._load_spec(spec.id)
        if loaded is None:
            self._save(spec, "create")
        else:
            self._save(spec, "update", expected_version=loaded[1], previous=loaded[0])


def schedules_file(data: Any) -> tuple[str | None, list[Mapping[str, Any]]]:
    """The namespace (optional) and schedules of a schedules file: {namespace?, schedules: [{id, ...}]}
    or a bare list."""
    if isinstance(data, list):
        return None, data
    return sync_file_items(data, "schedules", "{schedules: [{id, function, cron | interval, ...}, ...]}")
