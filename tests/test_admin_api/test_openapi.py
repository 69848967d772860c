"""The OpenAPI document: valid OpenAPI 3, generated from the routes, and a docs page."""
import re

from openapi_spec_validator import validate

from admin_api.api import operation_of


def _doc(api):
    resp = api.as_key(None).http.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def test_document_is_valid_openapi_3(api):
    doc = _doc(api)
    assert doc["openapi"].startswith("3.")
    validate(doc)


def test_every_route_of_the_app_is_documented(app, api):
    doc = _doc(api)
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    for rule in app.url_map.iter_rules():
        op = operation_of(app.view_functions[rule.endpoint])
        if op is None:
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in documented


def test_request_bodies_reject_unknown_fields_in_the_schema(api):
    schemas = _doc(api)["components"]["schemas"]
    assert schemas["JobCreate"]["additionalProperties"] is False
    assert {"function", "handler"} <= set(schemas["JobCreate"]["properties"])  # one of them, checked by the schema


def test_authenticated_operations_declare_security_and_errors(api):
    for path, ops in _doc(api)["paths"].items():
        for method, op in ops.items():
            if op["security"]:
                assert {"401", "403", "503"} <= set(op["responses"]), (method, path)
                assert op["x-scope"] in ("jobs:read", "jobs:write", "jobs:admin")


def test_both_auth_schemes_are_declared(api):
    schemes = _doc(api)["components"]["securitySchemes"]
    assert schemes["AdminKey"] == {"type": "apiKey", "in": "header", "name": "X-Admin-Key"}
    assert schemes["Bearer"] == {"type": "http", "scheme": "bearer"}


def test_docs_page_is_public_html(api):
    resp = api.as_key(None).http.get("/api/v1/docs")
    assert resp.status_code == 200
    assert resp.content_type.startswith("text/html")
    page = resp.get_data(as_text=True)
    assert "/api/v1/openapi.json" in page and "/api/v1/jobs/{job_id}/terminate" in page


def test_docs_page_loads_nothing_from_another_host(api):
    resp = api.as_key(None).http.get("/api/v1/docs", base_url="http://api.example:8000")
    page = resp.get_data(as_text=True)
    # Any absolute URL, or a scheme-relative one, would name another host than the API's own.
    assert not re.findall(r"(?:https?:)?//[^\s\"'<>]+", page.replace("http://api.example:8000", ""))
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', page)
    assert {a.rsplit("/", 1)[1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css", "docs.js"}
    for asset in assets:
        got = api.as_key(None).http.get(asset)
        assert got.status_code == 200, asset
        assert got.content_length > 0 or got.get_data(), asset


def test_docs_page_has_a_restrictive_csp(api):
    resp = api.as_key(None).http.get("/api/v1/docs")
    csp = dict(part.strip().split(" ", 1) for part in resp.headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["connect-src"] == "'self'"
    assert "unsafe" not in resp.headers["Content-Security-Policy"]
    assert "<script>" not in resp.get_data(as_text=True)  # no inline script: the CSP would block it


def test_docs_assets_serve_only_the_files_the_page_needs(api):
    http = api.as_key(None).http
    assert "javascript" in http.get("/api/v1/docs/assets/swagger-ui-bundle.js").content_type
    for name in ("index.html", "swagger-ui.js.map", "..%2F__init__.py"):
        assert http.get(f"/api/v1/docs/assets/{name}").status_code == 404
