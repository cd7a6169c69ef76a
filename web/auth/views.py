"""Login and logout."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import InputRequired, Length

from services.accounts.operations import authenticate
from web.access import home_url, public, safe_next
from web.limiter import client_ip, failed_attempt, limiter, login_email, login_limit
from web.login import current_staff, end_browser_session, start_browser_session
from web.request_db import commit, db_session

bp = Blueprint("auth", __name__)

# One message for every failure: it must not tell an unknown email from a wrong password.
LOGIN_FAILED = _l("That email and password do not match an active account. Check both and try again.")


class LoginForm(FlaskForm):
    """Email and password."""

    email = EmailField(
        _l("Email"),
        validators=[InputRequired(), Length(max=254)],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(login_limit, methods=["POST"], deduct_when=failed_attempt)
@limiter.limit(login_limit, key_func=login_email, methods=["POST"], deduct_when=failed_attempt)
def login() -> Response | str | tuple[str, int]:
    """Show the login form; on a good email and password open a login session and go to the role's home."""
    next_target = safe_next(request.args.get("next"))
    viewer = current_staff()
    if viewer is not None and request.method == "GET":
        return redirect(next_target or home_url(viewer.role))
    form = LoginForm()
    failed = False
    if form.validate_on_submit():
        result = authenticate(
            db_session(),
            email=form.email.data or "",
            password=form.password.data or "",
            ip=client_ip(),
            user_agent=request.user_agent.string,
        )
        if result is not None:
            end_browser_session()  # signing in as someone else ends the previous login session
            commit()  # the login session row and the audit event
            start_browser_session(result.session_token)
            return redirect(next_target or home_url(result.user.role))
        commit()  # the failed-login audit event
        failed = True
    form.password.data = ""
    status = 200 if request.method == "GET" else 401 if failed else 400
    return render_template("auth/login.html", form=form, failed=failed, message=LOGIN_FAILED, next=next_target), status


@bp.post("/logout")
@public
def logout() -> Response:
    """End the server-side login session and empty the cookie."""
    end_browser_session()
    commit()
    flash(_("You have signed out."), "success")
    return redirect(url_for("auth.login"))
