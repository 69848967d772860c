"""Dashboard server time with 1,000,000 jobs stored: every page (and the overview's live-refresh twin) through
Flask's test client, signed in as admin, against one private Redis. Prints p50 / p99 ms per page.

    python -m bench.dashboard            # 1,000,000 jobs (about a minute to fill, ~1 GB of Redis memory)
    python -m bench.dashboard --quick    # 20,000 jobs, a smoke run
"""
from __future__ import annotations

import argparse
import functools
import os
import re
import tempfile
import time

import redis

from jobsvc import Client, Config
from jobsvc.admin import audit
from jobsvc.embedded import EmbeddedRedis
from jobsvc.engine.keys import Keys
from jobsvc.scheduling.schedules import Schedules

from .admin import NOOP, fill, make_failed, timed

ADMIN_KEY = "bench-key-0123456789abcdef"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(http) -> None:
    token = CSRF.search(http.get("/dashboard/login").get_data(as_text=True)).group(1)
    resp = http.post("/dashboard/login", data={"key": ADMIN_KEY, "csrf_token": token})
    assert resp.status_code == 303, resp.status_code


def _fill(r: redis.Redis, config: Config, total: int, failed_n: int) -> None:
    """total jobs (failed_n of them failed), 20 schedules and 500 audit entries: every page has rows."""
    client = Client(r, config)
    t = time.perf_counter()
    fill(client, total - failed_n)
    make_failed(r, client, failed_n, "mail")  # the failure chart and the failed-jobs page have rows
    for i in range(20):
        Schedules(client).create(id=f"every-{i}", function=NOOP, interval=60 + i)
    for i in range(500):
        audit.record(r, config.key_prefix, "admin", "jobs.retry", {"job_id": str(i)}, {"changed": 1}, 200)
    print(f"{total:,} jobs stored in {time.perf_counter() - t:.0f} s; "
          f"Redis {r.info('memory')['used_memory'] / 2**20:,.0f} MiB", flush=True)


def _pages(r: redis.Redis, config: Config) -> dict[str, str]:
    """Every dashboard page to time, by label; the job pages show the newest job and the newest failed one."""
    keys = Keys(config.key_prefix)
    job_id = r.zrange(keys.created("q1"), -1, -1)[0].decode()
    failed_id = r.zrange(keys.failed("mail"), -1, -1)[0].decode()
    return {
        "overview": "/dashboard/",
        "overview, live refresh": "/dashboard/api/live/overview",
        "jobs, newest first": "/dashboard/jobs",
        "jobs, failed in mail": "/dashboard/jobs?queue=mail&state=failed",
        "jobs, queued in q1": "/dashboard/jobs?queue=q1&state=queued",
        "jobs, by function": f"/dashboard/jobs?function={NOOP}",
        "job detail": f"/dashboard/jobs/{job_id}",
        "job detail, failed": f"/dashboard/jobs/{failed_id}",
        "workers": "/dashboard/workers",
        "schedules": "/dashboard/schedules",
        "quarantine": "/dashboard/quarantine",
        "audit log": "/dashboard/audit",
        "bulk preview page": "/dashboard/bulk?state=failed&queue=mail",
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.dashboard")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    total, failed_n = (20_000, 2_000) if args.quick else (1_000_000, 20_000)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, persist=False) as srv:
        r = redis.Redis.from_url(srv.url)
        config = Config(redis_url=srv.url)
        _fill(r, config, total, failed_n)
        os.environ.pop("JOBSVC_DASHBOARD_SECRET", None)
        from admin_api import create_app

        http = create_app(config, r, admin_key=ADMIN_KEY).test_client()
        sign_in(http)
        rows = []
        for label, path in _pages(r, config).items():
            assert http.get(path).status_code == 200, path  # warm: templates compiled
            p50, p99 = timed(functools.partial(http.get, path), args.reps)
            rows.append((label, p50, p99))
    width = max(len(label) for label, _, _ in rows)
    print(f"{'page (server time, ' + f'{total:,} jobs stored)':<{width + 2}} p50 ms    p99 ms")
    for label, p50, p99 in rows:
        print(f"{label:<{width + 2}} {p50:>6.2f}    {p99:>6.2f}")


if __name__ == "__main__":
    main()
