"""The API refuses to start without an admin key, unless it is a local dev run."""
import pytest

from admin_api import MissingAdminKey, create_app


def test_refuses_to_start_without_a_key(r, config, monkeypatch):
    monkeypatch.delenv("ADMIN_API_KEY", raising=False)
    monkeypatch.delenv("JOBSVC_DEV", raising=False)
    with pytest.raises(MissingAdminKey, match="ADMIN_API_KEY"):
        create_app(config, r)


def test_refuses_an_empty_key(r, config, monkeypatch):
    monkeypatch.setenv("ADMIN_API_KEY", "")
    monkeypatch.delenv("JOBSVC_DEV", raising=False)
    with pytest.raises(MissingAdminKey):
        create_app(config, r)


def test_takes_the_key_from_the_environment(r, config, monkeypatch):
    monkeypatch.setenv("ADMIN_API_KEY", "from-the-environment-0123456789")
    http = create_app(config, r).test_client()
    assert http.get("/api/v1/jobs", headers={"X-Admin-Key": "from-the-environment-0123456789"}).status_code == 200
    assert http.get("/api/v1/jobs").status_code == 401


def test_dev_run_from_the_environment_needs_no_key(r, config, monkeypatch):
    monkeypatch.delenv("ADMIN_API_KEY", raising=False)
    monkeypatch.setenv("JOBSVC_DEV", "1")
    assert create_app(config, r).test_client().get("/api/v1/jobs").status_code == 200


def test_dev_run_still_rejects_a_wrong_key(r, config, monkeypatch):
    monkeypatch.delenv("ADMIN_API_KEY", raising=False)
    http = create_app(config, r, dev=True).test_client()
    assert http.get("/api/v1/jobs", headers={"X-Admin-Key": "wrong"}).status_code == 401


def test_dev_run_with_a_key_still_requires_it(r, config):
    http = create_app(config, r, admin_key="a-key-for-dev-0123456789", dev=True).test_client()
    assert http.get("/api/v1/jobs").status_code == 401
