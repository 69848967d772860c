"""Sign-in and sign-out. The key is checked exactly as the API checks X-Admin-Key; it is never stored, logged
or echoed back (a failed sign-in re-renders an empty form)."""
from __future__ import annotations

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response  # what redirect() makes (flask's Response derives from it)

from ..auth import dev_without_key
from . import session as sess
from .actions import record
from .blueprint import bp, safe_next


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    target = safe_next(request.values.get("next"), url_for("dashboard.overview"))
    if request.method == "GET":
        if sess.current() is not None:
            return redirect(target)
        sess.csrf_token()  # the form's token lives in the (not yet signed-in) session
        return render_template("dashboard/login.html", next=target, dev=dev_without_key(), error=None)
    who = sess.sign_in(request.form.get("key", ""))
    if who is None:
        return render_template("dashboard/login.html", next=target, dev=dev_without_key(),
                               error="That key is not valid (or was revoked)."), 401
    record(who, "dashboard.sign_in", {}, {}, 200)
    return redirect(target, code=303)


@bp.post("/logout")
def logout() -> Response:
    who = sess.current()
    if who is not None:
        record(who, "dashboard.sign_out", {}, {}, 200)
    sess.sign_out()
    return redirect(url_for("dashboard.login"), code=303)
