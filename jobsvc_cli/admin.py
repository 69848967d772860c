"""Operator commands straight on Redis: jobs, stats, bulk retry and prune, the cancel-stale sweep, the integrity
sweep, API keys."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from jobsvc import Client, ValidationError, validation
from jobsvc.admin.apikeys import SCOPES
from jobsvc.admin.listing import JobFilter, list_jobs
from jobsvc.engine.keys import Keys
from jobsvc.engine.states import State
from jobsvc.engine.stats import BY, counts_by

from .args import integer, number
from .output import Progress, as_json, table


def _ms(value: int | None) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(value / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def jobs_list(client: Client, args: argparse.Namespace) -> int:
    flt = JobFilter(queue=args.queue, state=args.state, function=args.function, namespace=args.namespace)
    page, cursor = list_jobs(client.redis, client.config, flt, args.cursor, args.limit)
    if args.json:
        as_json({"jobs": [_job_dict(j) for j in page], "next_cursor": cursor})
        return 0
    table(["id", "state", "queue", "function", "attempts", "created"],
          [(j.id, j.state.value, j.queue, j.func_name, f"{j.attempts}/{j.max_attempts}", _ms(j.created_ms))
           for j in page])
    if cursor:
        print(f"more: --cursor {cursor}", file=sys.stderr)
    return 0


def _job_dict(info: Any) -> dict[str, Any]:
    d = {k: v for k, v in vars(info).items() if k != "raw"}
    d["state"] = info.state.value
    return d


# Fields holding epoch milliseconds (durations such as duration_ms are not among them).
EPOCH_MS_FIELDS = ("created_ms", "enqueued_ms", "due_ms", "started_ms", "ended_ms", "lease_expires_ms",
                   "scheduled_ms")


def _readable_times(d: dict[str, Any]) -> dict[str, Any]:
    """`created_ms: 1764448262123` becomes `created: "2026-11-29 20:31:02.123 UTC"`, as people read times."""
    out = {}
    for key, value in d.items():
        if key in EPOCH_MS_FIELDS:
            out[key.removesuffix("_ms")] = _utc_text(value) if isinstance(value, int) else value
        else:
            out[key] = value
    return out


def _utc_text(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def jobs_get(client: Client, args: argparse.Namespace) -> int:
    info = client.get(args.id)
    d = _job_dict(info)
    d["runs"] = client.runs(args.id)
    if info.state == State.COMPLETED:
        d["result"] = repr(client.result(args.id))
    if not args.json:  # --json keeps epoch milliseconds, for scripts
        d = _readable_times(d)
        d["runs"] = [_readable_times(run) for run in d["runs"]]
    as_json(d)
    return 0


def jobs_action(client: Client, args: argparse.Namespace) -> int:
    actions: dict[str, Callable[[str], object]] = {"retry": client.requeue, "cancel": client.cancel,
                                                   "terminate": client.terminate, "delete": client.delete}
    actions[args.action](args.id)
    _audit(client, f"jobs.{args.action}", {"id": args.id})
    print(f"{args.action}: {args.id}")
    return 0


def stats(client: Client, args: argparse.Namespace) -> int:
    data = counts_by(client.redis, Keys(client.config.key_prefix), args.by)
    states = [s.value for s in State]
    table([args.by, *states], [[name] + [row.get(s, 0) for s in states] for name, row in sorted(data.items())])
    return 0


def _bulk_filter(args: argparse.Namespace) -> Any:
    from jobsvc.admin.bulk import BulkFilter

    # prune: several states, comma-separated; an age in days as well as in seconds.
    state = args.state.split(",") if args.state and "," in args.state else args.state
    older = args.older_than
    if getattr(args, "older_than_days", None) is not None:
        if older is not None:
            raise ValidationError("give --older-than or --older-than-days, not both")
        older = args.older_than_days * 86_400
    return BulkFilter(queue=args.queue, namespace=args.namespace, function=args.function, state=state,
                      older_than_s=older, newer_than_s=args.newer_than, error_contains=args.error)


def _operation(args: argparse.Namespace) -> tuple[Callable[..., Any], Any, dict[str, Any]]:
    """The core operation a bulk command runs, its filter, and the options it takes besides (audited too)."""
    from jobsvc.admin import bulk as ops

    if args.command == "cancel-stale":
        # The endpoint's filters: queue, namespace, function; the ages are the core's own arguments.
        flt = ops.BulkFilter(queue=args.queue, namespace=args.namespace, function=args.function)
        return ops.cancel_stale, flt, {"queued_for_s": args.queued_for, "running_for_s": args.running_for}
    return {"retry": ops.bulk_retry, "prune": ops.prune}[args.command], _bulk_filter(args), {}


def _counts(result: Any) -> str:
    """cancel-stale's per-kind counts (`queued 3, running 1`), shown after the total; nothing for the others."""
    return f" ({', '.join(f'{k} {n}' for k, n in result.details.items())})" if result.details else ""


def bulk(client: Client, args: argparse.Namespace) -> int:
    """retry / prune / cancel-stale: a dry run first; the real run after --yes or a typed confirmation."""
    operation, flt, options = _operation(args)
    preview = operation(client.redis, client.config, flt, dry_run=True, **options)
    print(f"{args.command}: {preview.matched} job(s) match{_counts(preview)}; "
          f"sample: {', '.join(preview.sample[:5]) or '-'}")
    if args.dry_run or preview.matched == 0:
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            print("not a terminal: pass --yes to confirm", file=sys.stderr)
            return 2
        if input(f"{args.command} {preview.matched} job(s)? [y/N] ").strip().lower() != "y":
            print("nothing changed")
            return 1
    bar = Progress(args.command)
    try:
        result = operation(client.redis, client.config, flt, dry_run=False, progress=bar, **options)
    finally:
        bar.close()
    _audit(client, f"jobs.{args.command}", dict(vars(flt), **options),
           {"matched": result.matched, "changed": result.changed})
    print(f"{args.command}: {result.changed} changed, {result.skipped} skipped (moved on meanwhile)")
    return 0


def sweep(client: Client, args: argparse.Namespace) -> int:
    """The integrity sweep on demand (the scheduler runs it a bounded step at a time in the background): report
    (exit 1 when it found something), or with --fix repair too; --queue / --namespace scope it. Progress on
    stderr."""
    from jobsvc.admin.bulk import CATEGORIES, integrity_sweep

    fix = args.fix and not args.dry_run
    bar = Progress("sweep")
    try:
        report = integrity_sweep(client.redis, client.config, fix=fix, progress=bar, queue=args.queue,
                                 namespace=args.namespace)
    finally:
        bar.close()
    if fix:
        _audit(client, "bulk.integrity_sweep", {"fix": True, "queue": args.queue, "namespace": args.namespace},
               {"problems": report.total, "scanned": report.scanned})
    if args.json:
        as_json(dict(vars(report), total=report.total, clean=report.clean))
    else:
        rows = [(c, n, ", ".join(report.samples[c][:3])) for c, n in report.counts.items() if n]
        if rows:
            table(["problem", "jobs", "sample"], rows)
            for c, _, _ in rows:
                print(f"  {c}: {CATEGORIES[c]}")
        verb = "found and repaired" if fix else "found (nothing changed: --fix repairs)"
        print(f"sweep: {report.scanned} job(s) looked at, {report.total} problem(s) {verb}")
        if report.busy_groups:
            print(f"sweep: {len(report.busy_groups)} gauge(s) moved while counted, not judged: run it again "
                  f"when the queues are quieter ({', '.join(report.busy_groups[:5])})")
    return 1 if not fix and not report.clean else 0


def _audit(client: Client, action: str, params: dict[str, Any], counts: dict[str, Any] | None = None) -> None:
    """CLI actions land in the same audit log as the API's, under the key id `cli`."""
    from jobsvc.admin import audit

    audit.record(client.redis, client.config.key_prefix, "cli", action, params, counts)


def keys_cmd(client: Client, args: argparse.Namespace) -> int:
    from jobsvc.admin import apikeys

    prefix = client.config.key_prefix
    if args.keys_command == "create":
        key, secret = apikeys.create(client.redis, prefix, args.name, args.scope, args.namespace, args.queue)
        _audit(client, "keys.create", {"id": key.id, "name": key.name, "scopes": list(key.scopes)})
        print(f"id:     {key.id}\nscopes: {', '.join(key.scopes)}\nkey:    {secret}")
        print("the key is shown once; only its hash is stored", file=sys.stderr)
    elif args.keys_command == "list":
        table(["id", "name", "scopes", "namespaces", "queues", "created"],
              [(k.id, k.name, ",".join(k.scopes), ",".join(k.namespaces or ()) or "*", ",".join(k.queues or ()) or "*",
                _ms(k.created_ms)) for k in apikeys.list_keys(client.redis, prefix)])
    else:
        apikeys.revoke(client.redis, prefix, args.id)
        _audit(client, "keys.revoke", {"id": args.id})
        print(f"revoked: {args.id}")
    return 0


def add_commands(sub: Any, with_url: Any) -> None:
    _add_jobs(sub, with_url)
    _add_keys(sub, with_url)
    _add_maintenance(sub, with_url)
    _add_bulk(sub, with_url)


def _add_jobs(sub: Any, with_url: Any) -> None:
    jobs = with_url(sub.add_parser("jobs", help="list, inspect and act on jobs"))
    jsub = jobs.add_subparsers(dest="jobs_command", required=True)
    ls = jsub.add_parser("list", help="a page of jobs (newest first; by state, in that state's order)")
    for opt in ("queue", "state", "function", "namespace", "cursor"):
        ls.add_argument(f"--{opt}")
    ls.add_argument("--limit", type=integer(validation.PAGE_LIMIT), default=50)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=jobs_list)
    get = jsub.add_parser("get", help="one job with its runs")
    get.add_argument("id")
    get.add_argument("--json", action="store_true", help="times as epoch milliseconds (`*_ms`), for scripts")
    get.set_defaults(func=jobs_get)
    for action, text in (("retry", "failed|quarantined|cancelled -> queued"),
                         ("cancel", "queued|scheduled -> cancelled"),
                         ("terminate", "running -> cancelled"), ("delete", "remove a job that is not running")):
        p = jsub.add_parser(action, help=text)
        p.add_argument("id")
        p.set_defaults(func=jobs_action, action=action)


def _add_keys(sub: Any, with_url: Any) -> None:
    keys = with_url(sub.add_parser("keys", help="scoped admin API keys: create, list, revoke"))
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kc = ksub.add_parser("create", help="print a new key once (only its hash is stored)")
    kc.add_argument("name")
    kc.add_argument("--scope", action="append", required=True, choices=SCOPES)
    kc.add_argument("--namespace", action="append", help="limit to these namespaces (repeat)")
    kc.add_argument("--queue", action="append", help="limit to these queues (repeat)")
    ksub.add_parser("list", help="keys without their secrets")
    kr = ksub.add_parser("revoke", help="revoke a key at once")
    kr.add_argument("id")
    keys.set_defaults(func=keys_cmd)


def _add_maintenance(sub: Any, with_url: Any) -> None:
    """`stats` and `sweep`: whole-store reports."""
    st = with_url(sub.add_parser("stats", help="jobs per state by queue, namespace or function"))
    st.add_argument("--by", choices=BY, default="queue")
    st.set_defaults(func=stats)

    sw = with_url(sub.add_parser("sweep", help="integrity sweep: check (and repair) indexes, gauges, and jobs RQ's "
                                               "own tools moved"))
    sw.add_argument("--fix", action="store_true", help="repair what it finds (default: report only, change "
                                                       "nothing, exit 1 if it finds any)")
    sw.add_argument("--dry-run", action="store_true", help="report only, even with --fix (the default)")
    sw.add_argument("--queue", help="only this queue")
    sw.add_argument("--namespace", help="only this namespace")
    sw.add_argument("--json", action="store_true", help="the whole report as JSON")
    sw.set_defaults(func=sweep)


def _add_bulk(sub: Any, with_url: Any) -> None:
    """`retry` and `prune`: bulk actions over the jobs a filter selects; `cancel-stale`: over the jobs queued or
    running too long."""
    for name, text, default_state in (("retry", "bulk retry: failed (or --state) jobs -> queued", "failed"),
                                      ("prune", "bulk delete of finished jobs", None)):
        p = with_url(sub.add_parser(name, help=text))
        p.add_argument("--queue")
        p.add_argument("--state", default=default_state,
                       help="prune: one or several (comma-separated); default completed,failed,cancelled "
                            "(quarantined jobs only when named)" if name == "prune" else None)
        p.add_argument("--namespace")
        p.add_argument("--function")
        p.add_argument("--error", help="text the error contains")
        p.add_argument("--older-than", type=number(validation.DELAY), help="seconds")
        p.add_argument("--newer-than", type=number(validation.DELAY), help="seconds")
        if name == "prune":
            p.add_argument("--older-than-days", type=number(validation.AGE_DAYS), help="days")
        _confirmation(p)
    _add_cancel_stale(sub, with_url)


def _add_cancel_stale(sub: Any, with_url: Any) -> None:
    """The options of POST /jobs/stale/cancel (its aliases for other admin APIs' clients left out)."""
    p = with_url(sub.add_parser("cancel-stale", help="cancel jobs queued too long, terminate jobs running too "
                                                     "long (the TTL sweep of other admin APIs)"))
    p.add_argument("--queued-for", type=number(validation.DELAY), metavar="S",
                   help="seconds: cancel queued jobs created longer ago than this")
    p.add_argument("--running-for", type=number(validation.DELAY), metavar="S",
                   help="seconds: terminate running jobs started longer ago than this (the worker stops them)")
    p.add_argument("--queue")
    p.add_argument("--namespace")
    p.add_argument("--function")
    _confirmation(p)


def _confirmation(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="count and sample, change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=bulk)
