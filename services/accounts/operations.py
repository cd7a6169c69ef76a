"""Account verbs: create users and teams, log in and out, API tokens. They flush; the caller commits."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.accounts.models import ApiToken, LoginSession, Role, Team, User
from services.accounts.passwords import (
    DUMMY_HASH,
    check_password_strength,
    hash_password,
    needs_rehash,
    verify_password,
)
from services.audit.operations import record_event
from services.db import utcnow
from services.i18n import N_, UserError


class AccountError(UserError):
    """A request about accounts that cannot be done, with a message fit to show."""


def token_digest(token: str) -> str:
    """The stored form of a secret token (sha256 hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    """Lower-cased, trimmed email; refuses obviously malformed addresses."""
    email = email.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@") or " " in email or len(email) > 254:
        raise AccountError(N_("%(email)r is not a valid email address."), email=email)
    return email


def get_or_create_team(session: Session, name: str) -> Team:
    """The team with this name, created if missing."""
    name = name.strip()
    if not name:
        raise AccountError(N_("A team needs a name."))
    team = session.scalar(select(Team).where(Team.name == name))
    if team is None:
        team = Team(name=name)
        session.add(team)
        session.flush()
    return team


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    role: str,
    name: str | None = None,
    team: str | None = None,
    phone: str | None = None,
) -> User:
    """Create a staff account with an argon2id password hash."""
    try:
        role_value = Role(role).value
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise AccountError(
            N_("Unknown role %(role)r; choose one of: %(choices)s."), role=role, choices=allowed
        ) from None
    email = normalise_email(email)
    if session.scalar(select(func.count()).select_from(User).where(User.email == email)):
        raise AccountError(N_("A user with email %(email)s already exists."), email=email)
    check_password_strength(password)
    team_row = get_or_create_team(session, team) if team else None
    user = User(
        email=email,
        name=(name or email.split("@")[0]).strip(),
        role=role_value,
        team_id=team_row.id if team_row else None,
        password_hash=hash_password(password),
        phone=phone,
    )
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class LoginResult:
    """A successful login: the user and the raw session token for the cookie."""

    user: User
    session_token: str


def authenticate(
    session: Session, *, email: str, password: str, ip: str | None = None, user_agent: str | None = None
) -> LoginResult | None:
    """Check credentials; on success open a server-side login session. Both outcomes are audited."""
    try:
        email_norm = normalise_email(email)
    except AccountError:
        email_norm = email.strip().lower()[:254]
    user = session.scalar(select(User).where(User.email == email_norm))
    if user is None or not user.active:
        verify_password(DUMMY_HASH, password)
        record_event(session, action="login_failed", actor_label=email_norm, ip=ip)
        return None
    if not verify_password(user.password_hash, password):
        record_event(session, action="login_failed", actor_id=user.id, actor_label=email_norm, ip=ip)
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        LoginSession(
            token_hash=token_digest(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            ip=ip,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    user.last_login_at = now
    record_event(session, action="login", actor_id=user.id, actor_label=user.email, ip=ip)
    session.flush()
    return LoginResult(user=user, session_token=token)


def resume_login_session(session: Session, token: str, *, idle: timedelta, now: datetime | None = None) -> User | None:
    """The user behind a live login session token, refreshing its idle timer; ends idle sessions."""
    now = now or utcnow()
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == token_digest(token)))
    if row is None or row.ended_at is not None:
        return None
    if now - row.last_seen_at > idle:
        row.ended_at = now
        row.end_reason = "idle"
        session.flush()
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    # Write the timestamp at most once a minute: a page view should not always cost an UPDATE.
    if now - row.last_seen_at > timedelta(seconds=60):
        row.last_seen_at = now
        session.flush()
    return user


def end_login_session(session: Session, token: str, *, reason: str = "logout") -> None:
    """End a login session server-side, so the cookie is worthless afterwards."""
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == token_digest(token)))
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()
        row.end_reason = reason
        record_event(session, action="logout", actor_id=row.user_id)
        session.flush()


def end_all_login_sessions(session: Session, user_id: int, *, reason: str) -> int:
    """End every live login session of a user (password change, deactivation)."""
    result = session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def create_api_token(session: Session, *, user: User, name: str = "api") -> str:
    """Create a bearer token for user; returns the raw token, shown once and stored only as a hash."""
    raw = "rpt_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, token_hash=token_digest(raw), prefix=raw[:10]))
    record_event(session, action="api_token_created", actor_id=user.id, detail={"name": name})
    session.flush()
    return raw


def user_for_api_token(session: Session, raw: str) -> User | None:
    """The active user behind a bearer token, or None."""
    token = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == token_digest(raw), ApiToken.revoked_at.is_(None))
    )
    if token is None:
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        return None
    token.last_used_at = utcnow()
    return user
