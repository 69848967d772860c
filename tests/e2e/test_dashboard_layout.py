"""Every dashboard page at 1,400 and 800 px wide, over realistic data (long error messages, long JSON in the
audit log, a failed job an operator retried several times, workers, a schedule with history, a quarantined
job): nothing makes the page wider than the window (a wide table scrolls inside its own wrapper), and a
screenshot of each goes to test-artifacts/layout-<page>-<width>.png."""
from __future__ import annotations

import json
import re
import time
import urllib.request
from typing import Any

import pytest

from jobsvc import defaults
from jobsvc.engine.keys import Keys
from jobsvc.engine.leases import Leases
from jobsvc.maintenance.reaper import Reaper
from jobsvc.scheduling.schedules import Schedules
from tests.e2e.conftest import ADMIN_KEY

pytestmark = pytest.mark.e2e

NOOP = "tests.jobfuncs.noop"
WIDTHS = (1400, 800)
SCHEDULE = "nightly-revenue-report-for-every-region"
WORKER = "ip-10-20-30-40.eu-west-1.compute.internal.48213.mail-worker-1"
LONG_ERROR = ("SMTP server smtp.mail-relay.example.internal:587 refused the connection after 3 tries; last reply "
              "421 4.7.0 Try again later, closing connection (while sending invoice INV-2024-000{i} to "
              "accounts.payable.department@very-long-customer-domain.example.com)")
TRACEBACK = ('Traceback (most recent call last):\n  File "/srv/app/mail/sender.py", line 212, in send\n'
             "    conn.sendmail(sender, recipients, message.as_bytes())\nConnectionRefusedError: [Errno 111]\n")


def api_post(server: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A call to the admin API over HTTP, as a script would make it (and audited like one)."""
    req = urllib.request.Request(f"{server.url}/api/v1{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"X-Admin-Key": ADMIN_KEY, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"{}")


def fail(leases: Leases, queue: str, message: str, worker: str = WORKER) -> None:
    lease = leases.claim([queue], worker)
    assert lease is not None
    leases.fail(lease, ConnectionError(message), TRACEBACK, retryable=False)


def seed(server: Any, client: Any, r: Any, config: Any) -> dict[str, str]:
    """What a few hours of a real deployment leave behind, made in well under a second."""
    leases = Leases(r, config)
    # Jobs created through the API with big kwargs: the audit log gets long JSON parameters.
    for i in range(3):
        api_post(server, "/jobs", {
            "function": NOOP, "queue": "reports", "max_attempts": 1,
            "kwargs": {"report": "quarterly-revenue-by-region-and-product-line", "quarter": f"2024-Q{i + 1}",
                       "recipients": [f"finance.team.member.{n}@example-corporation.com" for n in range(12)],
                       "filters": {"regions": ["emea", "apac", "amer", "latam"], "currency": "EUR",
                                   "include_refunds": True, "segments": [f"segment-{n}" for n in range(20)]}}})
    # Failed jobs with long error messages.
    for i in range(4):
        client.enqueue(NOOP, i, kwargs={"to": f"customer-{i}@example.com"}, queue="mail", max_attempts=1)
        fail(leases, "mail", LONG_ERROR.format(i=i))
    # One failed job an operator retried three times through the API; it failed every time.
    retried = client.enqueue(NOOP, queue="mail", max_attempts=1, kwargs={"to": "retried@example.com"}).id
    fail(leases, "mail", LONG_ERROR.format(i=9))
    for _ in range(3):
        api_post(server, f"/jobs/{retried}/retry", {})
        fail(leases, "mail", LONG_ERROR.format(i=9))
    # Work waiting and running, a quarantined job.
    client.enqueue_many([client.job(NOOP, queue=q) for q in ("default", "mail", "reports", "thumbnails")
                         for _ in range(3)])
    running = leases.claim(["thumbnails"], WORKER)
    assert running is not None
    # Two registered workers (RQ's registry), one of them holding the running job.
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    for name, queues in ((WORKER, "mail,reports,thumbnails,imports,default"), ("worker-2.host-b.1234", "default")):
        r.sadd("rq:workers", f"rq:worker:{name}")
        r.hset(f"rq:worker:{name}", mapping={"hostname": name.split(".")[0], "pid": 48213, "queues": queues,
                                             "state": "idle", "birth": now, "last_heartbeat": now,
                                             "successful_job_count": 123456, "failed_job_count": 789})
    # A schedule with a run history: one manual run that failed.
    schedules = Schedules(client)
    schedules.create(id=SCHEDULE, function=NOOP, cron="0 3 * * *", queue="nightly",
                     description="Revenue per region, mailed to finance every night")
    api_post(server, f"/schedules/{SCHEDULE}/execute", {})
    fail(leases, "nightly", LONG_ERROR.format(i=7))
    api_post(server, f"/schedules/{SCHEDULE}/execute", {})
    lease = leases.claim(["nightly"], WORKER)
    assert lease is not None
    leases.complete(lease, None, WORKER, time.time() - 2.5, time.time())
    schedules.record_runs()
    return {"retried": retried}


def quarantine(client: Any, r: Any, config: Any) -> None:
    """A job whose lease was lost with max_lease_losses=1: the reaper quarantines it."""
    cfg = config.with_(max_lease_losses=1)
    job_id = client.enqueue(NOOP, queue="imports", kwargs={"file": "s3://bucket/imports/2024/huge.csv"}).id
    Leases(r, cfg).claim(["imports"], "w")
    r.zadd(Keys(config.key_prefix).leases, {job_id: 0})  # its lease is long gone
    assert Reaper(r, cfg).run_once().quarantined == 1


PAGES = {
    "overview": "/dashboard/",
    "jobs": "/dashboard/jobs",
    "job": "/dashboard/jobs/{retried}",
    "bulk": "/dashboard/bulk?operation=retry&state=failed&queue=mail",
    "workers": "/dashboard/workers",
    "schedules": "/dashboard/schedules",
    "schedule": f"/dashboard/schedules/{SCHEDULE}",
    "quarantine": "/dashboard/quarantine",
    "audit": "/dashboard/audit",
}

# What sticks out past the window's right edge, outside a table's own scroller: named for the failure message.
OVERFLOW = """() => {
  const limit = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (el.parentElement && el.parentElement.closest(".table-wrap")) continue;
    const right = el.getBoundingClientRect().right;
    if (right > limit + 0.5) {
      const named = typeof el.className === "string" && el.className;
      const cls = named ? "." + el.className.trim().split(/\\s+/).join(".") : "";
      wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + cls + " right=" + Math.round(right));
    }
  }
  return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth, client: limit,
          wide: wide.slice(0, 8)};
}"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(PAGES))
def test_page_fits_the_window(page, server, client, r, config, shot, name, width):
    ids = seed(server, client, r, config)
    quarantine(client, r, config)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{server.url}/dashboard/login")
    page.fill("#key", ADMIN_KEY)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/dashboard/$"))
    page.goto(server.url + PAGES[name].format(**ids))
    assert page.locator("h1").first.is_visible()
    shot(page, f"layout-{name}-{width}")
    found = page.evaluate(OVERFLOW)
    assert found["scroll"] <= found["inner"] and found["scroll"] <= found["client"], found
    check = CHECKS.get(name)
    if check:
        check(page, width, shot)


def _jobs(page: Any, width: int, shot: Any) -> None:
    table = page.locator("#jobs")
    assert table.locator("tbody tr[data-job]").count() >= 10
    # The ended and error columns are on screen, not scrolled away; an error is cut to two lines, whole in
    # its title.
    for header in ("ended", "error"):
        box = table.locator("th", has_text=header).bounding_box()
        assert box is not None and box["x"] + box["width"] <= width, header
    assert table.locator("td.err .clip[title*='very-long-customer-domain']").count() >= 5


def _job(page: Any, width: int, shot: Any) -> None:
    runs = page.locator("section[data-region=job_runs]")
    assert runs.locator("details.run").count() == 4
    assert runs.locator(".retry-mark").count() == 3
    assert "started over 3 times" in page.inner_text("#operator-retries")


def _audit(page: Any, width: int, shot: Any) -> None:
    # Every time on one line.
    lines = page.locator("#audit td.time").evaluate_all(
        "cells => cells.map(c => { const r = document.createRange(); r.selectNodeContents(c); "
        "return r.getClientRects().length; })")
    assert lines and set(lines) == {1}, lines
    # Long parameters are cut, the whole JSON one click away.
    details = page.locator("#audit td.params details").first
    assert "segment-19" not in details.locator("summary").inner_text()
    details.locator("summary").click()
    assert "segment-19" in details.locator("pre.json").inner_text()
    shot(page, f"layout-audit-open-{width}")
    found = page.evaluate(OVERFLOW)
    assert found["scroll"] <= found["client"], found


def _overview(page: Any, width: int, shot: Any) -> None:
    assert "failed / ended jobs" in page.inner_text("#failure-rate-card")


CHECKS = {"jobs": _jobs, "job": _job, "audit": _audit, "overview": _overview}


def wait_for_refresh(page: Any) -> None:
    """Until the next live refresh has swapped the page's regions (the footer says when it has)."""
    page.evaluate("document.getElementById('live-status').textContent = 'waiting'")
    page.wait_for_selector("#live-status:has-text('live · updated')")


def test_live_refresh_keeps_what_the_user_expanded(page, server, client, r, config, monkeypatch):
    monkeypatch.setattr(defaults, "DASHBOARD_REFRESH", 1)
    ids = seed(server, client, r, config)
    page.goto(f"{server.url}/dashboard/login")
    page.fill("#key", ADMIN_KEY)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/dashboard/$"))
    page.goto(f"{server.url}/dashboard/audit")
    opened = page.locator("#audit td.params details").nth(1)
    key = opened.get_attribute("data-key")
    opened.locator("summary").click()
    wait_for_refresh(page)
    assert page.locator(f'#audit details[data-key="{key}"]').evaluate("d => d.open") is True
    assert page.locator("#audit td.params details[open]").count() == 1
    # On a job's page: the newest run is open by default; close it, open the oldest, and both stay so.
    page.goto(f"{server.url}/dashboard/jobs/{ids['retried']}")
    page.locator('details[data-key="run-4"] summary').click()
    page.locator('details[data-key="run-1"] summary').click()
    wait_for_refresh(page)
    states = page.locator("details.run").evaluate_all("ds => ds.map(d => [d.dataset.key, d.open])")
    assert states == [["run-4", False], ["run-3", False], ["run-2", False], ["run-1", True]]
