"""The dashboard through Flask's test client: sign-in and its cookie, CSRF, scopes and limits, every page,
redaction, actions and their audit entries, and server time per page."""
from __future__ import annotations

import re
import time
from typing import Any

import pytest

from admin_api import create_app
from jobsvc import defaults
from jobsvc.admin import apikeys, audit
from jobsvc.engine import scripts
from jobsvc.engine.states import State
from jobsvc.scheduling.schedules import Schedules
from tests.test_admin_api.support import ADMIN_KEY, NOOP, make_failed, make_running

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
MASK = "••••••"


class Dash:
    """A browser-like test client of the dashboard: keeps the cookie, reads the CSRF token off pages."""

    def __init__(self, app: Any, base_url: str = "http://localhost"):
        self.http = app.test_client()
        self.base_url = base_url
        self.token = ""

    def get(self, path: str, **kw: Any) -> Any:
        resp = self.http.get(path, base_url=self.base_url, **kw)
        found = CSRF.search(resp.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return resp

    def post(self, path: str, data: dict[str, Any] | None = None, csrf: bool = True, **kw: Any) -> Any:
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.token)
        return self.http.post(path, data=data, base_url=self.base_url, **kw)

    def login(self, key: str, **kw: Any) -> Any:
        self.get("/dashboard/login")
        resp = self.post("/dashboard/login", {"key": key}, **kw)
        if resp.status_code == 303:
            self.get("/dashboard/")  # signing in made a new CSRF token
        return resp

    def cookie_headers(self, resp: Any) -> list[str]:
        return [v for k, v in resp.headers.items() if k.lower() == "set-cookie"]


@pytest.fixture
def dash(app):
    d = Dash(app)
    assert d.login(ADMIN_KEY).status_code == 303
    return d


def _entries(r, config, action: str) -> list[audit.Entry]:
    return [e for e in audit.list_entries(r, config.key_prefix, None, 100)[0] if e.action == action]


# -- sign-in, cookie, session ---------------------------------------------------------------------------


def test_sign_in_sets_a_hardened_cookie_that_never_holds_the_key(app):
    d = Dash(app)
    resp = d.login(ADMIN_KEY)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/dashboard/")
    cookie = next(c for c in d.cookie_headers(resp) if c.startswith("jobsvc_dashboard="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    value = cookie.split(";")[0].split("=", 1)[1]
    data = app.session_interface.get_signing_serializer(app).loads(value)
    assert data["kid"] == "admin" and ADMIN_KEY not in repr(data)
    assert d.get("/dashboard/").status_code == 200


def test_cookie_is_secure_over_https_and_behind_a_trusted_proxy(app):
    d = Dash(app, base_url="https://localhost")
    cookie = next(c for c in d.cookie_headers(d.login(ADMIN_KEY)) if c.startswith("jobsvc_dashboard="))
    assert "Secure" in cookie
    https = {"X-Forwarded-Proto": "https"}
    proxied = Dash(app)
    resp = proxied.login(ADMIN_KEY, headers=https)
    assert all("Secure" not in c for c in proxied.cookie_headers(resp))  # the header is not trusted by default
    app.config["JOBSVC_DASHBOARD_TRUST_PROXY"] = True
    trusted = Dash(app)
    assert any("Secure" in c for c in trusted.cookie_headers(trusted.login(ADMIN_KEY, headers=https)))


def test_a_wrong_key_is_refused_and_not_echoed(app):
    d = Dash(app)
    resp = d.login("not-the-key-0123456789")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 401 and "not valid" in body and "not-the-key" not in body
    assert d.get("/dashboard/").status_code == 302


def test_pages_need_a_session(app):
    d = Dash(app)
    resp = d.get("/dashboard/jobs?state=failed")
    assert resp.status_code == 302 and "/dashboard/login?next=" in resp.headers["Location"]
    live = d.get("/dashboard/api/live/overview")
    assert live.status_code == 401 and live.get_json()["error"]["code"] == "unauthorized"
    # The API's keys in headers do not open the dashboard, and the session does not open the API.
    assert d.get("/dashboard/", headers={"X-Admin-Key": ADMIN_KEY}).status_code == 302


def test_session_cookie_does_not_authenticate_the_api(dash):
    assert dash.http.get("/api/v1/jobs").status_code == 401


def test_sign_in_redirects_only_inside_the_dashboard(app):
    d = Dash(app)
    d.get("/dashboard/login")
    resp = d.post("/dashboard/login", {"key": ADMIN_KEY, "next": "https://evil.example/x"})
    assert resp.headers["Location"].endswith("/dashboard/")
    d.get("/dashboard/logout")  # GET is not a route: nothing happens
    d2 = Dash(app)
    d2.get("/dashboard/login")
    resp = d2.post("/dashboard/login", {"key": ADMIN_KEY, "next": "/dashboard/workers"})
    assert resp.headers["Location"].endswith("/dashboard/workers")


def test_sign_out_ends_the_session(dash):
    dash.get("/dashboard/")
    assert dash.post("/dashboard/logout").status_code == 303
    assert dash.get("/dashboard/").status_code == 302


def test_a_revoked_key_loses_its_session_on_the_next_request(app, r, config, make_key):
    secret = make_key("jobs:read")
    d = Dash(app)
    assert d.login(secret).status_code == 303
    assert d.get("/dashboard/").status_code == 200
    apikeys.revoke(r, config.key_prefix, secret.split("_")[1])
    assert d.get("/dashboard/").status_code == 302


def test_a_rotated_admin_key_ends_admin_sessions(r, config, monkeypatch):
    monkeypatch.setenv("JOBSVC_DASHBOARD_SECRET", "a-fixed-session-secret-for-the-test")
    old = create_app(config, r, admin_key=ADMIN_KEY)
    d = Dash(old)
    d.login(ADMIN_KEY)
    assert d.get("/dashboard/").status_code == 200
    new = create_app(config, r, admin_key="another-admin-key-0123456789")
    again = Dash(new)
    again.http = d.http  # the same browser (cookie) against the restarted server
    again.http.application = new
    assert again.get("/dashboard/").status_code == 302


def test_sessions_end_after_their_lifetime(dash):
    with dash.http.session_transaction("/dashboard/") as s:
        s["t"] -= defaults.DASHBOARD_SESSION_TTL + 1
    assert dash.get("/dashboard/").status_code == 302


def test_dev_run_without_a_key_signs_in_with_an_empty_key(r, config):
    d = Dash(create_app(config, r, admin_key=None, dev=True))
    assert "empty key" in d.get("/dashboard/login").get_data(as_text=True)
    assert d.login("").status_code == 303
    assert "key <b>dev</b>" in d.get("/dashboard/").get_data(as_text=True)
    strict = Dash(create_app(config, r, admin_key=ADMIN_KEY))
    assert strict.login("").status_code == 401


# -- CSRF -----------------------------------------------------------------------------------------------


def test_posts_without_the_csrf_token_are_refused_and_change_nothing(dash, client, leases, r, config):
    job_id = make_failed(client, leases)
    for data in ({}, {"csrf_token": "wrong"}):
        resp = dash.post(f"/dashboard/jobs/{job_id}/retry", data, csrf=False)
        assert resp.status_code == 403 and "CSRF" in resp.get_data(as_text=True)
    assert client.state(job_id) == State.FAILED
    assert _entries(r, config, "jobs.retry") == []
    assert dash.post("/dashboard/logout", csrf=False).status_code == 403
    assert dash.get("/dashboard/").status_code == 200  # still signed in


def test_sign_in_itself_needs_the_csrf_token(app):
    d = Dash(app)
    d.get("/dashboard/login")
    assert d.post("/dashboard/login", {"key": ADMIN_KEY}, csrf=False).status_code == 403
    assert d.get("/dashboard/").status_code == 302


# -- pages ----------------------------------------------------------------------------------------------


def _fixture_data(client, leases) -> dict[str, str]:
    ids = {"failed": make_failed(client, leases, queue="mail", message="smtp down"),
           "running": make_running(client, leases, queue="mail")}
    ids["queued"] = client.enqueue(NOOP, queue="default").id
    Schedules(client).create(id="nightly", function=NOOP, cron="0 3 * * *")
    return ids


PAGES = ("/dashboard/", "/dashboard/jobs", "/dashboard/jobs?state=failed&queue=mail", "/dashboard/workers",
         "/dashboard/schedules", "/dashboard/schedules/nightly", "/dashboard/quarantine", "/dashboard/audit",
         "/dashboard/bulk", "/dashboard/bulk?operation=retry&state=failed&queue=mail")


def test_every_page_and_its_live_twin_answers(dash, client, leases):
    ids = _fixture_data(client, leases)
    for path in (*PAGES, *(f"/dashboard/jobs/{i}" for i in ids.values())):
        resp = dash.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert resp.headers["Cache-Control"] == "no-store"
        html = resp.get_data(as_text=True)
        live = re.search(r'data-live="([^"]+)"', html)
        if live:
            twin = dash.get(live.group(1).replace("&amp;", "&"))
            assert twin.status_code == 200 and twin.get_json()["regions"], path
    assert dash.get("/dashboard/static/dashboard.js").status_code == 200
    assert dash.get("/dashboard/jobs/nope").status_code == 404


def test_overview_shows_counts_oldest_age_and_charts(dash, client, leases):
    _fixture_data(client, leases)
    html = dash.get("/dashboard/").get_data(as_text=True)
    assert 'data-queue="mail"' in html and 'data-queue="default"' in html
    assert html.count("<svg") == 2 and "Failure rate per minute" in html
    assert "100.0%" in html  # one finished job this hour, and it failed
    # The tile says what it counts: job endings, a job retried by an operator once per ending.
    assert "failed / ended jobs, last hour" in html and "1 of 1 endings" in html


def test_failure_rate_counts_each_ending_of_a_job_an_operator_retried(dash, client, leases):
    job_id = make_failed(client, leases)
    for _ in range(2):
        client.requeue(job_id)
        lease = leases.claim(["default"], "host.1.w")
        assert lease is not None and lease.job_id == job_id
        leases.fail(lease, RuntimeError("boom"), retryable=False)
    done = client.enqueue(NOOP).id
    lease = leases.claim(["default"], "host.1.w")
    assert lease is not None and lease.job_id == done
    leases.complete(lease, None, "host.1.w", time.time(), time.time())
    html = dash.get("/dashboard/").get_data(as_text=True)
    # One job is failed now; it ended failed three times, beside one completion: 3 of 4 endings.
    assert re.search(r'data-state="failed">1<', html)
    assert 'id="failure-rate">75.0%<' in html and "3 of 4 endings" in html


def test_job_browser_filters_and_pages_with_a_cursor(dash, client, leases):
    failed = [make_failed(client, leases, queue="mail") for _ in range(3)]
    client.enqueue_many([client.job(NOOP, queue="mail") for _ in range(60)])
    html = dash.get("/dashboard/jobs?queue=mail&state=failed").get_data(as_text=True)
    assert set(re.findall(r'data-job="([^"]+)"', html)) == set(failed)
    page1 = dash.get("/dashboard/jobs?queue=mail&state=queued").get_data(as_text=True)
    first = re.findall(r'data-job="([^"]+)"', page1)
    assert len(first) == defaults.DASHBOARD_PAGE_SIZE
    nxt = re.search(r'id="next-page" href="([^"]+)"', page1).group(1).replace("&amp;", "&")
    second = re.findall(r'data-job="([^"]+)"', dash.get(nxt).get_data(as_text=True))
    assert len(second) == 10 and not set(first) & set(second)
    bad = dash.get("/dashboard/jobs?state=nonsense")
    assert bad.status_code == 200 and "unknown state" in bad.get_data(as_text=True)


def test_job_page_shows_runs_tracebacks_and_redacted_payload(dash, client, leases):
    job_id = client.enqueue(NOOP, "visible-arg", kwargs={"password": "hunter2", "nested": {"API_KEY": "k-123", "ok": 1},
                                                         "items": [{"refresh_token": "t-456"}]},
                            meta={"authorization": "Bearer zzz", "note": "fine"}, max_attempts=1).id
    lease = leases.claim(["default"], "host.1.w")
    leases.fail(lease, RuntimeError("kaput"), "Traceback (most recent call last):\n  boom line\n", retryable=False)
    html = dash.get(f"/dashboard/jobs/{job_id}").get_data(as_text=True)
    for secret in ("hunter2", "k-123", "t-456", "zzz"):
        assert secret not in html
    assert html.count(MASK) == 4 and "visible-arg" in html and "fine" in html
    assert "boom line" in html and "kaput" in html


def test_job_page_says_a_job_is_disabled(dash, client):
    job_id = client.enqueue(NOOP).id
    assert 'id="job-disabled"' not in dash.get(f"/dashboard/jobs/{job_id}").get_data(as_text=True)
    client.disable(job_id)
    assert 'id="job-disabled"' in dash.get(f"/dashboard/jobs/{job_id}").get_data(as_text=True)


def test_job_page_marks_where_each_operator_retry_began(dash, client, leases):
    job_id = client.enqueue(NOOP, max_attempts=2).id
    lease = leases.claim(["default"], "host.1.w")
    leases.fail(lease, RuntimeError("first try"), retryable=False)  # attempt 1: failed for good
    page = dash.get(f"/dashboard/jobs/{job_id}").get_data(as_text=True)
    assert "retried by an operator" not in page and 'id="operator-retries"' not in page
    for n in range(2):
        dash.post(f"/dashboard/jobs/{job_id}/retry")  # an operator's retry: attempts start over
        lease = leases.claim(["default"], "host.1.w")
        assert lease is not None and lease.attempt == 1
        leases.fail(lease, RuntimeError(f"again {n}"), retryable=False)
    html = dash.get(f"/dashboard/jobs/{job_id}").get_data(as_text=True)
    assert html.count("attempt 1 ·") == 3
    assert html.count('class="retry-mark"') == 2
    assert "started over 2 times by operator retries" in html
    # Newest first: each marker sits between the run after the retry and the one before it.
    runs = html.split('data-region="job_runs"', 1)[1]
    order = re.findall(r"again 1|again 0|first try|retry-mark", runs)
    assert order == ["again 1", "retry-mark", "again 0", "retry-mark", "first try"]
    # The live twin renders the same.
    live = dash.get(f"/dashboard/api/live/jobs/{job_id}").get_json()["regions"]["job_runs"]
    assert live.count('class="retry-mark"') == 2


def test_runs_that_hand_their_attempt_back_are_no_operator_retry():
    from admin_api.dashboard.data import mark_operator_retries

    runs = [{"attempt": 1, "outcome": "handed_back"}, {"attempt": 1, "outcome": "retrying"},
            {"attempt": 2, "outcome": "accepted"}, {"attempt": 2, "outcome": "failed"},
            {"attempt": 1, "outcome": "lease_lost"}, {"attempt": 1, "outcome": "completed"}, {"outcome": "failed"}]
    assert [r["after_retry"] for r in mark_operator_retries(runs)] == [False, False, False, False, True, True, False]


def test_big_payloads_are_cut(dash, client):
    job_id = client.enqueue(NOOP, "x" * 100_000).id
    resp = dash.get(f"/dashboard/jobs/{job_id}")
    assert "more characters not shown" in resp.get_data(as_text=True)
    assert len(resp.get_data()) < 40_000


# -- actions, scopes, limits ----------------------------------------------------------------------------


def test_retry_from_the_job_page_is_audited(dash, client, leases, r, config):
    job_id = make_failed(client, leases)
    assert 'id="job-retry"' in dash.get(f"/dashboard/jobs/{job_id}").get_data(as_text=True)
    resp = dash.post(f"/dashboard/jobs/{job_id}/retry")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/dashboard/jobs/{job_id}")
    assert client.state(job_id) == State.QUEUED
    assert "queued again" in dash.get(f"/dashboard/jobs/{job_id}").get_data(as_text=True)
    [entry] = _entries(r, config, "jobs.retry")
    assert (entry.key_id, entry.status, entry.params) == ("admin", 200, {"job_id": job_id, "via": "dashboard"})
    # Again: the job is queued now, so it is a 409 told on the page, and audited as such.
    dash.post(f"/dashboard/jobs/{job_id}/retry")
    assert 'class="flash error"' in dash.get(f"/dashboard/jobs/{job_id}").get_data(as_text=True)
    assert [e.status for e in _entries(r, config, "jobs.retry")] == [409, 200]


def test_cancel_and_terminate(dash, client, leases):
    queued = client.enqueue(NOOP).id
    dash.get(f"/dashboard/jobs/{queued}")
    dash.post(f"/dashboard/jobs/{queued}/cancel")
    assert client.state(queued) == State.CANCELLED
    running = make_running(client, leases)
    assert 'id="job-terminate"' in dash.get(f"/dashboard/jobs/{running}").get_data(as_text=True)
    dash.post(f"/dashboard/jobs/{running}/terminate")
    assert client.state(running) == State.CANCELLED


def test_a_read_only_key_sees_no_buttons_and_cannot_act(app, client, leases, make_key, r, config):
    ids = _fixture_data(client, leases)
    d = Dash(app)
    assert d.login(make_key("jobs:read")).status_code == 303
    pages = [d.get(p).get_data(as_text=True) for p in ("/dashboard/", f"/dashboard/jobs/{ids['failed']}",
                                                       "/dashboard/quarantine", "/dashboard/schedules/nightly",
                                                       "/dashboard/jobs?state=failed")]
    for html in pages:
        assert "read-only" in html
        assert set(re.findall(r'<button[^>]*id="([^"]+)"', html)) <= {"sign-out", "apply-filters"}
        assert set(re.findall(r'<form method="post" action="([^"]+)"', html)) == {"/dashboard/logout"}
        assert "Bulk" not in html and "Audit log" not in html
    resp = d.post(f"/dashboard/jobs/{ids['failed']}/retry")
    assert resp.status_code == 403 and client.state(ids["failed"]) == State.FAILED
    assert d.get("/dashboard/bulk").status_code == 403 and d.get("/dashboard/audit").status_code == 403
    assert d.post("/dashboard/bulk/run", {"confirm": "yes", "state": "failed"}).status_code == 403
    assert [e.status for e in _entries(r, config, "jobs.retry")] == [403]


def test_a_key_limited_to_a_queue_sees_and_acts_on_that_queue_only(app, client, leases, make_key):
    mine = make_failed(client, leases, queue="mine")
    theirs = make_failed(client, leases, queue="theirs")
    d = Dash(app)
    d.login(make_key("jobs:write", queues=["mine"]))
    overview = d.get("/dashboard/").get_data(as_text=True)
    assert 'data-queue="mine"' in overview and "theirs" not in overview
    listing = d.get("/dashboard/jobs?state=failed").get_data(as_text=True)
    assert mine in listing and theirs not in listing
    assert "not allowed" in d.get("/dashboard/jobs?queue=theirs").get_data(as_text=True)
    assert d.get(f"/dashboard/jobs/{theirs}").status_code == 404
    assert d.post(f"/dashboard/jobs/{theirs}/retry").status_code == 404
    assert client.state(theirs) == State.FAILED
    d.post(f"/dashboard/jobs/{mine}/retry")
    assert client.state(mine) == State.QUEUED


def test_bulk_retry_previews_then_needs_the_confirm_step(dash, client, leases, r, config):
    failed = [make_failed(client, leases, queue="mail") for _ in range(3)]
    other = make_failed(client, leases, queue="other")
    form = {"operation": "retry", "queue": "mail", "state": "failed"}
    preview = dash.post("/dashboard/bulk/preview", form)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and 'id="bulk-matched">3<' in html and 'id="bulk-confirm"' in html
    assert all(client.state(j) == State.FAILED for j in failed)
    assert dash.post("/dashboard/bulk/run", form).status_code == 428  # no confirm field: not from the preview
    assert all(client.state(j) == State.FAILED for j in failed)
    done = dash.post("/dashboard/bulk/run", {**form, "confirm": "yes"})
    assert 'id="bulk-changed">3<' in done.get_data(as_text=True)
    assert all(client.state(j) == State.QUEUED for j in failed) and client.state(other) == State.FAILED
    entries = _entries(r, config, "bulk.retry")
    assert [(e.params["dry_run"], e.counts.get("changed"), e.status) for e in entries] == [(False, 3, 200),
                                                                                           (True, 0, 200)]


def test_bulk_needs_the_admin_scope(app, client, leases, make_key):
    job_id = make_failed(client, leases)
    d = Dash(app)
    d.login(make_key("jobs:write"))
    assert "Bulk" not in d.get("/dashboard/").get_data(as_text=True)
    assert d.post("/dashboard/bulk/run", {"confirm": "yes", "state": "failed"}).status_code == 403
    assert client.state(job_id) == State.FAILED


def test_bulk_form_errors_are_shown(dash):
    resp = dash.post("/dashboard/bulk/preview", {"operation": "retry", "older_than": "soon"})
    assert resp.status_code == 422 and "number of seconds" in resp.get_data(as_text=True)


def test_schedule_run_now_disable_enable(dash, client, r, config):
    Schedules(client).create(id="nightly", function=NOOP, cron="0 3 * * *")
    dash.get("/dashboard/schedules/nightly")
    dash.post("/dashboard/schedules/nightly/run")
    html = dash.get("/dashboard/schedules/nightly").get_data(as_text=True)
    assert "nightly:manual-" in html and "enqueued" in html
    dash.post("/dashboard/schedules/nightly/disable")
    assert Schedules(client).get("nightly").enabled is False
    assert 'id="schedule-enable"' in dash.get("/dashboard/schedules/nightly").get_data(as_text=True)
    dash.post("/dashboard/schedules/nightly/enable")
    assert Schedules(client).get("nightly").enabled is True
    assert [e.params.get("enabled") for e in _entries(r, config, "schedules.patch")] == [True, False]
    assert len(_entries(r, config, "schedules.execute")) == 1


def _quarantined(client, r, config, queue: str = "default") -> str:
    """A job whose lease was lost with max_lease_losses=1: the reaper quarantines it."""
    from jobsvc.engine.keys import Keys
    from jobsvc.engine.leases import Leases
    from jobsvc.maintenance.reaper import Reaper

    cfg = config.with_(max_lease_losses=1)
    client.enqueue(NOOP, queue=queue)
    job_id = Leases(r, cfg).claim([queue], "w").job_id  # the job at the head (an earlier one may be back there)
    r.zadd(Keys(config.key_prefix).leases, {job_id: 0})  # its lease is long gone
    assert Reaper(r, cfg).run_once().quarantined == 1
    return job_id


def test_quarantine_page_lists_and_requeues(dash, client, r, config):
    job_id = _quarantined(client, r, config)
    html = dash.get("/dashboard/quarantine").get_data(as_text=True)
    assert f'data-job="{job_id}"' in html and ">Requeue<" in html and 'id="bulk-requeue-link"' in html
    dash.post(f"/dashboard/jobs/{job_id}/retry", {"next": "/dashboard/quarantine"})
    assert client.state(job_id) == State.QUEUED
    again = _quarantined(client, r, config)
    dash.post("/dashboard/bulk/preview", {"operation": "requeue_quarantined"})
    done = dash.post("/dashboard/bulk/run", {"operation": "requeue_quarantined", "confirm": "yes"})
    assert 'id="bulk-changed">1<' in done.get_data(as_text=True) and client.state(again) == State.QUEUED


def test_redis_down_is_a_503_page_and_a_503_for_live_refresh(config):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    down = redis.Redis(port=1, socket_connect_timeout=0.1, socket_timeout=0.1, retry=Retry(NoBackoff(), 0))
    d = Dash(create_app(config, down, admin_key=ADMIN_KEY))
    assert d.login(ADMIN_KEY).status_code == 303  # the admin key needs no Redis (its audit entry is lost)
    page = d.get("/dashboard/")
    assert page.status_code == 503 and "Redis is unavailable" in page.get_data(as_text=True)
    live = d.get("/dashboard/api/live/overview")
    assert live.status_code == 503 and live.get_json()["error"]["code"] == "redis_unavailable"


# -- server time ----------------------------------------------------------------------------------------


def test_pages_stay_fast(dash, client, leases):
    _fixture_data(client, leases)
    client.enqueue_many([client.job(NOOP, queue=f"q{i % 4}") for i in range(5000)])
    for path in PAGES:
        dash.get(path)  # warm: templates compiled, scripts loaded
        t = time.perf_counter()
        assert dash.get(path).status_code == 200
        assert (time.perf_counter() - t) * 1000 < 300, path


def test_handler_job_page_shows_url_without_query_http_status_and_notification(dash, client, r, leases):
    job_id = client.enqueue_handler("https://93.184.216.34/hook?sig=hidden", {"token": "t0p", "n": 1},
                                    callback_url="https://93.184.216.34/done").id
    lease = leases.claim(["default"], "w1")
    scripts.check(scripts.call(r, *leases.fail_call(lease, "HandlerHTTPError", "handler answered 503", "", False,
                                                      "w1", 0.0, 1.0, {"http_status": 503, "duration_ms": 12.5})))
    page = dash.get(f"/dashboard/jobs/{job_id}").get_data(as_text=True)
    assert "https://93.184.216.34/hook" in page and "sig=hidden" not in page
    assert "HTTP 503 in 12.5 ms" in page
    assert "t0p" not in page and MASK in page
    assert "callback URL" in page and "pending" in page


# -- query parameters, charts of limited keys, workers ----------------------------------------------------


def test_a_url_for_option_in_the_query_does_not_break_a_page(dash):
    assert dash.get("/dashboard/jobs?_method=POST").status_code == 200


def test_the_live_url_keeps_only_the_page_filters_and_cursor(dash):
    html = dash.get("/dashboard/jobs?queue=mail&_external=1&_anchor=x&_scheme=ftp&other=y").get_data(as_text=True)
    assert re.search(r'data-live="([^"]+)"', html).group(1) == "/dashboard/api/live/jobs?queue=mail"


def test_a_key_limited_to_queues_and_namespaces_sees_no_charts(app, client, leases, make_key):
    make_failed(client, leases, queue="mine", namespace="theirs")
    d = Dash(app)
    d.login(make_key("jobs:read", queues=["mine"], namespaces=["ours"]))
    overview = d.get("/dashboard/").get_data(as_text=True)
    assert "<svg" not in overview and "failure-rate" not in overview


def test_workers_page_says_when_more_leases_exist_than_it_read(dash, client, leases, monkeypatch):
    monkeypatch.setattr(defaults, "WORKERS_LEASES_MAX", 1)
    make_running(client, leases)
    make_running(client, leases)
    assert 'id="leases-truncated"' in dash.get("/dashboard/workers").get_data(as_text=True)
