"""Read-only queries for the admin's users page (the operations page reads services.ops.queries)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import Team, TwoFactor, User


@dataclass(frozen=True)
class UserRow:
    """A staff account as the users list shows it."""

    user: User
    team_name: str | None
    two_step: bool = False  # a confirmed authenticator


def list_users(session: Session) -> list[UserRow]:
    """Every staff account with its team and whether it signs in in two steps, active first, by name."""
    rows = session.execute(
        select(User, Team.name, TwoFactor.confirmed_at)
        .outerjoin(Team, Team.id == User.team_id)
        .outerjoin(TwoFactor, TwoFactor.user_id == User.id)
        .order_by(User.active.desc(), User.name)
    )
    return [
        UserRow(user=user, team_name=team_name, two_step=confirmed is not None) for user, team_name, confirmed in rows
    ]


def team_names(session: Session) -> list[str]:
    """Names of existing teams (suggestions for the create-user form)."""
    return list(session.scalars(select(Team.name).order_by(Team.name)))


def get_user_row(session: Session, user_id: int) -> UserRow | None:
    """One staff account with its team, or None."""
    row = session.execute(select(User, Team.name).outerjoin(Team, Team.id == User.team_id).where(User.id == user_id))
    found = row.first()
    return UserRow(user=found[0], team_name=found[1]) if found is not None else None
