"""Two-step sign-in pages: the code after the password, recovery codes, and enrolment on one's own settings.

After a right password an enrolled person's browser holds only a pending sign-in (web.auth.pending), which reaches
no staff page; /login/code (or /login/recovery) turns it into a login session. Both are rate-limited like the
password step: per address (settings.login_rate_limit) and per account (web.auth.throttle, an owner at their
usual address excepted). With the practice setting two_factor_required on, ``enforce_enrolment`` sends a signed-in
person without an authenticator to /settings/two-step from every page until they have one.
"""

from __future__ import annotations

from flask import Flask, current_app, flash, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from services.accounts.operations import AccountError
from services.accounts.two_factor import (
    confirm_enrolment,
    is_known_address,
    must_enrol,
    pending_secret,
    provisioning_uri,
    recovery_codes_left,
    replace_recovery_codes,
    required_for,
    start_enrolment,
    two_factor_row,
    use_recovery_code,
    verify_code,
)
from services.audit.operations import record_event
from web.access import policy_for, public, signed_in
from web.app import current_settings
from web.auth import throttle
from web.auth.messages import account_error_text
from web.auth.pending import ENROL_FIRST_KEY, PENDING_SECONDS, clear_pending, had_pending, pending_sign_in
from web.auth.views import CodeForm, RecoveryForm, bp, finish_sign_in, wait_text
from web.limiter import client_ip, failed_attempt, limiter, login_limit
from web.login import current_account, current_staff
from web.qr import qr_svg
from web.request_db import commit, db_session, rollback


def _second_step(*, recovery: bool) -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    session = db_session()
    pending = pending_sign_in(session)
    if pending is None:
        if had_pending():
            clear_pending()
            flash(_("The sign-in waited too long for its code. Sign in again."), "info")
        return redirect(url_for("auth.login"))
    form: CodeForm | RecoveryForm = RecoveryForm() if recovery else CodeForm()
    template = "auth/login_recovery.html" if recovery else "auth/login_code.html"
    user = pending.user
    failed = False
    if form.validate_on_submit():
        ip = client_ip()
        secret_key = current_settings().secret_key
        subject = throttle.code_subject(user.id)
        wait = throttle.wait_seconds(subject)
        if wait and not is_known_address(session, user.id, ip, secret_key=secret_key):
            html = render_template(template, form=form, failed=False, slowed=wait_text(wait))
            return html, 429, {"Retry-After": str(wait)}
        code = form.code.data or ""
        if recovery:
            accepted = use_recovery_code(session, user, code, secret_key=secret_key, ip=ip)
        else:
            accepted = verify_code(session, user, code, secret_key=secret_key)
        if accepted:
            return finish_sign_in(user, method="recovery_code" if recovery else "totp", next_target=pending.next_target)
        record_event(
            session,
            action="second_factor_failed",
            actor_id=user.id,
            actor_label=user.email,
            ip=ip,
            detail={"method": "recovery_code" if recovery else "totp"},
        )
        commit()
        throttle.record_failure(subject)
        failed = True
    form.code.data = ""
    status = 200 if request.method == "GET" else 401 if failed else 400
    html = render_template(template, form=form, failed=failed, slowed=None, minutes=PENDING_SECONDS // 60)
    return html, status


@bp.route("/login/code", methods=["GET", "POST"])
@public
@limiter.limit(login_limit, methods=["POST"], deduct_when=failed_attempt)
def login_code() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """The second step of signing in: the code from the authenticator (only after a right password)."""
    return _second_step(recovery=False)


@bp.route("/login/recovery", methods=["GET", "POST"])
@public
@limiter.limit(login_limit, methods=["POST"], deduct_when=failed_attempt)
def login_recovery() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """The second step with a single-use recovery code instead of the authenticator."""
    return _second_step(recovery=True)


# --- my two-step sign-in ---------------------------------------------------------------------------------------


def _grouped(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _setup_page(form: CodeForm | None = None, status: int = 200) -> tuple[str, int]:
    session = db_session()
    account = current_account()
    settings = current_settings()
    row = two_factor_row(session, account.id)
    secret = pending_secret(session, account, secret_key=settings.secret_key)
    qr = None
    if secret is not None:
        uri = provisioning_uri(secret, email=account.email, issuer=settings.practice_name)
        qr = qr_svg(uri, title=_("QR code to add Rapport to your authenticator app"))
    html = render_template(
        "auth/two_factor.html",
        account=account,
        row=row,
        enrolled=row is not None and row.confirmed_at is not None,
        secret=_grouped(secret) if secret else None,
        qr=qr,
        form=form or CodeForm(),
        required=required_for(session, account.role),
        codes_left=recovery_codes_left(session, account.id),
    )
    return html, status


@bp.get("/settings/two-step")
@signed_in
def two_factor() -> tuple[str, int]:
    """My two-step sign-in: on, being set up (QR code, secret, confirm with a code) or off."""
    return _setup_page()


@bp.post("/settings/two-step/start")
@signed_in
def two_factor_start() -> Response | tuple[str, int]:
    """Make a new authenticator secret (pending until confirmed with a code)."""
    try:
        start_enrolment(db_session(), current_account(), secret_key=current_settings().secret_key)
    except AccountError as exc:
        rollback()
        flash(account_error_text(exc), "error")
    else:
        commit()
    return redirect(url_for("auth.two_factor"), code=303)


def _codes_page(codes: list[str]) -> str:
    return render_template("auth/recovery_codes.html", codes=codes, home=url_for("index"))


@bp.post("/settings/two-step/confirm")
@signed_in
@limiter.limit(login_limit, methods=["POST"], deduct_when=lambda response: response.status_code != 200)
def two_factor_confirm() -> tuple[str, int] | str:
    """Turn two-step sign-in on once a code from the app matches; show the recovery codes, once."""
    form = CodeForm()
    if not form.validate_on_submit():
        return _setup_page(form, 400)
    try:
        enrolment = confirm_enrolment(
            db_session(),
            current_account(),
            form.code.data or "",
            secret_key=current_settings().secret_key,
            ip=client_ip(),
        )
    except AccountError as exc:
        commit()  # nothing changed but a refused code's time step, which is worth keeping
        form.code.errors = [account_error_text(exc)]
        form.code.data = ""
        return _setup_page(form, 400)
    commit()
    flask_session.pop(ENROL_FIRST_KEY, None)
    return _codes_page(enrolment.recovery_codes)


@bp.post("/settings/two-step/recovery-codes")
@signed_in
def two_factor_recovery_codes() -> Response | str:
    """Ten new recovery codes (the old ones stop working), shown once."""
    try:
        codes = replace_recovery_codes(
            db_session(), current_account(), secret_key=current_settings().secret_key, ip=client_ip()
        )
    except AccountError as exc:
        rollback()
        flash(account_error_text(exc), "error")
        return redirect(url_for("auth.two_factor"), code=303)
    commit()
    return _codes_page(codes)


# --- the practice's rule -----------------------------------------------------------------------------------------

# What a person who must still enrol may open: the enrolment itself, their language, signing out.
ENROLMENT_ENDPOINTS = frozenset(
    {"auth.two_factor", "auth.two_factor_start", "auth.two_factor_confirm", "auth.settings", "auth.logout"}
)


def enforce_enrolment() -> Response | None:
    """before_request: a person who signed in while the practice required a second factor they lack enrols first.

    The sign-in (web.auth.views.finish_sign_in) marks such a login session in its cookie, so every other request
    costs nothing here; a session already open when the setting was turned on carries on until its next sign-in
    (at most settings.session_absolute_hours).
    """
    if not flask_session.get(ENROL_FIRST_KEY):
        return None
    endpoint = request.endpoint
    if endpoint is None or endpoint in ENROLMENT_ENDPOINTS or request.blueprint == "api":
        return None
    policy = policy_for(current_app, endpoint)
    if policy is None or policy.public:
        return None
    viewer = current_staff()
    if viewer is None or viewer.via != "session":
        return None
    if not must_enrol(db_session(), viewer.account):
        flask_session.pop(ENROL_FIRST_KEY, None)  # enrolled (or no longer required): the hold is over
        return None
    location = url_for("auth.two_factor")
    if request.headers.get("HX-Request"):
        return Response(status=401, headers={"HX-Redirect": location})
    flash(_("Your practice asks everyone to use two-step sign-in. Set it up to continue."), "info")
    return redirect(location, code=303)


def init_app(app: Flask) -> None:
    """Install the enrolment rule (after the access check, which has already refused the anonymous)."""
    app.before_request(enforce_enrolment)
