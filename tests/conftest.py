"""Shared fixtures: one real redis-server per test session on a free port (never 6379), flushed per test."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jobsvc import Client, Config  # noqa: E402
from jobsvc.embedded import EmbeddedRedis  # noqa: E402


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """Started by the first test that needs it (through `r`, `client`, `redis_url` ...), never by the others:
    `pytest -m fast` starts no redis-server."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield server
    server.stop()


@pytest.fixture
def fake_r():
    """An in-memory fakeredis connection, for tests that need only plain Redis commands (no Lua scripts,
    blocking pops, TTLs or other processes): they stay in the fast tier."""
    import fakeredis

    conn = fakeredis.FakeRedis()
    yield conn
    conn.close()


# The fast tier (`pytest -m fast`, seconds, no redis-server): every test that needs no Redis server is marked
# `fast` here, so a new pure-logic test joins it without anyone remembering to. Not fast: crash tests
# (`slow`), browser tests (`e2e`), and what these node ids start with: tests that build packages, or wait out
# a deadline against a local server, without Redis. A test marked fast by hand that needs the Redis server is
# a collection error, not a slow tier.
NOT_FAST = ("tests/test_project/test_packaging.py",
            "tests/test_jobsvc/test_urlguard.py::test_a_trickled_answer_is_cut_off_at_the_deadline",
            "tests/test_cluster/test_bench_cluster.py")  # starts clusters of its own


def pytest_collection_modifyitems(config, items):
    for item in items:
        needs_redis = bool({"redis_server", "redis_cluster_server"} & set(getattr(item, "fixturenames", ())))
        if needs_redis and item.get_closest_marker("fast"):
            raise pytest.UsageError(f"{item.nodeid} is marked fast but needs the Redis server (use fake_r)")
        if not (needs_redis or item.nodeid.startswith(NOT_FAST) or item.get_closest_marker("slow")
                or item.get_closest_marker("e2e")):
            item.add_marker(pytest.mark.fast)


@pytest.fixture
def redis_url(redis_server):
    return redis_server.url


@pytest.fixture
def redis_env(monkeypatch, redis_url):
    """REDIS_URL set to the suite's Redis, for CLI commands run in this process (`jobsvc_cli.main.main`)."""
    monkeypatch.setenv("REDIS_URL", redis_url)


@pytest.fixture
def r(redis_server):
    conn = redis.Redis.from_url(redis_server.url)
    conn.flushdb()  # our own server on our own port: safe to flush
    yield conn
    conn.close()


# The suite runs as a deployment whose jobs from the HTTP API may run functions of the `tests` package
# (JOBSVC_ALLOWED_MODULES=tests); tests of the allow-list itself choose their own.
ALLOWED_MODULES = "tests"


@pytest.fixture
def config(redis_url):
    return Config(redis_url=redis_url, allowed_modules=ALLOWED_MODULES)


@pytest.fixture
def client(r, config):
    return Client(r, config)


@pytest.fixture
def subprocess_env(redis_url):
    """Environment for worker/scheduler child processes: the test Redis, and tests/ importable."""
    env = dict(os.environ)
    env["REDIS_URL"] = redis_url
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env["JOBSVC_ALLOWED_MODULES"] = ALLOWED_MODULES
    return env


# -- multi-process tests (tests/test_workers): real worker and scheduler processes -----------------

import contextlib  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

# Short leases so that crash tests take seconds: beats every 0.25 s (the heartbeat thread's tick).
LEASE_ARGS = ("--lease-ttl", "1", "--heartbeat-interval", "0.2")


def wait_for(predicate: Callable[[], Any], timeout: float, what: str = "", interval: float = 0.01) -> Any:
    """Poll `predicate` until it returns something truthy (returned) or `timeout` s pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def redis_ms(conn: redis.Redis) -> int:
    """Redis' clock in ms: the clock the Lua scripts stamp jobs with."""
    sec, usec = conn.time()
    return sec * 1000 + usec // 1000


def pid_of_worker(name: str) -> int:
    """The pid in a worker name `<host>.<pid>.<hex>` (a host name may contain dots)."""
    return int(name.rsplit(".", 2)[1])


def read_pid(path: Path) -> int | None:
    """The pid a job wrote to a marker file, None until the marker exists."""
    try:
        return int(path.read_text())
    except FileNotFoundError:
        return None


class Processes:
    """jobsvc processes started for one test, each in its own session (so a supervisor and the
    workers it forks are one process group), logging to <tmp>/<name>.log; all killed at teardown."""

    def __init__(self, env: dict[str, str], directory: Path):
        self.env = env
        self.directory = directory
        self.started: list[subprocess.Popen[bytes]] = []
        self.log_paths: dict[int, Path] = {}

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        path = self.directory / f"{name}.log"
        with open(path, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "jobsvc_cli", *args], env={**self.env, **(env or {})},
                                    stdout=out, stderr=subprocess.STDOUT, cwd=self.directory,
                                    start_new_session=True)
        self.started.append(proc)
        self.log_paths[proc.pid] = path
        return proc

    def worker(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        return self.start(name, "worker", *args, env=env)

    def scheduler(self, name: str = "scheduler", env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        return self.start(name, "scheduler", env=env)

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return self.log_paths[proc.pid].read_text(errors="replace")

    def kill_all(self) -> None:
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                proc.kill()
        for proc in self.started:
            proc.wait(timeout=10)


@pytest.fixture
def procs(subprocess_env, tmp_path):
    """Start jobsvc worker / scheduler processes; every one (and its children) is SIGKILLed at teardown.
    Their logs are printed at teardown, which pytest shows when the test fails."""
    processes = Processes(subprocess_env, tmp_path)
    try:
        yield processes
    finally:
        processes.kill_all()
        for path in sorted(tmp_path.glob("*.log")):
            print(f"----- {path.name}\n{path.read_text(errors='replace')}")


def registered_workers(conn: redis.Redis) -> int:
    """Workers that registered with RQ's registry (`rq:workers`): each is ready to claim."""
    return conn.scard("rq:workers")


@pytest.fixture
def run_worker(r, redis_url):
    """Run a burst worker in this process: `run_worker(queues=("default",), **config)` returns it.
    The worker installs signal handlers; they are restored afterwards."""
    from workers.worker import LeasedWorker

    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2,
                                              signal.SIGALRM)}

    def run(queues=("default",), **config):
        worker = LeasedWorker(list(queues), r, Config(redis_url=redis_url, **{"allowed_modules": ALLOWED_MODULES,
                                                                              **config}))
        worker.work(burst=True)
        return worker

    yield run
    for s, h in saved.items():
        signal.signal(s, h)


@pytest.fixture
def handler_server():
    """A real local HTTP server answering as a handler service or a callback receiver (tests/httpserver.py)."""
    from tests.httpserver import HandlerServer

    server = HandlerServer().start()
    yield server
    server.shutdown()
    server.server_close()


HANDLER_SECRET = "test-handler-secret"


@pytest.fixture
def http_config(redis_url):
    """Config for handler jobs against the local test server: a signing secret, loopback http allowed."""
    return Config(redis_url=redis_url, handler_secret=HANDLER_SECRET, allow_private_urls=True)


@pytest.fixture
def http_client(r, http_config):
    return Client(r, http_config)


# -- Redis Cluster (issue 15): a real local cluster, for tests that ask for it ----------------------


@pytest.fixture(scope="session")
def redis_cluster_server(tmp_path_factory):
    """3 masters + 3 replicas (jobsvc/embedded_cluster.py), started by the first test that needs it, killed at the
    end."""
    from jobsvc.embedded_cluster import LocalCluster

    cluster = LocalCluster(tmp_path_factory.mktemp("cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_cluster(redis_cluster_server):
    """The session's cluster, every shard flushed for this test."""
    redis_cluster_server.flush()
    return redis_cluster_server
