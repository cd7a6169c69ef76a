"""Login and logout, password-reset links, and every staff member's own settings (their language)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import refresh
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField, RadioField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import EqualTo, InputRequired, Length

from services.accounts.models import Role
from services.accounts.operations import (
    AccountError,
    authenticate,
    complete_password_reset,
    find_password_reset,
    request_password_reset,
    update_user,
)
from services.accounts.passwords import MIN_PASSWORD_LENGTH, WeakPasswordError
from web.access import home_url, public, safe_next, signed_in
from web.auth.messages import account_error_text
from web.i18n import browser_language
from web.limiter import client_ip, failed_attempt, limiter, login_email, login_limit, token_limited
from web.login import current_account, current_staff, end_browser_session, start_browser_session
from web.request_db import commit, db_session, rollback
from workers.enqueue import send_notification_after_commit

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


# --- forgotten passwords -----------------------------------------------------------------------------------------


class ForgotForm(FlaskForm):
    """The email of the account whose password is forgotten."""

    email = EmailField(
        _l("Email"),
        validators=[InputRequired(), Length(max=254)],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )


class NewPasswordForm(FlaskForm):
    """A new password, twice."""

    password = PasswordField(
        _l("New password"),
        validators=[InputRequired(), Length(max=1024)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[InputRequired(), EqualTo("password", message=_l("The two passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )


@bp.route("/forgot-password", methods=["GET", "POST"])
@public
@limiter.limit(login_limit, methods=["POST"])
@limiter.limit(login_limit, key_func=login_email, methods=["POST"])
def forgot_password() -> str | tuple[str, int]:
    """Ask for a reset link; the answer is the same whether or not an account has that email."""
    form = ForgotForm()
    if form.validate_on_submit():
        session = db_session()
        result = request_password_reset(session, email=form.email.data or "", ip=client_ip())
        if result.notification_id is not None:
            send_notification_after_commit(session, result.notification_id)
        commit()
        return render_template("auth/forgot_sent.html")
    status = 400 if form.errors else 200
    return render_template("auth/forgot.html", form=form), status


def _dead_link() -> tuple[str, int]:
    return render_template("auth/reset_dead.html"), 404


@bp.route("/reset/<token>", methods=["GET", "POST"])
@public
@token_limited
def reset_password(token: str) -> Response | tuple[str, int] | str:
    """Choose a new password from an emailed link (GET shows the form and never uses the link up)."""
    session = db_session()
    if find_password_reset(session, token) is None:
        return _dead_link()
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            complete_password_reset(session, raw=token, password=form.password.data or "", ip=client_ip())
        except WeakPasswordError as exc:
            rollback()
            form.password.errors = [account_error_text(exc)]
        except AccountError:
            rollback()
            return _dead_link()
        else:
            commit()
            flash(_("Your new password is set. Sign in with it."), "success")
            return redirect(url_for("auth.login"), code=303)
    form.password.data = ""
    form.confirm.data = ""
    status = 400 if form.errors else 200
    html = render_template("auth/reset.html", form=form, token=token, min_length=MIN_PASSWORD_LENGTH)
    return html, status


# --- my settings ---------------------------------------------------------------------------------------------------

BROWSER = "browser"


class LanguageForm(FlaskForm):
    """Which language the pages (and messages to me) are in."""

    language = RadioField(
        _l("Language"),
        choices=[
            SelectChoice(BROWSER, _l("The language of my browser")),
            SelectChoice("en", "English"),
            SelectChoice("es", "Español"),
        ],
        validators=[InputRequired(message=_l("Choose one of the options."))],
    )


@bp.route("/settings", methods=["GET", "POST"])
@signed_in
def settings() -> Response | tuple[str, int] | str:
    """My own settings: the language of my pages and messages (before I choose, the browser's)."""
    account = current_account()
    form = LanguageForm()
    if request.method == "GET":
        form.language.data = account.language_choice or BROWSER
    if form.validate_on_submit():
        choice = form.language.data
        try:
            update_user(
                db_session(),
                account,
                actor_id=account.id,
                ip=client_ip(),
                language=None if choice == BROWSER else choice,
            )
        except AccountError as exc:  # a forged value the radio list did not offer
            rollback()
            form.language.errors = [account_error_text(exc)]
        else:
            commit()
            refresh()  # the confirmation below is in the language just chosen
            flash(_("Saved: your language."), "success")
            return redirect(url_for("auth.settings"), code=303)
    clinical = account.role in (Role.CLINICIAN, Role.SUPERVISOR)
    status = 400 if form.errors else 200
    html = render_template(
        "auth/settings.html",
        form=form,
        account=account,
        browser_language={"en": "English", "es": "Español"}[browser_language()],
        notifications_url=url_for("clinician.settings") if clinical else None,
    )
    return html, status
