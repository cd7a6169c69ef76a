"""Who is calling: Flask-Login's request loader over server-side login sessions and API bearer tokens.

The browser's session cookie (signed, HttpOnly, SameSite=Lax, Secure in production) carries only the raw token
of a LoginSession row (plus Flask-WTF's CSRF secret and pending flash messages); who the user is, and whether
the session is still alive, is decided by that row on every request. Logout, the idle timeout and the absolute
timeout (however busy the session) end the row, so an old copy of the cookie is worthless. Under /api the cookie
is ignored: only an ``Authorization: Bearer`` token counts, so a cross-site request cannot ride on a browser
session there.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Request, g, session
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy import select

from services.accounts.models import LoginSession, User
from services.accounts.operations import (
    TokenHolder,
    authenticate_api_token,
    end_login_session,
    resume_login_session,
    token_digest,
)
from web.app import current_settings
from web.request_db import commit, db_session

SESSION_TOKEN_KEY = "login_session"  # noqa: S105 - a session key name, not a secret
_ENDED_FLAG = "_rapport_login_session_ended"
_TOKEN_REFUSAL = "_rapport_api_token_refused"  # noqa: S105 - a g attribute name, not a secret

login_manager = LoginManager()
# The LoginSession row is the source of truth; Flask-Login's own session bookkeeping is not used.
login_manager.session_protection = None


class StaffUser(UserMixin):
    """The Flask-Login face of a staff account."""

    def __init__(self, account: User, *, via: str, scope: str = "write") -> None:
        self.account = account
        self.via = via  # "session" or "api"
        self.scope = scope  # an API token's scope; a browser session may do what its role may

    def get_id(self) -> str:
        """The account id as Flask-Login wants it."""
        return str(self.account.id)

    @property
    def id(self) -> int:
        """The account id."""
        return self.account.id

    @property
    def role(self) -> str:
        """The account's role value."""
        return self.account.role

    @property
    def name(self) -> str:
        """The display name."""
        return self.account.name

    @property
    def email(self) -> str:
        """The login email."""
        return self.account.email

    @property
    def is_active(self) -> bool:
        """False for a deactivated account."""
        return self.account.active


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    return token


def _load_staff(request: Request) -> StaffUser | None:
    if request.blueprint == "api":
        raw = _bearer_token(request)
        if raw is None:
            return None
        holder = authenticate_api_token(db_session(), raw)
        commit(idempotent=True)  # the token's last_used_at, before the handler's own unit of work starts
        if not isinstance(holder, TokenHolder):
            setattr(g, _TOKEN_REFUSAL, holder)
            return None
        return StaffUser(holder.user, via="api", scope=holder.scope)
    token = session.get(SESSION_TOKEN_KEY)
    if not isinstance(token, str) or not token:
        return None
    settings = current_settings()
    idle = timedelta(minutes=settings.session_idle_minutes)
    absolute = timedelta(hours=settings.session_absolute_hours)
    account = resume_login_session(db_session(), token, idle=idle, absolute=absolute)
    commit(idempotent=True)  # the idle timer (or the session's end), before the handler's own unit of work starts
    if account is None:
        session.pop(SESSION_TOKEN_KEY, None)
        setattr(g, _ENDED_FLAG, _end_reason(token) or "ended")
        return None
    return StaffUser(account, via="session")


def _end_reason(token: str) -> str | None:
    """Why a login session is no longer valid (idle, logout, ...), for the message on the login page."""
    return db_session().scalar(select(LoginSession.end_reason).where(LoginSession.token_hash == token_digest(token)))


login_manager.request_loader(_load_staff)


def current_staff() -> StaffUser | None:
    """The signed-in staff member, or None."""
    user = current_user._get_current_object()
    return user if isinstance(user, StaffUser) else None


def loaded_staff() -> StaffUser | None:
    """The staff member if this request already loaded one; never touches the database (error pages)."""
    user = g.get("_login_user")
    return user if isinstance(user, StaffUser) else None


def current_account() -> User:
    """The signed-in account; only for views whose policy already required a signed-in user."""
    staff = current_staff()
    if staff is None:
        raise RuntimeError("current_account() called on a request without a signed-in user")
    return staff.account


def refused_token_reason() -> str | None:
    """Why this request's bearer token was refused ("expired", "revoked", "unknown", "inactive"), or None."""
    reason = g.get(_TOKEN_REFUSAL)
    return reason if isinstance(reason, str) else None


def ended_session_reason() -> str | None:
    """Why this request's login session had ended ("idle", "logout", ...), or None if it carried no dead one."""
    reason = g.get(_ENDED_FLAG)
    return reason if isinstance(reason, str) else None


def start_browser_session(token: str) -> None:
    """Put a fresh login session's token in a fresh cookie session (a new CSRF secret comes with it)."""
    session.clear()
    session[SESSION_TOKEN_KEY] = token


def end_browser_session() -> None:
    """End the server-side login session behind the cookie, if any, and empty the cookie."""
    token = session.get(SESSION_TOKEN_KEY)
    if isinstance(token, str) and token:
        end_login_session(db_session(), token)
    session.clear()


def init_app(app: Flask) -> None:
    """Attach Flask-Login."""
    login_manager.init_app(app)
