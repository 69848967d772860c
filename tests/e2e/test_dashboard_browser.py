"""The dashboard in headless Chromium: sign in, filter failed jobs, open one, retry it, bulk retry through the
preview and confirm steps, live refresh without a reload, and a read-only key that sees no buttons."""
from __future__ import annotations

import re

import pytest

from jobsvc import defaults
from jobsvc.admin import apikeys
from jobsvc.engine.leases import Leases
from jobsvc.engine.states import State
from tests.e2e.conftest import ADMIN_KEY

pytestmark = pytest.mark.e2e

NOOP = "tests.jobfuncs.noop"


def failed_jobs(client, r, config, n: int, queue: str = "mail") -> list[str]:
    """n jobs that failed for good, each with an error and a traceback in its run history."""
    leases = Leases(r, config)
    ids = []
    for i in range(n):
        job_id = client.enqueue(NOOP, i, kwargs={"password": "hunter2"}, queue=queue, max_attempts=1).id
        lease = leases.claim([queue], "host.1.w")
        leases.fail(lease, ConnectionError(f"smtp down #{i}"),
                    f'Traceback (most recent call last):\n  File "mail.py", line {i}, in send\nConnectionError\n',
                    retryable=False)
        ids.append(job_id)
    return ids


def sign_in(page, server, key: str) -> None:
    page.goto(f"{server.url}/dashboard/")
    page.wait_for_url(re.compile(r"/dashboard/login"))
    page.fill("#key", key)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/dashboard/$"))


def test_operator_finds_retries_and_bulk_retries_failed_jobs(page, server, client, r, config, shot):
    ids = failed_jobs(client, r, config, 4)
    client.enqueue_many([client.job(NOOP, queue="mail") for _ in range(5)])
    sign_in(page, server, ADMIN_KEY)
    assert page.locator('#queues tr[data-queue="mail"]').is_visible()
    assert page.locator("figure.chart svg").count() == 2
    shot(page, "01-overview")

    # Filter failed jobs in the job browser.
    page.click("header nav >> text=Jobs")
    page.select_option("#f-queue", "mail")
    page.select_option("#f-state", "failed")
    page.click("#apply-filters")
    page.wait_for_url(re.compile(r"state=failed"))
    rows = page.locator("#jobs tbody tr[data-job]")
    assert rows.count() == 4
    shot(page, "02-failed-jobs")

    # Open one: its traceback is there, its password is not.
    target = ids[0]
    page.click(f"#jobs a:has-text('{target}')")
    page.wait_for_url(re.compile(f"/dashboard/jobs/{target}$"))
    assert page.inner_text("#job-state") == "failed"
    assert "ConnectionError" in page.inner_text("section[data-region=job_runs]")
    assert "hunter2" not in page.content() and "••••••" in page.inner_text("#payload-kwargs")
    shot(page, "03-job-detail")

    # Retry it.
    page.click("#job-retry")
    page.wait_for_selector(".flash.ok")
    assert page.inner_text("#job-state") == "queued"
    assert client.state(target) == State.QUEUED
    shot(page, "04-job-retried")

    # Bulk retry the other three: preview (nothing changes), then confirm.
    page.goto(f"{server.url}/dashboard/jobs?queue=mail&state=failed")
    page.click("#bulk-retry-link")
    page.click("#bulk-preview-button")
    page.wait_for_selector("#bulk-preview")
    assert page.inner_text("#bulk-matched") == "3"
    assert all(client.state(j) == State.FAILED for j in ids[1:])
    shot(page, "05-bulk-preview")
    page.click("#bulk-confirm")
    page.wait_for_selector("#bulk-result")
    assert page.inner_text("#bulk-changed") == "3"
    assert all(client.state(j) == State.QUEUED for j in ids)
    shot(page, "06-bulk-done")

    # Every action is in the audit log.
    page.click("header nav >> text=Audit log")
    actions = page.locator("#audit tbody tr").evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert actions[:4] == ["bulk.retry", "bulk.retry", "jobs.retry", "dashboard.sign_in"]
    shot(page, "07-audit-log")


def test_a_read_only_key_sees_no_action_buttons(page, server, client, r, config, shot):
    [job_id] = failed_jobs(client, r, config, 1)
    _, secret = apikeys.create(r, config.key_prefix, "viewer", ["jobs:read"])
    sign_in(page, server, secret)
    assert page.locator(".me .badge", has_text="read-only").is_visible()
    page.goto(f"{server.url}/dashboard/jobs/{job_id}")
    assert page.inner_text("#job-state") == "failed"
    buttons = page.locator("button").evaluate_all("bs => bs.map(b => b.id)")
    assert buttons == ["sign-out"]
    assert page.locator("header nav >> text=Bulk").count() == 0
    assert page.locator("header nav >> text=Audit log").count() == 0
    shot(page, "08-read-only-job")


def test_pages_refresh_live_without_reloading(page, server, client, monkeypatch, shot):
    monkeypatch.setattr(defaults, "DASHBOARD_REFRESH", 1)
    client.enqueue(NOOP, queue="first")
    sign_in(page, server, ADMIN_KEY)
    page.evaluate("window.__loaded_once = true")
    client.enqueue_many([client.job(NOOP, queue="arrived-later") for _ in range(7)])
    page.wait_for_selector('#queues tr[data-queue="arrived-later"]', timeout=8000)
    assert page.evaluate("window.__loaded_once") is True  # the same document: no reload
    assert "7" in page.inner_text('#queues tr[data-queue="arrived-later"]')
    assert page.inner_text("#live-status").startswith("live · updated")
    shot(page, "09-live-refresh")
