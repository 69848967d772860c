"""OPTIONS and a 405's Allow header name the methods of the path's own route, not those of every route
pattern the path happens to fit (/api/v1/jobs/claim fits /api/v1/jobs/<job_id> too)."""
import re

import pytest

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _own(app):
    """Each route pattern with the methods of all its rules (/jobs/<job_id> has three views)."""
    out: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        out.setdefault(rule.rule, set()).update(rule.methods or ())
    return out


def _sample(pattern):
    return re.sub(r"<[^>]+>", "sample-value", pattern)


def test_options_allow_equals_the_methods_of_every_route(app):
    http = app.test_client()
    wrong = {}
    for pattern, methods in sorted(_own(app).items()):
        resp = http.open(_sample(pattern), method="OPTIONS")
        allowed = {m.strip() for m in resp.headers.get("Allow", "").split(",") if m.strip()}
        if resp.status_code != 200 or allowed != methods:
            wrong[pattern] = (resp.status_code, sorted(allowed), sorted(methods))
    assert not wrong


def test_a_405_allow_header_names_the_paths_own_methods(app):
    http = app.test_client()
    for pattern, methods in sorted(_own(app).items()):
        other = next(m for m in METHODS if m not in methods)
        resp = http.open(_sample(pattern), method=other)
        if resp.status_code == 405:  # PATCH /jobs/claim still reaches /jobs/<job_id>: that route's answer
            assert {m.strip() for m in resp.headers["Allow"].split(",")} == methods, pattern


@pytest.mark.parametrize("path", ["/api/v1/jobs/claim", "/api/v1/jobs/prune", "/api/v1/jobs/stats"])
def test_static_job_paths_do_not_offer_the_methods_of_a_job(api, path):
    allowed = api.http.open(path, method="OPTIONS").headers["Allow"]
    assert "PATCH" not in allowed and "DELETE" not in allowed
