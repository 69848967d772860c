"""`jobsvc` command line: up, worker, scheduler, api, enqueue, info (and admin.py, schedules.py)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import redis

from jobsvc import Client, Config, JobsvcError, defaults, validation
from jobsvc.engine.connection import connect
from jobsvc.redis_check import refuse_cluster

from . import admin, schedules
from .args import integer, number

# Where `jobsvc up` writes the embedded Redis's URL; other commands run in the same directory fall back to it.
UP_URL_FILE = Path(".jobsvc") / "redis_url"


def _redis_url(args: argparse.Namespace) -> str | None:
    """--url, else $REDIS_URL, else the URL `jobsvc up` wrote in ./.jobsvc (said on stderr when used)."""
    url = getattr(args, "url", None) or os.environ.get("REDIS_URL")
    if url or args.command == "up":
        return url
    try:
        url = UP_URL_FILE.read_text().strip() or None
    except OSError:
        return None
    print(f"jobsvc: using Redis {url} from {UP_URL_FILE} (written by `jobsvc up`; --url or REDIS_URL to choose)",
          file=sys.stderr, flush=True)
    return url


def _config(args: argparse.Namespace) -> Config:
    lease = getattr(args, "lease_ttl", None)
    beat = getattr(args, "heartbeat_interval", None)
    if lease is not None and beat is None:
        # A lease given alone brings its own heartbeat (a third of it) unless the environment's fits under it.
        env_beat = Config.from_env(lease_ttl=max(lease, defaults.LEASE_TTL)).heartbeat_interval
        beat = env_beat if env_beat < lease else lease / 3
    return Config.from_env(redis_url=_redis_url(args), lease_ttl=lease, heartbeat_interval=beat,
                           shutdown_grace=getattr(args, "grace", None),
                           allowed_modules=getattr(args, "allow_modules", None))


def _queues(raw: list[str]) -> list[str]:
    out: list[str] = []
    for chunk in raw or ["default"]:
        out += [q.strip() for q in chunk.split(",") if q.strip()]
    return out


def _import_paths(flag_paths: list[str] | None) -> list[str]:
    """Where a worker imports job functions from, in order: every --path, then JOBSVC_PATH (os.pathsep
    separated), then the working directory (as `rq worker` does)."""
    env_paths = [p for p in os.environ.get("JOBSVC_PATH", "").split(os.pathsep) if p]
    return [*(flag_paths or []), *env_paths, os.getcwd()]


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.imports import add_import_paths
    from workers.supervisor import Supervisor
    from workers.worker import LeasedWorker

    config = _config(args)
    queues = _queues(args.queues)
    added = add_import_paths(_import_paths(args.path))
    print(f"jobsvc worker: job functions import from {', '.join(added)} (--path), then the installed packages",
          file=sys.stderr, flush=True)

    def run_one() -> None:
        conn = connect(config.redis_url, config)
        LeasedWorker(queues, conn, config, name=args.name if args.concurrency == 1 else None).work(burst=args.burst)

    if args.concurrency == 1:
        run_one()
        return 0
    return Supervisor(run_one, args.concurrency).run()


def cmd_scheduler(args: argparse.Namespace) -> int:
    from workers.scheduler import Scheduler

    config = _config(args)
    Scheduler(connect(config.redis_url, config), config).run()
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    from admin_api import create_app

    config = _config(args)
    create_app(config, dev=True if args.dev else None).run(host=args.host, port=args.port)
    return 0


def cmd_enqueue(args: argparse.Namespace) -> int:
    client = Client(config=_config(args))
    job = client.enqueue(args.function, *[json.loads(a) for a in args.args], queue=args.queue,
                         delay=args.delay, priority=args.priority, max_attempts=args.max_attempts)
    print(job.id)
    return 0


# `jobsvc info` columns: jobs per state now (the counts every surface shows, plain-RQ jobs included), then
# event totals.
INFO_COLUMNS = [("queued", "queued_now"), ("scheduled", "scheduled_now"), ("deferred", "deferred_now"),
                ("running", "running_now"), ("finished", "completed_now"), ("failed", "failed_now"),
                ("cancelled", "cancelled_now"), ("quarantined", "quarantined_now"), ("enqueued", "enqueued"),
                ("retried", "retried")]


def cmd_info(args: argparse.Namespace) -> int:
    """Every queue jobsvc or plain RQ has used: its jobs per state now and its event totals."""
    from jobsvc.engine.stats import read_counts

    client = Client(config=_config(args))
    rows = [(q, client.stats(q)) for q in sorted(read_counts(client.redis, client.keys).queues)]
    print(f"{'queue':<20}" + "".join(f"{title:>12}" for title, _ in INFO_COLUMNS))
    for q, s in rows:
        print(f"{q:<20}" + "".join(f"{s.get(col, 0):>12}" for _, col in INFO_COLUMNS))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """API + worker + scheduler on this machine; an embedded Redis when no REDIS_URL is given."""
    from . import up

    return up.cmd_up(args, _queues(args.queues))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobsvc", description="RQ-compatible jobs with leases, on Redis.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_up(sub)
    _add_worker(sub)
    _add_services(sub)
    _add_tools(sub)
    admin.add_commands(sub, _with_url)
    schedules.add_commands(sub, _with_url)
    return parser


def _with_url(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--url", help="Redis URL (default: $REDIS_URL)")
    return p


def _add_up(sub: Any) -> None:
    up = _with_url(sub.add_parser("up", help="run API + worker + scheduler (embedded Redis without REDIS_URL)"))
    up.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--data-dir", default=".jobsvc", help="embedded Redis data and the admin key (./.jobsvc)")
    up.add_argument("--redis-port", type=int, default=None,
                    help="embedded Redis port (default: the one it had last time, kept in DATA_DIR/redis_port, "
                         "while free)")
    up.add_argument("-q", "--queues", action="append", default=None)
    up.add_argument("--concurrency", type=int, default=2)
    up.set_defaults(func=cmd_up)


def _add_worker(sub: Any) -> None:
    w = _with_url(sub.add_parser("worker", help="run jobs from queues, in order of priority"))
    w.add_argument("-q", "--queues", action="append", default=None, help="comma-separated, first has precedence")
    w.add_argument("--concurrency", type=int, default=1, help="worker processes, supervised")
    w.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    w.add_argument("--lease-ttl", type=float, default=None, help="seconds (default 30)")
    w.add_argument("--heartbeat-interval", type=float, default=None, help="seconds (default: lease/3)")
    w.add_argument("--grace", type=float, default=None, help="seconds an in-flight job gets on SIGTERM")
    w.add_argument("--name", default=None)
    w.add_argument("--allow-modules", default=None, metavar="PREFIXES",
                   help="module prefixes (comma-separated) whose functions jobs created through the HTTP API may "
                        "run (default: $JOBSVC_ALLOWED_MODULES; none)")
    w.add_argument("--path", action="append", default=None, metavar="DIR",
                   help="import job functions from DIR too (repeatable; also $JOBSVC_PATH); the working "
                        "directory always is")
    w.set_defaults(func=cmd_worker)


def _add_services(sub: Any) -> None:
    """`scheduler` and `api`: the long-running processes besides workers."""
    s = _with_url(sub.add_parser("scheduler", help="promote due jobs, reap expired leases (leader-elected)"))
    s.set_defaults(func=cmd_scheduler)

    a = _with_url(sub.add_parser("api", help="serve the admin API (development server; gunicorn in production)"))
    a.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    a.add_argument("--host", default="127.0.0.1")
    a.add_argument("--dev", action="store_true", help="local run: serve without ADMIN_API_KEY (no auth)")
    a.set_defaults(func=cmd_api)


def _add_tools(sub: Any) -> None:
    """`enqueue` and `info`: one-shot commands."""
    e = _with_url(sub.add_parser("enqueue", help="enqueue a job by import path; args as JSON"))
    e.add_argument("function")
    e.add_argument("args", nargs="*")
    e.add_argument("--queue", default="default")
    e.add_argument("--delay", type=number(validation.DELAY), default=None, help="seconds")
    e.add_argument("--priority", type=integer(validation.PRIORITY), default=defaults.PRIORITY)
    e.add_argument("--max-attempts", type=integer(validation.MAX_ATTEMPTS), default=None)
    e.set_defaults(func=cmd_enqueue)

    i = _with_url(sub.add_parser("info", help="queues: jobs per state now, and event totals"))
    i.set_defaults(func=cmd_info)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.func.__module__ in (admin.__name__, schedules.__name__):
            client = Client(config=_config(args))
            refuse_cluster(client.redis)  # a cluster node behind a plain URL: name it redis+cluster://
            return args.func(client, args)
        return args.func(args)
    except JobsvcError as exc:
        print(f"jobsvc: {exc}", file=sys.stderr)
        return 2
    except redis.RedisError as exc:
        print(f"jobsvc: Redis unavailable: {exc}", file=sys.stderr)
        return 3
