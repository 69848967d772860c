"""Configuration: one dataclass, read from the environment (JOBSVC_*) and overridden by CLI flags."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from . import defaults
from .allowlist import ModuleAllowList
from .errors import ValidationError


@dataclass(frozen=True)
class Config:
    redis_url: str | None = None  # REDIS_URL; None means "start the embedded Redis" for `jobsvc up`
    key_prefix: str = defaults.KEY_PREFIX
    lease_ttl: float = defaults.LEASE_TTL
    heartbeat_interval: float = defaults.HEARTBEAT_INTERVAL
    max_lease_losses: int = defaults.MAX_LEASE_LOSSES
    max_attempts: int = defaults.MAX_ATTEMPTS
    backoff: str = defaults.BACKOFF
    backoff_base: float = defaults.BACKOFF_BASE
    backoff_cap: float = defaults.BACKOFF_CAP
    job_timeout: int = defaults.JOB_TIMEOUT
    result_ttl: int = defaults.RESULT_TTL
    failure_ttl: int = defaults.FAILURE_TTL
    idempotency_ttl: int = defaults.IDEMPOTENCY_TTL
    idle_wait: float = defaults.IDLE_WAIT
    # Most jobs a worker claims in one call, and records in one (JOBSVC_CLAIM_BATCH; 1: one job at a time). It
    # asks for as many as it runs in defaults.BATCH_WINDOW by its recent run times, so slow jobs go one by one.
    claim_batch: int = defaults.CLAIM_BATCH
    # Replicas an enqueue and a job's outcome wait for before returning (JOBSVC_REPLICA_WAIT; 0: none), and for
    # how long at most (JOBSVC_REPLICA_WAIT_TIMEOUT_MS): what a failover can lose, docs/cluster.md.
    replica_wait: int = defaults.REPLICA_WAIT
    replica_wait_timeout_ms: int = defaults.REPLICA_WAIT_TIMEOUT_MS
    # Idle workers track writes to their RQ queue lists (CLIENT TRACKING, workers/rq_wake.py), so a job plain RQ
    # enqueues starts at once; off (JOBSVC_RQ_WAKE=0), such a job waits up to idle_wait.
    rq_wake: bool = True
    shutdown_grace: float = defaults.SHUTDOWN_GRACE
    hung_grace: float = defaults.HUNG_GRACE
    worker_maintenance_interval: float = defaults.WORKER_MAINTENANCE_INTERVAL
    leader_ttl: float = defaults.LEADER_TTL
    scheduler_max_sleep: float = defaults.SCHEDULER_MAX_SLEEP
    sweep_interval: float = defaults.SWEEP_INTERVAL
    # Seconds between the scheduler's background integrity passes (JOBSVC_INTEGRITY_INTERVAL; 0: none).
    integrity_interval: float = defaults.INTEGRITY_INTERVAL
    # Secret that signs handler POSTs and outcome callbacks (JOBSVC_HANDLER_SECRET); a worker without one
    # refuses to call handlers rather than send unsigned requests.
    handler_secret: str = ""
    # Per-namespace signing secrets (JOBSVC_HANDLER_SECRETS="billing=s1,reports=s2"): a namespace's handlers and
    # callback receivers verify with their own secret, so another namespace's jobs cannot produce requests
    # they accept. Namespaces not listed use handler_secret.
    handler_secrets: str = ""
    # Local development only (JOBSVC_ALLOW_PRIVATE_URLS=1): handler and callback URLs may be plain http
    # and point at loopback or private addresses. Cloud metadata addresses stay refused.
    allow_private_urls: bool = False
    # GET /metrics without a key (JOBSVC_METRICS_PUBLIC=1), for a Prometheus that cannot send one; off, the
    # scrape needs a key with jobs:read, since queue and function names are visible in the output.
    metrics_public: bool = False
    # Module prefixes (JOBSVC_ALLOWED_MODULES="app.tasks,billing") whose functions jobs created through the HTTP
    # API may run; empty: none (such jobs may still name handler URLs). Jobs enqueued from Python run any
    # importable function, as in RQ. See jobsvc/allowlist.py.
    allowed_modules: str = ""

    def __post_init__(self) -> None:
        if self.lease_ttl <= 0:
            raise ValidationError("lease_ttl must be > 0")
        if not 0 < self.heartbeat_interval < self.lease_ttl:
            raise ValidationError("heartbeat_interval must be > 0 and shorter than lease_ttl")
        if self.max_lease_losses < 1:
            raise ValidationError("max_lease_losses must be >= 1")
        if not 1 <= self.max_attempts <= defaults.MAX_ATTEMPTS_LIMIT:
            raise ValidationError(f"max_attempts must be 1..{defaults.MAX_ATTEMPTS_LIMIT}")
        if not 1 <= self.claim_batch <= defaults.CLAIM_BATCH_LIMIT:
            raise ValidationError(f"claim_batch must be 1..{defaults.CLAIM_BATCH_LIMIT}")
        if not 0 <= self.replica_wait <= defaults.REPLICA_WAIT_LIMIT:
            raise ValidationError(f"replica_wait must be 0..{defaults.REPLICA_WAIT_LIMIT} (replicas)")
        if not 1 <= self.replica_wait_timeout_ms <= 60_000:
            raise ValidationError("replica_wait_timeout_ms must be 1..60000")
        if self.integrity_interval < 0:
            raise ValidationError("integrity_interval must be >= 0 (0: no background integrity pass)")
        if not self.key_prefix:
            raise ValidationError("key_prefix must not be empty")
        if "%" in self.key_prefix:
            raise ValidationError(f"key_prefix must not contain '%' (it marks a name in jobsvc's key templates, "
                                  f"jobsvc/engine/keys.py): {self.key_prefix!r}")
        self.namespace_secrets()  # refuse a malformed JOBSVC_HANDLER_SECRETS at start, not at first use
        self.module_allow_list()  # and a malformed JOBSVC_ALLOWED_MODULES

    def namespace_secrets(self) -> dict[str, str]:
        """handler_secrets as {namespace: secret}."""
        out: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in self.handler_secrets.split(","))):
            namespace, sep, secret = item.partition("=")
            if not sep or not namespace.strip() or not secret.strip():
                raise ValidationError("JOBSVC_HANDLER_SECRETS must be namespace=secret pairs separated by commas")
            out[namespace.strip()] = secret.strip()
        return out

    def module_allow_list(self) -> ModuleAllowList:
        return ModuleAllowList.parse(self.allowed_modules)

    def secret_for(self, namespace: str) -> str:
        """The secret that signs requests of a namespace's jobs ('' when none is configured)."""
        return self.namespace_secrets().get(namespace) or self.handler_secret

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Defaults, then JOBSVC_<FIELD> (and REDIS_URL) from the environment, then overrides that are not None."""
        if env is None:
            env = os.environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("REDIS_URL") if f.name == "redis_url" else env.get(f"JOBSVC_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def wait(self) -> tuple[int, int] | None:
        """(replicas, timeout ms) for scripts.call_many's `wait`, None when writes do not wait."""
        return (self.replica_wait, self.replica_wait_timeout_ms) if self.replica_wait else None

    def with_(self, **changes: Any) -> Config:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _coerce(name: str, type_name: Any, raw: str) -> Any:
    kind = str(type_name)
    if kind.startswith("bool"):
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValidationError(f"JOBSVC_{name.upper()}={raw!r} is not a boolean (1/0, true/false)")
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
    except ValueError:
        raise ValidationError(f"JOBSVC_{name.upper()}={raw!r} is not a number") from None
    return raw
