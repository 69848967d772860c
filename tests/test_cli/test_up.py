"""`jobsvc up`: the whole stack on an embedded Redis, as the README's quick start runs it."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import redis
import requests

from jobsvc import Client, Config, State
from jobsvc.embedded import free_port


def wait_for(fn, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
        except (requests.ConnectionError, requests.Timeout, redis.ConnectionError):  # Timeout: a worker booting
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def stack(tmp_path, subprocess_env):
    env = dict(subprocess_env)
    env.pop("REDIS_URL", None)
    env.pop("ADMIN_API_KEY", None)
    port = free_port()
    log = open(tmp_path / "up.log", "w")  # a file, not a pipe: a full pipe would block the stack
    # Its own session, so teardown can kill the whole stack (gunicorn, workers, scheduler) as one group;
    # the embedded Redis dies with its parent.
    proc = subprocess.Popen([sys.executable, "-m", "jobsvc_cli", "up", "--port", str(port), "--data-dir",
                             str(tmp_path / "data")], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=tmp_path, start_new_session=True)
    yield proc, port, tmp_path / "data"
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    log.close()
    print((tmp_path / "up.log").read_text(errors="replace"))


def test_up_runs_api_worker_and_scheduler_on_embedded_redis(stack):
    proc, port, data = stack
    health = wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/health", timeout=1).json(), 30)
    assert health["redis"] == "up"
    url = (data / "redis_url").read_text().strip()
    client = Client(url, Config(redis_url=url))
    now = client.enqueue("tests.jobfuncs.add", 2, 3)
    later = client.enqueue("tests.jobfuncs.add", 4, 5, delay=0.3)
    wait_for(lambda: client.state(later.id) == State.COMPLETED and client.state(now.id) == State.COMPLETED, 30)
    assert (client.result(now.id), client.result(later.id)) == (5, 9)
    assert len((data / "admin_key").read_text().strip()) >= 32
    assert (data / "appendonly.aof").exists()
    secret = data / "handler_secret"
    assert len(secret.read_text().strip()) >= 32 and secret.stat().st_mode & 0o777 == 0o600
    assert requests.get(f"http://127.0.0.1:{port}/dashboard/login", timeout=5).status_code == 200

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    out = (data.parent / "up.log").read_text()
    assert re.search(r"admin key: \S{32,}", out)
    assert f"http://127.0.0.1:{port}/dashboard" in out
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()  # embedded Redis stopped with it


def test_embedded_redis_does_not_outlive_a_killed_up(stack):
    proc, port, data = stack
    wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/health", timeout=1).json(), 30)
    url = (data / "redis_url").read_text().strip()
    probe = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    assert probe.ping()
    os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up: the kernel tells Redis instead

    def redis_gone():
        try:
            probe.ping()
            return False
        except redis.ConnectionError:
            return True

    wait_for(redis_gone, 15)
