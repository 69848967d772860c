"""The functions registry: named job functions with their defaults, by namespace.

A function is `namespace/name` -> the import path of a callable deployed with the workers, plus defaults
for its jobs (queue, timeout, max_attempts, backoff, priority), `enabled`, a description and a version that
goes up on every change. The registry stores import paths, never code: a worker that cannot import one
fails the job at once, not retried (workers/execution.py).

Register in code with the `@function(...)` decorator (then `Registry.sync_declared()`), from the admin API,
or from a declarative file (`jobsvc functions sync FILE`):

    >>> registry = Registry(client)
    >>> registry.register("billing", "charge", "app.billing.charge", queue="billing", max_attempts=5)
    >>> registry.enqueue("billing/charge", kwargs={"invoice": 42})    # takes the function's defaults
    >>> registry.patch("billing", "charge", enabled=False)           # new jobs refused; queued ones wait

A disabled function refuses new jobs (errors.Disabled) and its queued jobs stay queued, skipped by claims (one
SISMEMBER in claim.lua on jobs made from the registry), until it is enabled again.

Redis (under the key prefix): `function:<ns>/<name>` hash (spec JSON, version, created_ms, updated_ms),
`function_names:<ns>` and `function_namespaces` listing indexes, `functions:disabled` set of disabled refs
(jobsvc/engine/keys.py: no namespace or name can spell the fixed `functions:disabled`).

The code is split by concern: `spec` (Function, FunctionJob: a function's definition and its validation),
`registry` (Registry: the store, on jobsvc/engine/versioned.py's versioned store; `@function` and DECLARED) and `files`
(reading declarative files). This package re-exports them.
"""
from __future__ import annotations

from .files import functions_file, load_file, sync_file_items
from .registry import DECLARED, Registry, SyncReport, function
from .spec import (
    DESCRIPTION_MAX,
    FUNCTION_NAME,
    SPEC_FIELDS,
    Function,
    FunctionJob,
    check_job_defaults,
    check_name,
    parse_ref,
)

__all__ = ["DECLARED", "DESCRIPTION_MAX", "FUNCTION_NAME", "SPEC_FIELDS", "Function", "FunctionJob", "Registry",
           "SyncReport", "check_job_defaults", "check_name", "function", "functions_file", "load_file", "parse_ref",
           "sync_file_items"]
