"""`jobsvc up`: the API, a worker and the scheduler on this machine, on an embedded Redis when no REDIS_URL
is given. Ctrl+C stops them in order and says what it waits for; a second Ctrl+C hands jobs back at once."""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jobsvc import Config, JobsvcError
from jobsvc.embedded import EmbeddedRedis, port_is_free, remembered_port

# Seconds `up` waits, beyond the worker's grace period, for its processes to exit before killing them.
STOP_SLACK = 10.0
# Seconds between "still waiting" lines while stopping.
WAIT_REPORT_EVERY = 5.0


def kept_secret(path: Path) -> str:
    """A random secret generated once and kept (mode 0600) in `path`."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    # Created 0600 from the start: never readable by others, not even between write and chmod.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret)
    return secret


def say(message: str) -> None:
    print(message, flush=True)


def start_embedded_redis(data_dir: Path, requested_port: int | None) -> EmbeddedRedis:
    """The embedded Redis on the port it had last time (so REDIS_URL survives restarts), or `--redis-port`."""
    if requested_port is None:
        port, why = remembered_port(data_dir)
    elif port_is_free(requested_port):
        port, why = requested_port, "--redis-port"
    else:
        raise JobsvcError(f"--redis-port {requested_port} is taken: choose another, or leave it out for the "
                          f"port kept in {data_dir}/redis_port")
    embedded = EmbeddedRedis(data_dir, port=port).start()
    embedded.remember_port()
    (data_dir / "redis_url").write_text(embedded.url + "\n")
    say(f"embedded Redis: {embedded.url} ({why}; append-only file in {data_dir.resolve()})")
    return embedded


def web_command(host: str, port: int) -> list[str]:
    """gunicorn as the Procfile runs it: every setting from admin_api/gunicorn_conf.py, only the address here."""
    return [sys.executable, "-m", "gunicorn", "-c", "python:admin_api.gunicorn_conf", "--bind", f"{host}:{port}",
            "--log-level", "warning"]


def start_processes(args: argparse.Namespace, env: dict[str, str], queues: list[str]) -> dict[str, Any]:
    me = [sys.executable, "-m", "jobsvc_cli"]
    return {
        "web": subprocess.Popen(web_command(args.host, args.port), env=env),
        "worker": subprocess.Popen([*me, "worker", "-q", ",".join(queues), "--concurrency", str(args.concurrency)],
                                   env=env),
        "scheduler": subprocess.Popen([*me, "scheduler"], env=env),
    }


def print_banner(args: argparse.Namespace, key: str, key_file: Path, url: str, config: Config) -> None:
    base = f"http://{args.host}:{args.port}"
    allowed, grace = config.module_allow_list().describe(), config.shutdown_grace
    say(f"jobsvc is up: API {base}/api/v1  (health: /health)")
    say(f"dashboard: {base}/dashboard  (sign in with the admin key); metrics: /metrics")
    say(f"admin key: {key}  (kept in {key_file}; set ADMIN_API_KEY to choose one)")
    say(f"REDIS_URL={url}  -- enqueue with jobsvc.Client(REDIS_URL); `jobsvc` commands run here use it too")
    say(f"jobs created through the API may run Python functions from: {allowed}  (JOBSVC_ALLOWED_MODULES=app.tasks,...;"
        f" jobs enqueued from Python run any function)")
    say(f"Ctrl+C stops everything (in-flight jobs get {grace:g}s to finish; Ctrl+C twice hands them back at once)")


class Signals:
    """Counts SIGINT / SIGTERM received by `up` itself."""

    def __init__(self) -> None:
        self.count = 0
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.count += 1


def supervise(procs: dict[str, Any], signals: Signals) -> int:
    """Wait for a stop signal, or for a process to exit on its own (then stop the rest): the exit code."""
    while not signals.count:
        for name, p in procs.items():
            if p.poll() is not None:
                print(f"{name} exited with {p.returncode}; stopping the rest", file=sys.stderr, flush=True)
                return 1
        time.sleep(0.2)
    return 0


def stop_processes(procs: dict[str, Any], signals: Signals, grace: float) -> None:
    """SIGTERM to each; say what is still running, and hand jobs back at once on a further signal."""
    seen = max(signals.count, 1)
    say(f"stopping: the worker lets in-flight jobs finish for up to {grace:g}s "
        f"(Ctrl+C again to hand them back to their queues now)")
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    started = time.monotonic()
    deadline, next_report = started + grace + STOP_SLACK, started + WAIT_REPORT_EVERY
    running = {name for name, p in procs.items() if p.poll() is None}
    while running and time.monotonic() < deadline:
        if signals.count > seen:
            seen = signals.count
            say("handing in-flight jobs back to their queues now")
            if procs["worker"].poll() is None:
                procs["worker"].send_signal(signal.SIGTERM)
        for name in sorted(running):
            if procs[name].poll() is not None:
                running.discard(name)
                say(f"{name} stopped")
        if running and time.monotonic() >= next_report:
            left = max(0.0, started + grace - time.monotonic())
            say(f"waiting for {', '.join(sorted(running))} ({left:.0f}s of grace left)")
            next_report += WAIT_REPORT_EVERY
        time.sleep(0.1)
    for name in sorted(running):
        if procs[name].poll() is None:
            say(f"{name} did not stop in time: killed")
            procs[name].kill()
            procs[name].wait()


def cmd_up(args: argparse.Namespace, queues: list[str]) -> int:
    data_dir = Path(args.data_dir)
    url: str | None = args.url or os.environ.get("REDIS_URL")
    embedded = None
    if not url:
        embedded = start_embedded_redis(data_dir, args.redis_port)
        url = embedded.url
    key_file = data_dir / "admin_key"
    key = os.environ.get("ADMIN_API_KEY") or kept_secret(key_file)
    # Signs HTTP handler requests and outcome notifications (docs/http.md).
    handler_secret = os.environ.get("JOBSVC_HANDLER_SECRET") or kept_secret(data_dir / "handler_secret")
    env = dict(os.environ, REDIS_URL=url, ADMIN_API_KEY=key, JOBSVC_HANDLER_SECRET=handler_secret,
               PYTHONUNBUFFERED="1")
    config = Config.from_env()  # the settings the children read from the same environment
    signals = Signals()
    procs = start_processes(args, env, queues)
    print_banner(args, key, key_file, url, config)
    try:
        code = supervise(procs, signals)
    finally:
        stop_processes(procs, signals, config.shutdown_grace)
        if embedded:
            embedded.stop()
            say("embedded Redis stopped")
    return code
