"""The API docs page in headless Chromium: Swagger UI renders from the app's own assets under the page's
Content-Security-Policy (a violation is a console error, which fails the test), and the browser asks no other
host for anything."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e


def test_swagger_ui_renders_offline_under_its_csp(page, server, shot):
    hosts: set[str] = set()
    page.on("request", lambda req: hosts.add(urlsplit(req.url).netloc))
    page.goto(f"{server.url}/api/v1/docs")
    page.wait_for_selector(".swagger-ui .opblock")  # operations rendered by Swagger UI itself
    assert page.locator("#fallback").is_hidden()
    assert page.locator(".opblock-summary-path", has_text="/api/v1/jobs/{job_id}/terminate").count() >= 1
    shot(page, "api-docs")
    assert hosts == {urlsplit(server.url).netloc}
