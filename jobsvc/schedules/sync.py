"""Sync: make the stored schedules match a list of definitions (a schedules file, `schedules_file`)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import Conflict, NotFound, ValidationError
from ..functions import sync_file_items
from .spec import Schedule, ScheduleSpec
from .store import ScheduleStore


@dataclass
class SyncReport:
    """What a sync did (or, for a dry run, would do): schedule ids per outcome."""

    dry_run: bool
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ScheduleSync(ScheduleStore):
    """Sync of the stored schedules with wanted definitions."""

    def sync(self, schedules: Iterable[Mapping[str, Any] | ScheduleSpec], delete_missing: bool = False,
             dry_run: bool = False, namespace: str | None = None) -> SyncReport:
        """Make the stored schedules match these (each with an id): create the new, update the changed, and
        with delete_missing delete the others -- all of them, or only those of `namespace` when given. A dry
        run reports the same and changes nothing."""
        wanted = self._sync_wanted(schedules, namespace)
        current = {s.id: s for s in self.all() if namespace is None or self._namespace(s) == namespace}
        report = self._sync_plan(wanted, current, dry_run)
        if delete_missing:
            report.deleted = sorted(set(current) - set(wanted))
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

    def _sync_plan(self, wanted: dict[str, ScheduleSpec], current: dict[str, Schedule],
                   dry_run: bool) -> SyncReport:
        """Which wanted schedules are new, changed or unchanged."""
        report = SyncReport(dry_run)
        for sid, spec in sorted(wanted.items()):
            old = current.get(sid)
            if old is None:
                loaded = self._load_spec(sid)  # exists in another namespace?
                if loaded is not None:
                    raise ValidationError(f"schedule {sid} exists in another namespace")
                report.created.append(sid)
            elif old.spec.def_json() != spec.def_json():
                report.updated.append(sid)
            else:
                report.unchanged.append(sid)
        return report

    def _sync_apply(self, wanted: dict[str, ScheduleSpec], report: SyncReport) -> None:
        for sid in report.created:
            self._save(wanted[sid], "create")
        for sid in report.updated:
            for _ in range(10):  # changed meanwhile (Conflict): read the version again and retry
                loaded = self._load_spec(sid)
                if loaded is None:
                    self._save(wanted[sid], "create")
                    break
                try:
                    self._save(wanted[sid], "update", expected_version=loaded[1], previous=loaded[0])
                    break
                except Conflict:
                    continue
        for sid in report.deleted:
            with contextlib.suppress(NotFound):  # deleted meanwhile: already as wanted
                self.delete(sid)


def schedules_file(data: Any) -> tuple[str | None, list[Mapping[str, Any]]]:
    """The namespace (optional) and schedules of a schedules file: {namespace?, schedules: [{id, ...}]}
    or a bare list."""
    if isinstance(data, list):
        return None, data
    return sync_file_items(data, "schedules", "{schedules: [{id, function, cron | interval, ...}, ...]}")
