"""The operator dashboard, served by the admin API at /dashboard: server-rendered pages (Jinja) over the core,
a little vanilla JavaScript for live refresh, charts drawn as inline SVG; no build step, nothing from a CDN.
Sign-in with an API key, a session cookie, CSRF tokens on every action. docs/dashboard.md describes it."""
from __future__ import annotations

from . import actions, pages, signin  # noqa: F401 - each adds its routes to bp
from .blueprint import bp, register

__all__ = ["bp", "register"]
