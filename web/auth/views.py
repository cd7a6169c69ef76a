"""Login and logout, password-reset links, and every staff member's own settings (their language).

The two-step pages (the code after the password, enrolment on one's settings) are in web.auth.two_factor, the
per-account slowing of sign-in attempts in web.auth.throttle.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_babel import format_timedelta, refresh
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import EqualTo, InputRequired, Length, Optional

from services.accounts.models import Role, User
from services.accounts.operations import (
    AccountError,
    check_password,
    complete_password_reset,
    find_password_reset,
    open_login_session,
    request_password_reset,
    update_user,
)
from services.accounts.passwords import MIN_PASSWORD_LENGTH, WeakPasswordError
from services.accounts.queries import get_user_by_email
from services.accounts.two_factor import is_enrolled, is_known_address, must_enrol, remember_address, verify_code
from services.audit.operations import record_event
from web.access import home_url, public, safe_next, signed_in
from web.app import current_settings
from web.auth import throttle
from web.auth.messages import account_error_text
from web.auth.pending import ENROL_FIRST_KEY, start_pending
from web.i18n import browser_language
from web.limiter import client_ip, failed_attempt, limiter, login_email, login_limit, token_limited
from web.login import current_account, current_staff, end_browser_session, start_browser_session
from web.request_db import commit, db_session, rollback
from workers.enqueue import send_notification_after_commit

bp = Blueprint("auth", __name__)

# One message for every failure: it must not tell an unknown email from a wrong password.
LOGIN_FAILED = _l("That email and password do not match an active account. Check both and try again.")
# A code field as phones and password managers expect it: digits keypad, offered from the SMS/app autofill.
CODE_FIELD_ATTRIBUTES = {
    "autocomplete": "one-time-code",
    "inputmode": "numeric",
    "pattern": "[0-9 ]*",
    "maxlength": "12",
    "autocapitalize": "none",
    "spellcheck": "false",
}


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
    # Asked only while the account's sign-ins are being slowed (web.auth.throttle): password and code together.
    code = StringField(
        _l("Code from your authenticator app"),
        validators=[Optional(), Length(max=12)],
        render_kw=CODE_FIELD_ATTRIBUTES,
    )


class CodeForm(FlaskForm):
    """The 6-digit code from the authenticator app."""

    code = StringField(
        _l("6-digit code"),
        validators=[InputRequired(), Length(max=12)],
        render_kw=CODE_FIELD_ATTRIBUTES,
    )


class RecoveryForm(FlaskForm):
    """One of the recovery codes shown when two-step sign-in was set up."""

    code = StringField(
        _l("Recovery code"),
        validators=[InputRequired(), Length(max=40)],
        render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
    )


def finish_sign_in(user: User, *, method: str, next_target: str | None) -> Response:
    """Open the login session (audited with how), remember the address, forget the failures, go home."""
    session = db_session()
    ip = client_ip()
    end_browser_session()  # signing in as someone else ends the previous login session
    result = open_login_session(session, user, ip=ip, user_agent=request.user_agent.string, method=method)
    remember_address(session, user.id, ip, secret_key=current_settings().secret_key)
    commit()  # the login session row, the known address and the audit event
    throttle.record_success(throttle.password_subject(user.email))
    throttle.record_success(throttle.code_subject(user.id))
    start_browser_session(result.session_token)
    if must_enrol(session, user):
        flask_session[ENROL_FIRST_KEY] = True  # web.auth.two_factor holds every page until they have enrolled
        return redirect(url_for("auth.two_factor"), code=303)
    return redirect(next_target or home_url(user.role))


def usual_address(email: str, ip: str) -> bool:
    """True when the account this email names signed in successfully from ip before."""
    session = db_session()
    user = get_user_by_email(session, email)
    return user is not None and is_known_address(session, user.id, ip, secret_key=current_settings().secret_key)


def wait_text(seconds: int) -> str:
    """A wait as people say it, in the page's language ("2 seconds", "15 minutes")."""
    return str(format_timedelta(timedelta(seconds=seconds), granularity="second", threshold=1.5))


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(login_limit, methods=["POST"], deduct_when=failed_attempt)
def login() -> Response | str | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Show the login form; on a good email and password sign in (or ask for the code) and go to the role's home.

    Per address, settings.login_rate_limit counts failures. Per account, web.auth.throttle slows attempts after a
    few failures; while it does, the owner still gets in from an address they used before, or by giving their
    authenticator's code together with the password (the answer never says which of the two was wrong).
    """
    next_target = safe_next(request.args.get("next"))
    viewer = current_staff()
    if viewer is not None and request.method == "GET":
        return redirect(next_target or home_url(viewer.role))
    form = LoginForm()
    failed = False
    slowed = 0
    if form.validate_on_submit():
        session = db_session()
        email, password, ip = form.email.data or "", form.password.data or "", client_ip()
        subject = throttle.password_subject(email)
        wait = throttle.wait_seconds(subject)
        if wait and not usual_address(email, ip):
            code = (form.code.data or "").strip()
            if not code:
                form.password.data = ""
                html = render_template(
                    "auth/login.html", form=form, failed=False, slowed=wait_text(wait), next=next_target
                )
                return html, 429, {"Retry-After": str(wait)}
            user = check_password(session, email=email, password=password, ip=ip)
            if user is not None and verify_code(session, user, code, secret_key=current_settings().secret_key):
                return finish_sign_in(user, method="totp", next_target=next_target)
            if user is not None:
                record_event(session, action="second_factor_failed", actor_id=user.id, actor_label=user.email, ip=ip)
            commit()  # the failed-login audit event
            slowed = throttle.record_failure(subject) or throttle.wait_seconds(subject)
            failed = True
        else:
            user = check_password(session, email=email, password=password, ip=ip)
            if user is None:
                commit()  # the failed-login audit event
                throttle.record_failure(subject)
                failed = True
            elif is_enrolled(session, user.id):
                end_browser_session()  # a previous sign-in in this browser ends; the code decides the next
                commit()
                start_pending(user, next_target)
                return redirect(url_for("auth.login_code"), code=303)
            else:
                return finish_sign_in(user, method="password", next_target=next_target)
    form.password.data = ""
    form.code.data = ""
    status = 200 if request.method == "GET" else 401 if failed else 400
    html = render_template(
        "auth/login.html",
        form=form,
        failed=failed,
        message=LOGIN_FAILED,
        slowed=wait_text(slowed) if slowed else None,
        next=next_target,
    )
    return html, status


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
        two_factor_on=is_enrolled(db_session(), account.id),
    )
    return html, status
