"""`jobsvc schedules ...` and `jobsvc functions ...`: cron schedules and the functions registry, straight on
Redis. Changes land in the audit log under the key id `cli`, like the admin API's."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from jobsvc import Client, ValidationError, validation
from jobsvc.engine.backoff import KINDS as BACKOFF_KINDS

from .args import integer, number
from .output import as_json, table

if TYPE_CHECKING:
    from jobsvc.engine.functions import Registry
    from jobsvc.scheduling.schedules import Schedules

# jobsvc.scheduling.schedules and jobsvc.engine.functions (croniter) are imported by the commands that use them: every
# `jobsvc worker` process starts through this CLI and needs neither.


def _ms(value: int | None) -> str:
    if not value:
        return ""
    return datetime.fromtimestamp(value / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _audit(client: Client, action: str, params: dict[str, Any], counts: dict[str, Any] | None = None) -> None:
    from . import admin

    admin._audit(client, action, params, counts)


def _json_arg(text: str | None, name: str, kind: type) -> Any:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise ValidationError(f"--{name} must be JSON") from None
    if not isinstance(value, kind):
        raise ValidationError(f"--{name} must be a JSON {'list' if kind is list else 'object'}")
    return value


def _report(report: Any, what: str) -> None:
    d = report.to_dict()
    verb = "would be " if d["dry_run"] else ""
    for outcome in ("created", "updated", "deleted", "unchanged"):
        names = d[outcome]
        print(f"{outcome if not verb or outcome == 'unchanged' else verb + outcome}: {len(names)}"
              + (f"  ({', '.join(names)})" if names else ""))
    if d["dry_run"]:
        print(f"dry run: no {what} changed", file=sys.stderr)


# -- schedules -----------------------------------------------------------------------------------------------


def schedules_cmd(client: Client, args: argparse.Namespace) -> int:
    from jobsvc.scheduling.schedules import Schedules

    step = {"list": _schedules_list, "get": _schedules_get, "create": _schedules_create,
            "enable": _schedules_toggle, "disable": _schedules_toggle, "delete": _schedules_delete,
            "execute": _schedules_execute, "runs": _schedules_runs, "sync": _schedules_sync,
            "import": _schedules_import}
    run = step.get(args.schedules_command)
    if run is not None:
        run(Schedules(client), client, args)
    return 0


def _schedules_list(s: Schedules, client: Client, args: argparse.Namespace) -> None:
    cursor: str | None = None
    rows: list[Any] = []
    while True:
        items, cursor = s.list(cursor, 500, namespace=args.namespace)
        rows += items
        if not cursor:
            break
    if args.json:
        as_json([x.to_dict() for x in rows])
        return
    table(["id", "when", "tz", "function", "status", "next run", "runs", "ok", "failed", "avg ms"],
          [(x.id, x.cron or f"every {x.interval:g}s", x.timezone, x.function, x.status, _ms(x.next_run_ms), x.runs,
            x.completed, x.failed, "" if x.avg_runtime_ms is None else x.avg_runtime_ms) for x in rows])


def _schedules_get(s: Schedules, client: Client, args: argparse.Namespace) -> None:
    as_json(s.get(args.id).to_dict())


def _schedules_create(s: Schedules, client: Client, args: argparse.Namespace) -> None:
    values = {k: v for k, v in {
        "id": args.id, "function": args.function, "cron": args.cron, "interval": args.interval,
        "timezone": args.tz, "args": _json_arg(args.args, "args", list),
        "kwargs": _json_arg(args.kwargs, "kwargs", dict), "queue": args.queue, "namespace": args.namespace,
        "priority": args.priority, "max_attempts": args.max_attempts, "timeout": args.timeout,
        "misfire": args.misfire, "misfire_grace": args.misfire_grace, "max_catchup": args.max_catchup,
        "overlap": args.overlap, "start_at": args.start_at, "end_at": args.end_at,
        "description": args.description}.items() if v is not None}
    if args.disabled:
        values["enabled"] = False
    created = s.create(**values)
    _audit(client, "schedules.create", {"id": created.id})
    print(f"created: {created.id}  next run {_ms(created.next_run_ms) or '-'} UTC")


def _schedules_toggle(s: Schedules, client: Client, args: argparse.Namespace) -> None:
    cmd = args.schedules_command
    changed = s.enable(args.id) if cmd == "enable" else s.disable(args.id)
    _audit(client, f"schedules.{cmd}", {"id": args.id})
    print(f"{cmd}d: {changed.id}  next run {_ms(changed.next_run_ms) or '-'} UTC")


def _schedules_delete(s: Schedules, client: Client, args: argparse.Namespace) -> None:
    s.delete(args.id)
    _audit(client, "schedules.delete", {"id": args.id})
    print(f"deleted: {args.id}")


def _schedules_execute(s: Schedules, client: Client, args: argparse.Namespace) -> None:
    job_id = s.execute(args.id)
    _audit(client, "schedules.execute", {"id": args.id, "job_id": job_id})
    print(job_id)


def _schedules_runs(s: Schedules, client: Client, args: argparse.Namespace) -> None:
    runs, cursor = s.runs(args.id, args.cursor, args.limit)
    if args.json:
        as_json({"runs": runs, "next_cursor": cursor})
        return
    table(["job", "scheduled", "trigger", "status", "started", "ms", "error"],
          [(r["job_id"] or "-", _ms(r["scheduled_ms"]), r["trigger"], r["status"], _ms(r["started_ms"]),
            "" if r["duration_ms"] is None else r["duration_ms"], (r["error"] or "")[:60]) for r in runs])
    if cursor:
        print(f"more: --cursor {cursor}", file=sys.stderr)


def _schedules_sync(s: Schedules, client: Client, args: argparse.Namespace) -> None:
    from jobsvc.engine.functions import load_file
    from jobsvc.scheduling.schedules import schedules_file

    namespace, definitions = schedules_file(load_file(args.file))
    namespace = args.namespace or namespace
    report = s.sync(definitions, delete_missing=args.delete_missing, dry_run=args.dry_run, namespace=namespace)
    if not args.dry_run:
        _audit_sync(client, "schedules.sync", args, namespace, report)
    _report(report, "schedule")


def _schedules_import(s: Schedules, client: Client, args: argparse.Namespace) -> None:
    """rq-scheduler's recurring jobs as schedules (jobsvc/scheduling/schedules/rq_import.py)."""
    from jobsvc.scheduling.schedules.rq_import import import_rq_scheduler, local_zone

    tz = args.timezone
    if tz is None:
        tz = local_zone()
        print(f"timezone: {tz} (this machine's; rq-scheduler read cron in its host's local time: give that "
              "host's zone with --timezone if it differs)", file=sys.stderr)
    report = import_rq_scheduler(s, tz, dry_run=args.dry_run, remove=args.remove)
    if not args.dry_run:
        _audit(client, "schedules.import", {"from": "rq-scheduler", "timezone": tz, "remove": args.remove,
                                            "created": report.created, "removed": report.removed},
               report.counts())
    if args.json:
        as_json({"timezone": tz, "dry_run": args.dry_run, **{k: getattr(report, k) for k in (
            "created", "existing", "removed", "refused")},
                 "schedules": [e.spec.spec_dict() for e in report.entries if e.spec is not None]})
        return
    _print_import(report, args)


def _print_import(report: Any, args: argparse.Namespace) -> None:
    verb = "would create" if args.dry_run else "created"
    for e in report.entries:
        if e.spec is None:
            print(f"refused  {e.job_id}: {e.problem}")
            continue
        when = f"cron '{e.spec.cron}' {e.spec.timezone}" if e.spec.cron else f"every {e.spec.interval:g}s"
        state = "exists  " if e.spec.id in report.existing else f"{verb}"
        print(f"{state} {e.spec.id}: {e.spec.function} {when} from {_ms(e.spec.start_ms)} UTC"
              + (f" until {_ms(e.spec.end_ms)} UTC" if e.spec.end_ms else "") + f" queue {e.spec.queue}"
              + "".join(f"; {n}" for n in e.notes))
    print(f"{verb}: {len(report.created)}, already imported: {len(report.existing)}, refused: "
          f"{len(report.refused)}, removed from rq-scheduler: {len(report.removed)}")
    if args.dry_run:
        print("dry run: nothing changed", file=sys.stderr)
    elif not args.remove and (report.created or report.existing):
        print("rq-scheduler's entries stay: while an rqscheduler runs they fire from both; run again with "
              "--remove to take them out", file=sys.stderr)


def _audit_sync(client: Client, action: str, args: argparse.Namespace, namespace: str | None, report: Any) -> None:
    """A sync's audit entry: the file, its scope and how many definitions each outcome had."""
    d = report.to_dict()
    _audit(client, action, {"file": args.file, "namespace": namespace, "delete_missing": args.delete_missing},
           {k: len(d[k]) for k in ("created", "updated", "deleted", "unchanged")})


# -- functions -----------------------------------------------------------------------------------------------


def functions_cmd(client: Client, args: argparse.Namespace) -> int:
    from jobsvc.engine.functions import Registry

    step = {"list": _functions_list, "namespaces": _functions_namespaces, "get": _functions_get,
            "register": _functions_register, "enable": _functions_toggle, "disable": _functions_toggle,
            "delete": _functions_delete, "sync": _functions_sync}
    run = step.get(args.functions_command)
    if run is not None:
        run(Registry(client), client, args)
    return 0


def _functions_list(reg: Registry, client: Client, args: argparse.Namespace) -> None:
    rows = reg.all(args.namespace)
    if args.json:
        as_json([f.to_dict() for f in rows])
        return
    table(["function", "path", "queue", "attempts", "timeout", "enabled", "version"],
          [(f.ref, f.path, f.queue or "", f.max_attempts or "", f.timeout or "", "yes" if f.enabled else "no",
            f.version) for f in rows])


def _functions_namespaces(reg: Registry, client: Client, args: argparse.Namespace) -> None:
    table(["namespace", "functions", "disabled"], [(n["namespace"], n["functions"], n["disabled"])
                                                   for n in reg.namespaces()])


def _functions_get(reg: Registry, client: Client, args: argparse.Namespace) -> None:
    as_json(reg.resolve(args.ref).to_dict())


def _functions_register(reg: Registry, client: Client, args: argparse.Namespace) -> None:
    from jobsvc.engine.functions import parse_ref

    ns, name = parse_ref(args.ref)
    options = {k: v for k, v in {"queue": args.queue, "timeout": args.timeout, "max_attempts": args.max_attempts,
                                 "priority": args.priority, "backoff": args.backoff,
                                 "description": args.description}.items() if v is not None}
    if args.disabled:
        options["enabled"] = False
    fn = reg.register(ns, name, args.path, **options)
    _audit(client, "functions.register", {"ref": fn.ref, "path": fn.path})
    print(f"{fn.ref} -> {fn.path}  (version {fn.version})")


def _functions_toggle(reg: Registry, client: Client, args: argparse.Namespace) -> None:
    from jobsvc.engine.functions import parse_ref

    cmd = args.functions_command
    ns, name = parse_ref(args.ref)
    fn = reg.enable(ns, name) if cmd == "enable" else reg.disable(ns, name)
    _audit(client, f"functions.{cmd}", {"ref": fn.ref})
    print(f"{cmd}d: {fn.ref}  (version {fn.version})")


def _functions_delete(reg: Registry, client: Client, args: argparse.Namespace) -> None:
    from jobsvc.engine.functions import parse_ref

    ns, name = parse_ref(args.ref)
    reg.delete(ns, name)
    _audit(client, "functions.delete", {"ref": f"{ns}/{name}"})
    print(f"deleted: {ns}/{name}")


def _functions_sync(reg: Registry, client: Client, args: argparse.Namespace) -> None:
    from jobsvc.engine.functions import functions_file, load_file

    namespace, items = functions_file(load_file(args.file))
    namespace = args.namespace or namespace
    report = reg.sync(namespace, items, delete_missing=args.delete_missing, dry_run=args.dry_run)
    if not args.dry_run:
        _audit_sync(client, "functions.sync", args, namespace, report)
    _report(report, "function")


def add_commands(sub: Any, with_url: Any) -> None:
    _add_schedules(sub, with_url)
    _add_functions(sub, with_url)


def _add_schedules(sub: Any, with_url: Any) -> None:
    sch = with_url(sub.add_parser("schedules", help="cron schedules: list, create, run now, runs, sync a file"))
    ssub = sch.add_subparsers(dest="schedules_command", required=True)
    ls = ssub.add_parser("list", help="every schedule with its status, next run and counts")
    ls.add_argument("--namespace")
    ls.add_argument("--json", action="store_true")
    for name, text in (("get", "one schedule as JSON"), ("enable", "enable (next run from now on)"),
                       ("disable", "disable"), ("delete", "delete with its run history"),
                       ("execute", "run its job now; prints the job id")):
        ssub.add_parser(name, help=text).add_argument("id")
    _add_schedule_create(ssub)
    rn = ssub.add_parser("runs", help="a schedule's runs, newest first")
    rn.add_argument("id")
    rn.add_argument("--limit", type=integer(validation.PAGE_LIMIT), default=50)
    rn.add_argument("--cursor")
    rn.add_argument("--json", action="store_true")
    _add_sync(ssub.add_parser("sync", help="make the stored schedules match a file (JSON, YAML or TOML)"),
              "schedules", "only this namespace's schedules (default: the file's `namespace`)")
    _add_import(ssub)
    sch.set_defaults(func=schedules_cmd)


def _add_import(ssub: Any) -> None:
    im = ssub.add_parser("import", help="rq-scheduler's recurring jobs (interval, repeat, cron) as schedules")
    im.add_argument("--from-rq-scheduler", action="store_true", required=True,
                    help="read rq-scheduler's zset rq:scheduler:scheduled_jobs (the one source supported)")
    im.add_argument("--timezone", help="IANA zone the rqscheduler host ran in: its cron strings were read in "
                                       "local time (default: this machine's zone)")
    im.add_argument("--dry-run", action="store_true", help="print what would be created; change nothing")
    im.add_argument("--remove", action="store_true",
                    help="take imported entries out of rq-scheduler's zset (under its own lock)")
    im.add_argument("--json", action="store_true")


def _add_sync(parser: Any, what: str, namespace_help: str) -> None:
    """The arguments of `schedules sync` and `functions sync`: the same file-driven sync of either."""
    parser.add_argument("file")
    parser.add_argument("--namespace", help=namespace_help)
    parser.add_argument("--delete-missing", action="store_true", help=f"delete {what} the file does not list")
    parser.add_argument("--dry-run", action="store_true", help="report what would change; change nothing")


def _add_schedule_create(ssub: Any) -> None:
    cr = ssub.add_parser("create", help="create a schedule")
    cr.add_argument("--id", help="default: generated")
    cr.add_argument("--function", required=True, help="import path (app.tasks.f) or registry function (ns/name)")
    when = cr.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help="5 fields, or 6 with seconds first")
    when.add_argument("--interval", type=number(validation.INTERVAL), help="seconds")
    cr.add_argument("--tz", help="IANA timezone (default UTC)")
    cr.add_argument("--args", help="JSON list")
    cr.add_argument("--kwargs", help="JSON object")
    cr.add_argument("--queue")
    cr.add_argument("--namespace")
    cr.add_argument("--priority", type=integer(validation.PRIORITY))
    cr.add_argument("--max-attempts", type=integer(validation.MAX_ATTEMPTS))
    cr.add_argument("--timeout", type=integer(validation.TIMEOUT), help="seconds")
    cr.add_argument("--misfire", choices=validation.MISFIRE_POLICIES)
    cr.add_argument("--misfire-grace", type=number(validation.MISFIRE_GRACE),
                    help="seconds late before a fire counts as missed")
    cr.add_argument("--max-catchup", type=integer(validation.MAX_CATCHUP), help="run_all: missed fires run at most")
    cr.add_argument("--overlap", choices=validation.OVERLAP_POLICIES)
    cr.add_argument("--start-at", help="ISO 8601")
    cr.add_argument("--end-at", help="ISO 8601")
    cr.add_argument("--description")
    cr.add_argument("--disabled", action="store_true")


def _add_functions(sub: Any, with_url: Any) -> None:
    fns = with_url(sub.add_parser("functions", help="the functions registry: list, register, enable, sync a file"))
    fsub = fns.add_subparsers(dest="functions_command", required=True)
    fl = fsub.add_parser("list", help="registered functions")
    fl.add_argument("--namespace")
    fl.add_argument("--json", action="store_true")
    fsub.add_parser("namespaces", help="namespaces with their function counts")
    for name, text in (("get", "one function as JSON"), ("enable", "enable: held jobs run again"),
                       ("disable", "disable: new jobs refused, queued ones wait"), ("delete", "delete")):
        fsub.add_parser(name, help=text).add_argument("ref", help="namespace/name")
    _add_function_register(fsub)
    _add_sync(fsub.add_parser("sync", help="make a namespace match a file {namespace, functions: [...]}"),
              "functions", "default: the file's `namespace`")
    fns.set_defaults(func=functions_cmd)


def _add_function_register(fsub: Any) -> None:
    rg = fsub.add_parser("register", help="create or replace a function")
    rg.add_argument("ref", help="namespace/name")
    rg.add_argument("path", help="import path of the callable, deployed with the workers")
    rg.add_argument("--queue")
    rg.add_argument("--timeout", type=integer(validation.TIMEOUT), help="seconds")
    rg.add_argument("--max-attempts", type=integer(validation.MAX_ATTEMPTS))
    rg.add_argument("--priority", type=integer(validation.PRIORITY))
    rg.add_argument("--backoff", choices=BACKOFF_KINDS)
    rg.add_argument("--description")
    rg.add_argument("--disabled", action="store_true")
