"""Account reads."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import ApiToken, Role, User


def get_user_by_email(session: Session, email: str) -> User | None:
    """The user with this email, if any."""
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def supervisor_for(session: Session, clinician: User) -> User | None:
    """The clinician's supervisor: an active supervisor of the same team, else any active supervisor."""
    if clinician.team_id is not None:
        same_team = session.scalar(
            select(User)
            .where(User.role == Role.SUPERVISOR, User.team_id == clinician.team_id, User.active.is_(True))
            .order_by(User.id)
        )
        if same_team is not None:
            return same_team
    return session.scalar(select(User).where(User.role == Role.SUPERVISOR, User.active.is_(True)).order_by(User.id))


def on_call_users(session: Session) -> list[User]:
    """Staff on the practice's on-call list."""
    return list(session.scalars(select(User).where(User.on_call.is_(True), User.active.is_(True))))


def list_api_tokens(session: Session) -> list[tuple[ApiToken, User]]:
    """Every API token with its owner: live ones first (newest first), then expired and revoked ones."""
    rows = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return [(token, owner) for token, owner in rows]
