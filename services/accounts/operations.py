"""Account verbs: create, edit, deactivate users; log in and out; password resets; API tokens. They flush only."""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.accounts.models import LANGUAGES, ApiToken, LoginSession, PasswordReset, Role, Team, TokenScope, User
from services.accounts.passwords import (
    DUMMY_HASH,
    check_password_strength,
    hash_password,
    needs_rehash,
    verify_password,
)
from services.audit.operations import record_event
from services.config import Settings
from services.db import utcnow
from services.i18n import UserError
from services.inputs import InputError, normalise_email_address
from services.notifications.delivery import SkipDelivery, register_context_builder
from services.notifications.models import Notification
from services.notifications.operations import queue_notification
from services.surveys.tokens import looks_like_token, new_token

# A reset link works for an hour (the email says so), and an account gets at most this many links an hour.
RESET_LIFETIME = timedelta(hours=1)
RESETS_PER_HOUR = 3


class AccountError(UserError):
    """A request about accounts that cannot be done: a msgid and its values (services.i18n), and a code for forms."""

    def __init__(self, msgid: str, *, code: str = "invalid", **params: Any) -> None:
        super().__init__(msgid, **params)
        self.code = code


class Keep(enum.Enum):
    """Marks an update_user field that is to stay as it is (None means "none" for team and language)."""

    KEEP = "keep"


KEEP = Keep.KEEP


MAX_TEAM_NAME = 120  # teams.name


def token_digest(token: str) -> str:
    """The stored form of a secret token (sha256 hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    """Lower-cased, trimmed email; refuses what email-validator refuses (CR/LF included)."""
    try:
        return normalise_email_address(email)
    except InputError as exc:
        raise AccountError(exc.message) from None


def get_or_create_team(session: Session, name: str) -> Team:
    """The team with this name, created if missing."""
    name = " ".join(name.split())
    if not name:
        raise AccountError("A team needs a name.")
    if len(name) > MAX_TEAM_NAME:
        raise AccountError("A team name is at most %(max)d characters.", max=MAX_TEAM_NAME)
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
        raise AccountError("Unknown role %(role)r; choose one of: %(choices)s.", role=role, choices=allowed) from None
    email = normalise_email(email)
    if session.scalar(select(func.count()).select_from(User).where(User.email == email)):
        raise AccountError("A user with email %(email)s already exists.", email=email)
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


def check_password(session: Session, *, email: str, password: str, ip: str | None = None) -> User | None:
    """The active user whose email and password these are, else None; a failure is audited (login_failed).

    Only the first step of a sign-in: open_login_session (after a second factor, when the person has one) is what
    signs them in.
    """
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
    return user


def open_login_session(
    session: Session, user: User, *, ip: str | None = None, user_agent: str | None = None, method: str = "password"
) -> LoginResult:
    """Sign user in: a new server-side login session, audited with how (password, totp, recovery_code)."""
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
    detail = None if method == "password" else {"second_factor": method}
    record_event(session, action="login", actor_id=user.id, actor_label=user.email, ip=ip, detail=detail)
    session.flush()
    return LoginResult(user=user, session_token=token)


def authenticate(
    session: Session, *, email: str, password: str, ip: str | None = None, user_agent: str | None = None
) -> LoginResult | None:
    """Check a password and, when it is right, open a login session (no second factor asked). Both audited."""
    user = check_password(session, email=email, password=password, ip=ip)
    if user is None:
        return None
    return open_login_session(session, user, ip=ip, user_agent=user_agent)


def resume_login_session(
    session: Session,
    token: str,
    *,
    idle: timedelta,
    absolute: timedelta | None = None,
    now: datetime | None = None,
) -> User | None:
    """The user behind a live login session token, refreshing its idle timer; ends idle and too old sessions."""
    now = now or utcnow()
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == token_digest(token)))
    if row is None or row.ended_at is not None:
        return None
    if absolute is not None and now - row.created_at > absolute:
        row.ended_at = now
        row.end_reason = "expired"
        session.flush()
        return None
    if now - row.last_seen_at > idle:
        row.ended_at = now
        row.end_reason = "idle"
        session.flush()
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        # Deactivated since this session began: end it for good, so the login page can say so.
        row.ended_at = now
        row.end_reason = "deactivated"
        session.flush()
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


API_TOKEN_DAYS = 90
API_TOKEN_MAX_DAYS = 730
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


def create_api_token(
    session: Session,
    *,
    user: User,
    name: str = "api",
    scope: str = TokenScope.WRITE.value,
    expires_days: int = API_TOKEN_DAYS,
    actor_id: int | None = None,
) -> str:
    """Create a bearer token for user; returns the raw token, shown once and stored only as a hash."""
    if scope not in {s.value for s in TokenScope}:
        raise AccountError("A token's scope is read or write, not %(scope)s.", code="bad_scope", scope=scope)
    if not 1 <= expires_days <= API_TOKEN_MAX_DAYS:
        raise AccountError("A token lasts from 1 to %(most)d days.", code="bad_expiry", most=API_TOKEN_MAX_DAYS)
    raw = "rpt_" + secrets.token_urlsafe(32)
    now = utcnow()
    token = ApiToken(
        user_id=user.id,
        name=name[:120],
        token_hash=token_digest(raw),
        prefix=raw[:10],
        scope=scope,
        created_at=now,
        expires_at=now + timedelta(days=expires_days),
    )
    session.add(token)
    session.flush()
    record_event(
        session,
        action="api_token_created",
        actor_id=actor_id if actor_id is not None else user.id,
        actor_label=None if actor_id is not None else "command line",
        subject_type="api_token",
        subject_id=token.id,
        detail={"name": token.name, "owner_id": user.id, "scope": scope, "expires_days": expires_days},
    )
    session.flush()
    return raw


@dataclass(frozen=True)
class TokenHolder:
    """Who an API token acts as, and what it may do."""

    user: User
    token_id: int
    scope: str


def authenticate_api_token(session: Session, raw: str, *, now: datetime | None = None) -> TokenHolder | str:
    """The active user behind a live bearer token, or why it is refused ("unknown", "expired", "revoked", "inactive").

    last_used_at is written at most once a minute per token (a busy integration does not write on every call).
    """
    now = now or utcnow()
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(raw)))
    if token is None:
        return "unknown"
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at <= now:
        return "expired"
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        return "inactive"
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        token.last_used_at = now
    return TokenHolder(user=user, token_id=token.id, scope=token.scope)


def find_api_tokens(session: Session, key: str) -> list[ApiToken]:
    """The tokens a revoke names: by id (digits) or by the start of the token as printed (at least 6 characters)."""
    key = key.strip()
    if key.isdigit() and int(key) < 2**31:
        found = session.get(ApiToken, int(key))
        return [found] if found is not None else []
    if len(key) < 6:
        return []
    prefix = key[:10]
    candidates = session.scalars(select(ApiToken).where(ApiToken.prefix == prefix).order_by(ApiToken.id))
    return [token for token in candidates if key.startswith(token.prefix) or token.prefix.startswith(key)]


def revoke_api_token(session: Session, token: ApiToken, *, actor_id: int | None, ip: str | None = None) -> bool:
    """Revoke a token at once (it gets 401 from its next call); False when it was already revoked."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    token.revoked_by_id = actor_id
    record_event(
        session,
        action="api_token_revoked",
        actor_id=actor_id,
        actor_label=None if actor_id is not None else "command line",
        subject_type="api_token",
        subject_id=token.id,
        ip=ip,
        detail={"name": token.name, "owner_id": token.user_id},
    )
    session.flush()
    return True


# --- editing accounts ------------------------------------------------------------------------------------------


def parse_role(role: str) -> str:
    """The stored value of a role name, or AccountError listing the roles."""
    try:
        return Role(role.strip()).value
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise AccountError(
            "Unknown role %(role)r; choose one of: %(choices)s.", code="bad_role", role=role, choices=allowed
        ) from None


def parse_language(language: str | None) -> str | None:
    """A language code we offer, or None for "not chosen" (None or blank); AccountError otherwise."""
    if language is None or not language.strip():
        return None
    value = language.strip().lower()
    if value not in LANGUAGES:
        allowed = ", ".join(LANGUAGES)
        raise AccountError(
            "Unknown language %(language)r; choose one of: %(choices)s.",
            code="bad_language",
            language=language,
            choices=allowed,
        )
    return value


def find_team(session: Session, name: str) -> Team:
    """The existing team with this name, or AccountError naming the teams there are."""
    team = session.scalar(select(Team).where(Team.name == name.strip()))
    if team is None:
        names = ", ".join(session.scalars(select(Team.name).order_by(Team.name))) or "none yet"
        raise AccountError(
            "There is no team called %(team)r (teams: %(teams)s).", code="bad_team", team=name.strip(), teams=names
        )
    return team


def _other_active_admins(session: Session, user: User) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN, User.active.is_(True), User.id != user.id)
        )
        or 0
    )


def _audit_account(
    session: Session,
    action: str,
    user: User,
    *,
    actor_id: int | None,
    actor_label: str | None,
    ip: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Audit a change to an account; a change without a signed-in actor is labelled "cli" unless told otherwise."""
    record_event(
        session,
        action=action,
        actor_id=actor_id,
        actor_label=actor_label if actor_label is not None else (None if actor_id is not None else "cli"),
        subject_type="user",
        subject_id=user.id,
        ip=ip,
        detail=detail,
    )


def update_user(
    session: Session,
    user: User,
    *,
    actor_id: int | None,
    actor_label: str | None = None,
    ip: str | None = None,
    name: str | None = None,
    role: str | None = None,
    team: str | Keep | None = KEEP,
    language: str | Keep | None = KEEP,
) -> dict[str, list[Any]]:
    """Change a user's name, role, team (None: no team) or language (None: follow the browser); audits the changes."""
    changes: dict[str, list[Any]] = {}
    if name is not None:
        clean = " ".join(name.split())
        if not clean or len(clean) > 200:
            raise AccountError("A name needs 1 to 200 characters.", code="bad_name")
        if clean != user.name:
            changes["name"] = [user.name, clean]
            user.name = clean
    if role is not None:
        value = parse_role(role)
        if value != user.role:
            if user.role == Role.ADMIN and user.active and not _other_active_admins(session, user):
                raise AccountError(
                    "This is the only active administrator; make someone else an administrator first.",
                    code="last_admin",
                )
            changes["role"] = [user.role, value]
            user.role = value
    if not isinstance(team, Keep):
        team_row = find_team(session, team) if team is not None and team.strip() else None
        new_team_id = team_row.id if team_row is not None else None
        if new_team_id != user.team_id:
            old_name = user.team.name if user.team is not None else None
            changes["team"] = [old_name, team_row.name if team_row is not None else None]
            user.team_id = new_team_id
            user.team = team_row
    if not isinstance(language, Keep):
        chosen = parse_language(language)
        if chosen != user.language_choice:
            changes["language"] = [user.language_choice, chosen]
            user.language_choice = chosen
    if changes:
        _audit_account(
            session,
            "user_updated",
            user,
            actor_id=actor_id,
            actor_label=actor_label,
            ip=ip,
            detail={"changes": changes},
        )
        session.flush()
    return changes


def deactivate_user(
    session: Session, user: User, *, actor_id: int | None, actor_label: str | None = None, ip: str | None = None
) -> bool:
    """Deactivate an account: its login sessions and reset links end now; False if it already was inactive."""
    if actor_id is not None and user.id == actor_id:
        raise AccountError("You cannot deactivate your own account.", code="self_deactivation")
    if not user.active:
        return False
    if user.role == Role.ADMIN and not _other_active_admins(session, user):
        raise AccountError("This is the only active administrator; it cannot be deactivated.", code="last_admin")
    user.active = False
    ended = end_all_login_sessions(session, user.id, reason="deactivated")
    _revoke_open_resets(session, user.id)
    _audit_account(
        session,
        "user_deactivated",
        user,
        actor_id=actor_id,
        actor_label=actor_label,
        ip=ip,
        detail={"sessions_ended": ended},
    )
    session.flush()
    return True


def reactivate_user(
    session: Session, user: User, *, actor_id: int | None, actor_label: str | None = None, ip: str | None = None
) -> bool:
    """Let a deactivated account sign in again; False if it was active."""
    if user.active:
        return False
    user.active = True
    _audit_account(session, "user_reactivated", user, actor_id=actor_id, actor_label=actor_label, ip=ip)
    session.flush()
    return True


def set_password(
    session: Session,
    user: User,
    *,
    password: str,
    actor_id: int | None,
    actor_label: str | None = None,
    ip: str | None = None,
) -> int:
    """Set a new password (strength-checked); ends every login session and reset link; returns sessions ended."""
    check_password_strength(password)
    user.password_hash = hash_password(password)
    ended = end_all_login_sessions(session, user.id, reason="password_changed")
    _revoke_open_resets(session, user.id)
    _audit_account(
        session,
        "password_set",
        user,
        actor_id=actor_id,
        actor_label=actor_label,
        ip=ip,
        detail={"sessions_ended": ended},
    )
    session.flush()
    return ended


# --- password-reset links --------------------------------------------------------------------------------------


class ResetOutcome(enum.StrEnum):
    """What a reset request did (the sign-in page says the same whatever it is)."""

    QUEUED = "queued"
    LIMITED = "limited"  # this account had RESETS_PER_HOUR links in the last hour
    UNKNOWN = "unknown"  # no active account has that email


@dataclass(frozen=True)
class ResetRequest:
    """The outcome of a reset request and, when queued, the outbox row to send after commit."""

    outcome: ResetOutcome
    notification_id: int | None = None


def reset_link(base_url: str, raw: str) -> str:
    """The link in a password-reset email."""
    return f"{base_url.rstrip('/')}/reset/{raw}"


def _revoke_open_resets(session: Session, user_id: int, *, now: datetime | None = None) -> None:
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None), PasswordReset.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )


def request_password_reset(
    session: Session,
    *,
    email: str,
    ip: str | None = None,
    requested_by_id: int | None = None,
    requested_by_label: str | None = None,
    now: datetime | None = None,
) -> ResetRequest:
    """Queue an emailed reset link for the active account with this email; earlier links stop working. Audited."""
    now = now or utcnow()
    try:
        email_norm = normalise_email(email)
    except AccountError:
        email_norm = email.strip().lower()[:254]
    label = requested_by_label if requested_by_label is not None else (None if requested_by_id else email_norm)
    user = session.scalar(select(User).where(User.email == email_norm))
    if user is None or not user.active:
        record_event(
            session,
            action="password_reset_requested",
            actor_id=requested_by_id,
            actor_label=label,
            ip=ip,
            detail={"result": ResetOutcome.UNKNOWN.value},
        )
        session.flush()
        return ResetRequest(ResetOutcome.UNKNOWN)
    recent = session.scalar(
        select(func.count())
        .select_from(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.created_at > now - timedelta(hours=1))
    )
    outcome = ResetOutcome.LIMITED if (recent or 0) >= RESETS_PER_HOUR else ResetOutcome.QUEUED
    notification_id = None
    if outcome is ResetOutcome.QUEUED:
        _revoke_open_resets(session, user.id, now=now)
        reset = PasswordReset(
            user_id=user.id,
            requested_by_id=requested_by_id,
            ip=ip,
            created_at=now,
            expires_at=now + RESET_LIFETIME,
        )
        session.add(reset)
        session.flush()
        notification = queue_notification(
            session,
            channel="email",
            template="password_reset",
            to_address=user.email,
            recipient_user_id=user.id,
            context={"password_reset_id": reset.id, "language": user.language},
        )
        notification_id = notification.id
    record_event(
        session,
        action="password_reset_requested",
        actor_id=requested_by_id,
        actor_label=label,
        subject_type="user",
        subject_id=user.id,
        ip=ip,
        detail={"result": outcome.value},
    )
    session.flush()
    return ResetRequest(outcome, notification_id)


def password_reset_message_context(session: Session, settings: Settings, notification: Notification) -> dict[str, Any]:
    """Mint the reset link's token as the email is sent (only its hash is kept); refuse a used or stale link."""
    reset_id = notification.context.get("password_reset_id")
    reset = session.get(PasswordReset, reset_id) if isinstance(reset_id, int) else None
    if reset is None:
        raise SkipDelivery("the reset link no longer exists")
    if reset.used_at is not None or reset.revoked_at is not None:
        raise SkipDelivery("the reset link was used or replaced")
    if reset.expires_at <= utcnow():
        raise SkipDelivery("the reset link expired before it could be sent")
    raw, digest = new_token()
    reset.token_hash = digest
    session.flush()
    return {"link": reset_link(settings.base_url, raw)}


register_context_builder("password_reset", password_reset_message_context)


def find_password_reset(session: Session, raw: str, *, now: datetime | None = None) -> PasswordReset | None:
    """The live reset link behind a raw token (unused, not replaced, not expired, account active), else None."""
    if not looks_like_token(raw):
        return None
    now = now or utcnow()
    return session.scalar(
        select(PasswordReset)
        .join(User, User.id == PasswordReset.user_id)
        .where(
            PasswordReset.token_hash == token_digest(raw),
            PasswordReset.used_at.is_(None),
            PasswordReset.revoked_at.is_(None),
            PasswordReset.expires_at > now,
            User.active.is_(True),
        )
    )


def complete_password_reset(
    session: Session, *, raw: str, password: str, ip: str | None = None, now: datetime | None = None
) -> User:
    """Use a reset link once: set the new password and end every login session of the account. Audited."""
    now = now or utcnow()
    reset = find_password_reset(session, raw, now=now)
    if reset is None:
        raise AccountError("This link has expired or has already been used.", code="reset_link_dead")
    check_password_strength(password)
    # A conditional UPDATE, so two submissions of one link cannot both set a password.
    claimed = session.execute(
        update(PasswordReset)
        .where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None), PasswordReset.revoked_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        raise AccountError("This link has expired or has already been used.", code="reset_link_dead")
    user = session.get(User, reset.user_id)
    assert user is not None
    user.password_hash = hash_password(password)
    ended = end_all_login_sessions(session, user.id, reason="password_reset")
    _revoke_open_resets(session, user.id, now=now)
    record_event(
        session,
        action="password_reset_used",
        actor_id=user.id,
        actor_label=user.email,
        subject_type="user",
        subject_id=user.id,
        ip=ip,
        detail={"password_reset_id": reset.id, "sessions_ended": ended},
    )
    session.flush()
    session.refresh(reset)
    return user
