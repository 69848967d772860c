"""End-to-end fixtures: the admin app on a real HTTP server (werkzeug, in a thread, on a free port) over the
session's Redis, and a headless Chromium driven by Playwright. Debian's chromium is used as it is
(executable_path), so no `playwright install` download is needed; without it or the playwright package the
tests skip, saying which is missing. Each test's last screen is saved under test-artifacts/."""
from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("JOBSVC_TEST_ARTIFACTS", ROOT / "test-artifacts"))
ADMIN_KEY = "e2e-admin-key-0123456789abcdef"
# Headless and quiet: no GPU, no network of its own (updates, sync, QUIC), no first-run UI; no sandbox
# because CI runs as root in a container, where Chromium's sandbox cannot start.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the dashboard in headless Chromium (skips without it)")


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("python playwright is not installed (pip install -e '.[test]')")
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium at /usr/bin/chromium ($CHROMIUM): apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Server:
    """The admin app served over HTTP on 127.0.0.1:<free port> by werkzeug, in a daemon thread."""

    def __init__(self, app: Any):
        from werkzeug.serving import make_server

        self.http = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        self.thread = threading.Thread(target=self.http.serve_forever, name="e2e-server", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.http.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def server(r, config) -> Iterator[Server]:
    from admin_api import create_app

    srv = Server(create_app(config, r, admin_key=ADMIN_KEY))
    yield srv
    srv.stop()


@pytest.fixture
def page(browser, server, request) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page; its last screen is saved as test-artifacts/<test>.png.
    Closed before the server stops, so no live-refresh poll is cut off."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(10_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-last.png"), full_page=True)
    finally:
        context.close()
    assert not errors, f"errors in the browser console: {errors}"


@pytest.fixture
def shot() -> Any:
    """shot(page, name): save a screenshot of this step as test-artifacts/<name>.png."""

    def save(pg: Any, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return save
