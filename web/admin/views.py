"""Admin: staff accounts and the state of background work."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from services.accounts.models import Role
from services.accounts.operations import AccountError, create_user
from services.accounts.passwords import WeakPasswordError
from services.audit.operations import record_event
from services.notifications.operations import queue_notification
from services.ops.queries import operations_view
from web.access import allow
from web.admin.forms import CreateUserForm
from web.admin.queries import list_users, team_names
from web.app import current_settings
from web.i18n import translate
from web.limiter import client_ip
from web.login import current_account
from web.request_db import commit, db_session
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
            form.password.errors = [translate(exc)]
        except AccountError as exc:
            form.email.errors = [translate(exc)]
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
    return render_template("admin/create_user.html", form=form, team_names=team_names(session)), status


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
    )


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
