"""Account tables: teams, users, login sessions, password resets, API tokens, second factors, kiosk devices."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.db import Base, UTCDateTime, utcnow


class Role(enum.StrEnum):
    """What a staff member does in the practice; decides what they may see."""

    FRONT_DESK = "front_desk"
    CLINICIAN = "clinician"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"
    ADMIN = "admin"


DEFAULT_LANGUAGE = "en"
LANGUAGES = ("en", "es")


class Team(Base):
    """A clinical team with its supervision slot."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    # ISO weekday 1-7 and local "HH:MM" of the team's regular supervision, if it has one.
    supervision_weekday: Mapped[int | None]
    supervision_time: Mapped[str | None] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    members: Mapped[list[User]] = relationship(back_populates="team")


class User(Base):
    """A staff member who logs in."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(default=True)
    on_call: Mapped[bool] = mapped_column(default=False)
    # "immediate" or "digest" for alliance and outcome alerts; risk is always immediate.
    notify_mode: Mapped[str] = mapped_column(String(10), default="immediate")
    # The language the person chose on their settings page; None until they choose (pages follow the browser).
    language_choice: Mapped[str | None] = mapped_column("language", String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    team: Mapped[Team | None] = relationship(back_populates="members")

    @property
    def role_enum(self) -> Role:
        """The role as an enum."""
        return Role(self.role)

    @property
    def language(self) -> str:
        """The language to write to this person in (messages, pages): their choice, else English."""
        return self.language_choice or DEFAULT_LANGUAGE

    @language.setter
    def language(self, value: str | None) -> None:
        self.language_choice = value


class LoginSession(Base):
    """A server-side login session; ending it logs the browser out everywhere it is used."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(20))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))

    user: Mapped[User] = relationship()


class PasswordReset(Base):
    """A password-reset link: single use, expiring; the raw token is minted when the email is sent, stored hashed."""

    __tablename__ = "password_resets"
    __table_args__ = (Index("ix_password_resets_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # Null until the outbox sends the link (a re-send mints a new token, so only the latest link works).
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The admin who sent it; None when the person asked on the sign-in page or it came from the command line.
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when a newer link, a password change or a deactivation makes this one worthless.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TokenScope(enum.StrEnum):
    """What an API token may do: read only (GET and HEAD), or also write."""

    READ = "read"
    WRITE = "write"


class ApiToken(Base):
    """A bearer token for the JSON API; only its hash is stored. It expires, and an admin can revoke it."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        Index("ix_api_tokens_active", "user_id", "revoked_at"),
        Index("ix_api_tokens_prefix", "prefix"),
        CheckConstraint("scope IN ('read', 'write')", name="scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    scope: Mapped[str] = mapped_column(String(10), default=TokenScope.WRITE.value, server_default="write")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class TwoFactor(Base):
    """A staff member's authenticator (TOTP): its secret encrypted at rest, confirmed once a first code matched.

    Unconfirmed (confirmed_at None) it is an enrolment in progress and changes nothing at sign-in. last_step is the
    30-second time step of the last accepted code: a code of that step or an earlier one is refused, so a code seen
    over someone's shoulder cannot be used again.
    """

    __tablename__ = "two_factor"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    secret_encrypted: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(Base):
    """A single-use recovery code for signing in without the authenticator; only its hash is kept."""

    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_user", "user_id", "used_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class KnownAddress(Base):
    """An address a staff member signed in from successfully (keyed hash, never the address), for the login throttle.

    While an account's sign-ins are being slowed after failures from elsewhere, its owner signing in from one of
    these is not kept waiting.
    """

    __tablename__ = "known_login_addresses"
    __table_args__ = (UniqueConstraint("user_id", "address_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    address_hash: Mapped[str] = mapped_column(String(64))
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KioskDevice(Base):
    """A paired waiting-room tablet. Its cookie carries the row id and a secret that is rotated as it is used; the
    row keeps the secret's hash (and the one before, for requests already in flight) and a hash of the browser's
    User-Agent, so a copied cookie stops working once the tablet has moved on, and on a different browser at once."""

    __tablename__ = "kiosk_devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    paired_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    paired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    secret_hash: Mapped[str] = mapped_column(String(64))
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64))
    secret_rotated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    user_agent_hash: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
