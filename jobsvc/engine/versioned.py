"""The versioned store that the functions registry (jobsvc/engine/functions/) and cron schedules
(jobsvc/scheduling/schedules/) share: entries kept as canonical JSON with a version that goes up on every change.

Each kind has its save script (function_save.lua, schedule_save.lua; both refuse through `version_refusal` in
_lib.lua). Both take their arguments in one order -- prefix, the entry's identity, its canonical JSON, enabled
(1|0), mode, expected version ('' for any), then what is the kind's own -- and answer {OK, version, changed, ...}:

* mode `create` refuses an entry that exists (AlreadyExists), `update` one that does not (NotFound), `upsert`
  neither;
* an expected version that is not the stored one is refused (Conflict): the caller read one version and
  someone saved another since. A patch reads again and applies its changes to the new version
  (`retry_on_conflict`), at most PATCH_TRIES times.

Saving equal JSON changes nothing (no new version); a sync sorts the wanted entries by the same test
(`plan_sync`) into created, updated and unchanged.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import redis

from ..errors import Conflict, ValidationError
from . import scripts

if TYPE_CHECKING:  # the store only reads the client's connection and key prefix
    from .client import Client

Mode = Literal["create", "update", "upsert"]
MODES: tuple[Mode, ...] = ("create", "update", "upsert")
# Saves a patch tries before it gives up: each try lost to another writer's save in between.
PATCH_TRIES = 10

T = TypeVar("T")
R = TypeVar("R", bound="SyncReport")


def canonical_json(values: Mapping[str, Any]) -> str:
    """`values` as canonical JSON (sorted keys, no spaces): equal JSON means unchanged, no new version."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


@dataclass
class SyncReport:
    """What a sync did (or, for a dry run, would do): the entries' names per outcome."""

    dry_run: bool
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_sync(report: R, wanted: Mapping[str, str], current: Mapping[str, str], delete_missing: bool) -> R:
    """Fill `report` from the wanted and the stored entries' canonical JSON by name: new ones are created,
    different JSON is updated, equal JSON unchanged; with delete_missing the stored ones not wanted are deleted."""
    for name, spec_json in sorted(wanted.items()):
        old = current.get(name)
        if old is None:
            report.created.append(name)
        elif old != spec_json:
            report.updated.append(name)
        else:
            report.unchanged.append(name)
    if delete_missing:
        report.deleted = sorted(set(current) - set(wanted))
    return report


class VersionedStore:
    """The base of a store of versioned entries (`Registry`, `ScheduleStore`): its connection, the one call
    shape of its save script, and the retry of a change that lost a race."""

    kind: ClassVar[str]  # what an entry is called in messages: "function", "schedule"
    save_script: ClassVar[str]  # its save script: "function_save", "schedule_save"

    def __init__(self, client: Client):
        self.client = client
        self.redis: redis.Redis = client.redis
        self.prefix = client.config.key_prefix

    def save_entry(self, name: str, identity: Sequence[str], spec_json: str, enabled: bool, mode: Mode,
                   expected_version: int | None = None, extra: Sequence[Any] = (),
                   scope: Sequence[str] = ()) -> list[Any]:
        """One call of the save script; returns its reply {OK, version, changed, ...} or raises what a refusal
        means (AlreadyExists, NotFound, Conflict). `name` names the entry in messages; `scope`, the call's slot on a
        Redis Cluster (scripts.scope_of)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        reply = scripts.call(self.redis, self.save_script, scope, (
            self.prefix, *identity, spec_json, "1" if enabled else "0", mode,
            "" if expected_version is None else expected_version, *extra))
        return scripts.check(reply, what=f"{self.kind} {name}")

    def check_fields(self, given: Iterable[str], allowed: Iterable[str]) -> None:
        """ValidationError naming the fields in `given` that are not `allowed`."""
        unknown = set(given) - set(allowed)
        if unknown:
            raise ValidationError(f"unknown {self.kind} field(s): {', '.join(sorted(unknown))}")

    def retry_on_conflict(self, name: str, attempt: Callable[[], T]) -> T:
        """Run `attempt` (read the entry, change it, save it with the version read as the expected one) until it
        saves without a Conflict; Conflict after PATCH_TRIES tries."""
        for _ in range(PATCH_TRIES):
            try:
                return attempt()
            except Conflict:
                continue  # changed by someone else meanwhile: apply the change to the new version
        raise Conflict(f"{self.kind} {name} keeps changing; try again")


__all__ = ["MODES", "PATCH_TRIES", "Mode", "SyncReport", "VersionedStore", "canonical_json", "plan_sync"]
