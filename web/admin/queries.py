"""Read-only queries for the admin pages (candidates for services/ops/queries.py once that module exists)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.accounts.models import Team, User
from services.notifications.models import Notification
from services.ops.models import Heartbeat
from services.reporting.models import Report
from services.surveys.models import Administration


@dataclass(frozen=True)
class UserRow:
    """A staff account as the users list shows it."""

    user: User
    team_name: str | None


def list_users(session: Session) -> list[UserRow]:
    """Every staff account with its team, active first, by name."""
    rows = session.execute(
        select(User, Team.name).outerjoin(Team, Team.id == User.team_id).order_by(User.active.desc(), User.name)
    )
    return [UserRow(user=user, team_name=team_name) for user, team_name in rows]


def team_names(session: Session) -> list[str]:
    """Names of existing teams (suggestions for the create-user form)."""
    return list(session.scalars(select(Team.name).order_by(Team.name)))


@dataclass(frozen=True)
class OperationsStatus:
    """What is waiting on the workers, and when they last said they were alive."""

    pending_notifications: int
    failed_notifications: int
    unevaluated_administrations: int
    failed_evaluations: int
    pending_reports: int
    heartbeats: list[Heartbeat]


def operations_status(session: Session) -> OperationsStatus:
    """Counts of outbox, evaluation and report work still to do, and worker heartbeats."""
    by_status: dict[str, int] = {
        status: count
        for status, count in session.execute(
            select(Notification.status, func.count())
            .where(Notification.status.in_(["pending", "sending", "failed"]))
            .group_by(Notification.status)
        )
    }
    unevaluated = session.scalar(
        select(func.count())
        .select_from(Administration)
        .where(Administration.evaluated_at.is_(None), Administration.eval_failed_at.is_(None))
    )
    failed_evaluations = session.scalar(
        select(func.count()).select_from(Administration).where(Administration.eval_failed_at.is_not(None))
    )
    pending_reports = session.scalar(
        select(func.count()).select_from(Report).where(Report.status.in_(["pending", "running"]))
    )
    return OperationsStatus(
        pending_notifications=by_status.get("pending", 0) + by_status.get("sending", 0),
        failed_notifications=by_status.get("failed", 0),
        unevaluated_administrations=unevaluated or 0,
        failed_evaluations=failed_evaluations or 0,
        pending_reports=pending_reports or 0,
        heartbeats=list(session.scalars(select(Heartbeat).order_by(Heartbeat.role, Heartbeat.name))),
    )
