"""Admin: staff accounts and the state of background work."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from services.accounts.models import Role, User
from services.accounts.operations import (
    AccountError,
    ResetOutcome,
    create_user,
    deactivate_user,
    reactivate_user,
    request_password_reset,
    update_user,
)
from services.accounts.passwords import MIN_PASSWORD_LENGTH, WeakPasswordError
from services.accounts.two_factor import recovery_codes_left, reset_two_factor, two_factor_row
from services.audit.operations import record_event
from services.notifications.operations import queue_notification
from services.notifications.queries import count_sent_at_least_once, list_outbox
from services.ops.queries import operations_view
from web.access import allow
from web.admin.forms import CreateUserForm, EditUserForm
from web.admin.queries import get_user_row, list_users, team_names
from web.app import current_settings
from web.auth.messages import account_error_text
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session, rollback
from workers.enqueue import send_notification_after_commit
from workers.schedule import scheduled_jobs
from workers.tasks.ops import queue_depth

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@allow(Role.ADMIN)
def home() -> str:
    """Every staff account."""
    return render_template("admin/home.html", users=list_users(db_session()))


@bp.route("/users/new", methods=["GET", "POST"])
@allow(Role.ADMIN)
def new_user() -> Response | tuple[str, int]:
    """Create a staff account with a role and, optionally, a team."""
    session = db_session()
    form = CreateUserForm()
    if form.validate_on_submit():
        try:
            created = create_user(
                session,
                email=form.email.data or "",
                password=form.password.data or "",
                role=form.role.data or "",
                name=form.name.data,
                team=form.team.data or None,
            )
        except WeakPasswordError as exc:
            form.password.errors = [account_error_text(exc)]
        except AccountError as exc:
            form.email.errors = [account_error_text(exc)]
        else:
            admin = current_account()
            record_event(
                session,
                action="user_created",
                actor_id=admin.id,
                subject_type="user",
                subject_id=created.id,
                ip=client_ip(),
                detail={"role": created.role},
            )
            commit()
            flash(_("Account created for %(email)s.", email=created.email), "success")
            return redirect(url_for("admin.home"))
    form.password.data = ""
    form.confirm.data = ""
    status = 400 if form.errors else 200
    html = render_template(
        "admin/create_user.html", form=form, team_names=team_names(session), min_length=MIN_PASSWORD_LENGTH
    )
    return html, status


# Which form field an account error belongs to.
ERROR_FIELDS = {"bad_name": "name", "bad_role": "role", "last_admin": "role", "bad_team": "team"}


def _user_or_404(user_id: int) -> User:
    user = db_session().get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@allow(Role.ADMIN)
def edit_user(user_id: int) -> Response | tuple[str, int]:
    """Change a staff account's name, role, team or language; deactivate, reactivate, send a reset link."""
    session = db_session()
    found = get_user_row(session, user_id)
    if found is None:
        abort(404)
    user = found.user
    form = EditUserForm(obj=None if request.method == "POST" else user)
    form.set_teams(team_names(session))
    if request.method == "GET":
        form.team.data = found.team_name or ""
        form.language.data = user.language_choice or ""
    if form.validate_on_submit():
        try:
            changes = update_user(
                session,
                user,
                actor_id=current_account().id,
                ip=client_ip(),
                name=form.name.data or "",
                role=form.role.data or "",
                team=form.team.data or None,
                language=form.language.data or None,
            )
        except AccountError as exc:
            rollback()
            getattr(form, ERROR_FIELDS.get(exc.code, "name")).errors = [account_error_text(exc)]
        else:
            commit()
            if changes:
                flash(_("Saved the changes to %(name)s's account.", name=user.name), "success")
            else:
                flash(_("Nothing was changed."), "info")
            return redirect(url_for("admin.edit_user", user_id=user.id), code=303)
    status = 400 if form.errors else 200
    second_factor = two_factor_row(session, user.id)
    html = render_template(
        "admin/edit_user.html",
        form=form,
        user=user,
        is_self=user.id == current_account().id,
        second_factor=second_factor,
        codes_left=recovery_codes_left(session, user.id),
    )
    return html, status


@bp.post("/users/<int:user_id>/deactivate")
@allow(Role.ADMIN)
def deactivate(user_id: int) -> Response:
    """Deactivate an account; its open sessions end at their next request."""
    user = _user_or_404(user_id)
    try:
        changed = deactivate_user(db_session(), user, actor_id=current_account().id, ip=client_ip())
    except AccountError as exc:
        rollback()
        flash(account_error_text(exc), "error")
    else:
        commit()
        if changed:
            flash(_("%(name)s's account is deactivated and signed out everywhere.", name=user.name), "success")
    return redirect(url_for("admin.edit_user", user_id=user_id), code=303)


@bp.post("/users/<int:user_id>/reactivate")
@allow(Role.ADMIN)
def reactivate(user_id: int) -> Response:
    """Let a deactivated account sign in again."""
    user = _user_or_404(user_id)
    if reactivate_user(db_session(), user, actor_id=current_account().id, ip=client_ip()):
        commit()
        flash(_("%(name)s's account is active again.", name=user.name), "success")
    return redirect(url_for("admin.edit_user", user_id=user_id), code=303)


@bp.post("/users/<int:user_id>/reset-password")
@allow(Role.ADMIN)
def send_reset_link(user_id: int) -> Response:
    """Email the person a link to choose a new password (the admin never sees or sets it)."""
    user = _user_or_404(user_id)
    session = db_session()
    if not user.active:
        flash(_("Reactivate the account first: a deactivated account gets no reset link."), "error")
        return redirect(url_for("admin.edit_user", user_id=user_id), code=303)
    result = request_password_reset(session, email=user.email, ip=client_ip(), requested_by_id=current_account().id)
    if result.notification_id is not None:
        send_notification_after_commit(session, result.notification_id)
    commit()
    if result.outcome is ResetOutcome.QUEUED:
        flash(
            _(
                "A link to choose a new password is on its way to %(email)s. It works once, for an hour.",
                email=user.email,
            ),
            "success",
        )
    else:
        flash(
            _(
                "%(email)s was sent several links in the last hour. Wait a while before sending another.",
                email=user.email,
            ),
            "error",
        )
    return redirect(url_for("admin.edit_user", user_id=user_id), code=303)


@bp.post("/users/<int:user_id>/two-step/reset")
@allow(Role.ADMIN)
def reset_second_factor(user_id: int) -> Response:
    """Remove a person's authenticator and recovery codes (a lost phone) and sign them out; audited."""
    user = _user_or_404(user_id)
    if reset_two_factor(db_session(), user, actor_id=current_account().id, ip=client_ip()):
        commit()
        flash(
            _(
                "Two-step sign-in is reset for %(name)s: they sign in with their password and set it up again.",
                name=user.name,
            ),
            "success",
        )
    else:
        flash(_("%(name)s has no two-step sign-in to reset.", name=user.name), "info")
    return redirect(url_for("admin.edit_user", user_id=user_id), code=303)


@bp.get("/operations")
@allow(Role.ADMIN)
def operations() -> str:
    """The broker's queue, work waiting and since when, the scheduler's runs, heartbeats, failures, a test email."""
    settings = current_settings()
    view = operations_view(db_session(), jobs=scheduled_jobs(settings))
    return render_template(
        "admin/operations.html",
        view=view,
        pending={item.kind: item for item in view.pending},
        queue=queue_depth(settings),
        smtp_configured=settings.smtp_host is not None,
        outbox_dir=str(settings.outbox_dir),
        sent_at_least_once=count_sent_at_least_once(db_session()),
    )


@bp.get("/outbox")
@allow(Role.ADMIN)
def outbox() -> str:
    """Every message of the outbox, newest first: status, attempts, and "sent at least once" where nobody can know.

    Shows no client address or content (none is stored), so there is nothing of a client's to audit here.
    """
    page = request.args.get("page", 1, type=int) or 1
    return render_template("admin/outbox.html", messages=list_outbox(db_session(), page=max(1, min(page, 100_000))))


@bp.post("/operations/test-email")
@allow(Role.ADMIN)
def send_test_email() -> Response:
    """Queue a test email to the signed-in admin; the worker sends it after this commits."""
    admin = current_account()
    session = db_session()
    notification = queue_notification(
        session,
        channel="email",
        template="test_message",
        to_address=admin.email,
        recipient_user_id=admin.id,
        context={},
    )
    record_event(
        session,
        action="test_email_queued",
        actor_id=admin.id,
        subject_type="notification",
        subject_id=notification.id,
        ip=client_ip(),
    )
    send_notification_after_commit(session, notification.id)
    commit()
    flash(
        _("A test email to %(email)s is queued. It stays pending until a worker sends it.", email=admin.email),
        "success",
    )
    return redirect(url_for("admin.operations"))
