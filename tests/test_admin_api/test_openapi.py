"""The OpenAPI document: valid OpenAPI 3, generated from the routes, and a docs page."""
from openapi_spec_validator import validate

from admin_api.api import Operation


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
        op = getattr(app.view_functions[rule.endpoint], "_api_op", None)
        if not isinstance(op, Operation):
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
