"""`jobsvc up`: the whole stack on an embedded Redis, as the README's quick start runs it."""
from __future__ import annotations

import contextlib
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


class Stacks:
    """`jobsvc up` runs in tmp_path (data in tmp_path/data, output in tmp_path/up.log); all killed at teardown."""

    def __init__(self, tmp_path, env):
        self.tmp_path, self.env, self.started = tmp_path, env, []
        self.log_path = tmp_path / "up.log"

    def start(self, *extra, env=None):
        port = free_port()
        with open(self.log_path, "a") as log:  # a file, not a pipe: a full pipe would block the stack
            # Its own session, so teardown can kill the whole stack (gunicorn, workers, scheduler) as one
            # group; the embedded Redis dies with its parent.
            proc = subprocess.Popen([sys.executable, "-m", "jobsvc_cli", "up", "--port", str(port), "--data-dir",
                                     str(self.tmp_path / "data"), *extra], env={**self.env, **(env or {})},
                                    stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp_path, start_new_session=True)
        self.started.append(proc)
        return proc, port, self.tmp_path / "data"

    def log(self):
        return self.log_path.read_text(errors="replace")

    def kill_all(self):
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def stacks(tmp_path, subprocess_env):
    env = dict(subprocess_env)
    env.pop("REDIS_URL", None)
    env.pop("ADMIN_API_KEY", None)
    all_stacks = Stacks(tmp_path, env)
    yield all_stacks
    all_stacks.kill_all()
    print(all_stacks.log())


@pytest.fixture
def stack(stacks):
    return stacks.start()


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
    assert "jobs created through the API may run Python functions from: tests" in out
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


def healthy(port):
    return wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/health", timeout=1).json(), 30)


def test_a_restart_keeps_the_embedded_redis_port_and_ctrl_c_says_what_it_waits_for(stacks):
    proc, port, data = stacks.start()
    healthy(port)
    first_url = (data / "redis_url").read_text().strip()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    out = stacks.log()
    assert "stopping: the worker lets in-flight jobs finish for up to 25s (Ctrl+C again" in out
    assert "worker stopped" in out and "web stopped" in out and "embedded Redis stopped" in out

    proc, port, data = stacks.start()
    healthy(port)
    assert (data / "redis_url").read_text().strip() == first_url
    assert f"embedded Redis: {first_url} (kept in" in stacks.log()


def test_a_taken_redis_port_falls_back_to_a_free_one_and_an_explicit_one_is_refused(stacks, tmp_path):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "redis_port").write_text(f"{taken}\n")
        _, port, data = stacks.start()
        healthy(port)
        assert f"port {taken} (kept in" in stacks.log() and "is taken: a free one" in stacks.log()
        assert (data / "redis_port").read_text().strip() != str(taken)
        refused, _, _ = stacks.start("--redis-port", str(taken))
        assert refused.wait(timeout=30) == 2
        assert f"--redis-port {taken} is taken" in stacks.log()


def test_a_second_ctrl_c_hands_the_running_job_back_at_once(stacks, tmp_path):
    proc, port, data = stacks.start(env={"JOBSVC_SHUTDOWN_GRACE": "120"})
    healthy(port)
    url = (data / "redis_url").read_text().strip()
    client = Client(url, Config(redis_url=url))
    marker = tmp_path / "started"
    job = client.enqueue("tests.jobfuncs.touch_then_sleep", str(marker), 300)
    wait_for(marker.exists, 30)
    proc.send_signal(signal.SIGINT)
    wait_for(lambda: "stopping: the worker lets in-flight jobs finish for up to 120s" in stacks.log(), 30)
    assert proc.poll() is None  # waiting out the grace period for the running job
    time.sleep(1.1)  # the worker ignores a repeat within 1 s (one Ctrl+C reaching it twice): not a wait for state
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    assert "handing in-flight jobs back to their queues now" in stacks.log()
    # Redis is stopped with the stack: read the job back from a fresh one on the same data.
    from jobsvc.embedded import EmbeddedRedis

    with EmbeddedRedis(data) as again:
        assert Client(again.url, Config(redis_url=again.url)).state(job.id) == State.QUEUED
