"""Two-factor sign-in for staff: a TOTP authenticator (pyotp), single-use recovery codes, the practice's rule.

The authenticator's secret is stored encrypted (services.crypto, a key of its own derived from the app's secret);
a code is accepted within one 30-second step either side of now (valid_window=1) and only if its step is later
than the last accepted one, so the same code never works twice. Ten recovery codes are shown once when the
authenticator is confirmed and kept as keyed hashes; each works once. An administrator (page or command line) can
reset a person's second factor, audited like every account change. With the practice setting
``two_factor_required`` on, every staff role must enrol before reaching any page (web.auth.two_factor).

Also here: the addresses a person signed in from before (keyed hashes), which the login throttle lets through
while it slows everyone else down for that account (web.auth.throttle).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from cryptography.fernet import InvalidToken
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from services.accounts.models import KnownAddress, RecoveryCode, Role, TwoFactor, User
from services.accounts.operations import AccountError, _audit_account, end_all_login_sessions
from services.crypto import fernet_for, keyed_digest
from services.db import upsert_insert, utcnow
from services.practice.settings import get_setting

SECRET_PURPOSE = b"rapport.totp-secret.v1"
RECOVERY_PURPOSE = b"rapport.recovery-code.v1"
ADDRESS_PURPOSE = b"rapport.login-address.v1"
# One 30-second step either side of the server's clock: a phone a little fast or slow, or a code typed slowly.
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
# Recovery codes: 10 characters of a 32-letter alphabet without look-alikes (0/O, 1/l/I): 50 bits each.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 10
# Which roles the practice setting covers: every staff role sees client data (managers in case reviews, admins
# in reports and in whom they give access to), so all of them.
REQUIRED_ROLES = frozenset(Role)
REQUIRED_SETTING = "two_factor_required"
# Known sign-in addresses: the most recent few per person, forgotten after a while.
KNOWN_ADDRESSES_KEPT = 20
KNOWN_ADDRESS_LIFETIME = timedelta(days=90)


def encrypt_secret(secret_key: str, raw: str) -> str:
    """The stored form of an authenticator secret."""
    return fernet_for(secret_key, SECRET_PURPOSE).encrypt(raw.encode()).decode("ascii")


def decrypt_secret(secret_key: str, stored: str) -> str | None:
    """The authenticator secret, or None when it was encrypted under another secret key (then reset it)."""
    try:
        return fernet_for(secret_key, SECRET_PURPOSE).decrypt(stored.encode("ascii")).decode()
    except (InvalidToken, UnicodeError, ValueError):
        return None


def two_factor_row(session: Session, user_id: int) -> TwoFactor | None:
    """The person's authenticator row (confirmed or an enrolment in progress), if any."""
    return session.get(TwoFactor, user_id)


def is_enrolled(session: Session, user_id: int) -> bool:
    """True when the person has a confirmed authenticator (sign-in then asks for a code)."""
    row = two_factor_row(session, user_id)
    return row is not None and row.confirmed_at is not None


def required_for(session: Session, role: str) -> bool:
    """True when the practice requires a second factor of this role (setting two_factor_required)."""
    return get_setting(session, REQUIRED_SETTING) is True and role in REQUIRED_ROLES


def must_enrol(session: Session, user: User) -> bool:
    """True when the practice requires a second factor of this person and they have not confirmed one yet."""
    return required_for(session, user.role) and not is_enrolled(session, user.id)


def provisioning_uri(secret: str, *, email: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def start_enrolment(session: Session, user: User, *, secret_key: str) -> str:
    """A new authenticator secret for user, pending until a code confirms it; returns the raw secret (flushes).

    An enrolment already in progress is replaced (its QR code stops working). Refused while one is confirmed: the
    person (or an admin) turns the old one off first.
    """
    row = two_factor_row(session, user.id)
    if row is not None and row.confirmed_at is not None:
        raise AccountError("Two-step sign-in is already on for this account.", code="already_enrolled")
    raw = pyotp.random_base32()
    if row is None:
        row = TwoFactor(user_id=user.id, secret_encrypted=encrypt_secret(secret_key, raw))
        session.add(row)
    else:
        row.secret_encrypted = encrypt_secret(secret_key, raw)
        row.created_at = utcnow()
        row.last_step = None
    session.flush()
    return raw


def pending_secret(session: Session, user: User, *, secret_key: str) -> str | None:
    """The secret of the enrolment in progress (to show its QR code again), or None."""
    row = two_factor_row(session, user.id)
    if row is None or row.confirmed_at is not None:
        return None
    return decrypt_secret(secret_key, row.secret_encrypted)


def _clean_code(code: str) -> str:
    return "".join(code.split())


def _accept_code(session: Session, row: TwoFactor, code: str, *, secret_key: str, now: datetime) -> bool:
    """Whether code is the authenticator's code within the window and of a later step than the last one used.

    The step is claimed by a conditional UPDATE, so two requests racing with one code cannot both succeed.
    """
    code = _clean_code(code)
    if len(code) != 6 or not code.isdigit():
        return False
    secret = decrypt_secret(secret_key, row.secret_encrypted)
    if secret is None:
        return False
    try:
        step = pyotp.TOTP(secret).verify_and_get_timecode(code, for_time=now, valid_window=VALID_WINDOW)
    except pyotp.exceptions.OTPVerificationError:
        return False
    claimed = session.execute(
        update(TwoFactor)
        .where(
            TwoFactor.user_id == row.user_id,
            (TwoFactor.last_step.is_(None)) | (TwoFactor.last_step < step),
        )
        .values(last_step=step)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return False
    session.refresh(row)
    return True


@dataclass(frozen=True)
class Enrolment:
    """A confirmed authenticator's recovery codes, to show once."""

    recovery_codes: list[str]


def confirm_enrolment(
    session: Session, user: User, code: str, *, secret_key: str, ip: str | None = None, now: datetime | None = None
) -> Enrolment:
    """Turn the pending authenticator on once a code from it matches; returns ten new recovery codes. Audited."""
    now = now or utcnow()
    row = two_factor_row(session, user.id)
    if row is None or row.confirmed_at is not None:
        raise AccountError("Start again: scan the new QR code, then enter the code it shows.", code="no_enrolment")
    if not _accept_code(session, row, code, secret_key=secret_key, now=now):
        raise AccountError(
            "That code does not match. Enter the 6 digits your app shows now (check the phone's clock is right).",
            code="bad_code",
        )
    row.confirmed_at = now
    codes = _new_recovery_codes(session, user, secret_key=secret_key, now=now)
    _audit_account(session, "two_factor_enrolled", user, actor_id=user.id, actor_label=None, ip=ip)
    session.flush()
    return Enrolment(recovery_codes=codes)


def verify_code(session: Session, user: User, code: str, *, secret_key: str, now: datetime | None = None) -> bool:
    """True when code is the person's current authenticator code, not used before (records its step; flushes)."""
    row = two_factor_row(session, user.id)
    if row is None or row.confirmed_at is None:
        return False
    return _accept_code(session, row, code, secret_key=secret_key, now=now or utcnow())


def _recovery_digest(secret_key: str, user_id: int, code: str) -> str:
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return keyed_digest(secret_key, RECOVERY_PURPOSE, f"{user_id}:{normal}")


def _new_recovery_codes(session: Session, user: User, *, secret_key: str, now: datetime) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(user_id=user.id, code_hash=_recovery_digest(secret_key, user.id, raw), created_at=now))
    session.flush()
    return codes


def replace_recovery_codes(
    session: Session, user: User, *, secret_key: str, ip: str | None = None, now: datetime | None = None
) -> list[str]:
    """Ten new recovery codes for an enrolled person; the old ones stop working. Audited."""
    if not is_enrolled(session, user.id):
        raise AccountError("Turn on two-step sign-in first.", code="not_enrolled")
    codes = _new_recovery_codes(session, user, secret_key=secret_key, now=now or utcnow())
    _audit_account(session, "recovery_codes_replaced", user, actor_id=user.id, actor_label=None, ip=ip)
    session.flush()
    return codes


def use_recovery_code(
    session: Session, user: User, code: str, *, secret_key: str, ip: str | None = None, now: datetime | None = None
) -> bool:
    """True when code is one of the person's unused recovery codes; it is used up (conditional UPDATE). Audited."""
    if not is_enrolled(session, user.id) or len(code) > 40:
        return False
    claimed = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _recovery_digest(secret_key, user.id, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return False
    left = recovery_codes_left(session, user.id)
    _audit_account(
        session, "recovery_code_used", user, actor_id=user.id, actor_label=None, ip=ip, detail={"left": left}
    )
    session.flush()
    return True


def recovery_codes_left(session: Session, user_id: int) -> int:
    """How many of the person's recovery codes are still unused."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def reset_two_factor(
    session: Session,
    user: User,
    *,
    actor_id: int | None,
    actor_label: str | None = None,
    ip: str | None = None,
) -> bool:
    """Remove a person's authenticator and recovery codes (a lost phone) and end their sessions; audited.

    False when there was nothing to remove. The person then signs in with their password alone, and enrols again
    (at once, when the practice requires it).
    """
    row = two_factor_row(session, user.id)
    codes = recovery_codes_left(session, user.id)
    if row is None and not codes:
        return False
    was_on = row is not None and row.confirmed_at is not None
    if row is not None:
        session.delete(row)
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    ended = end_all_login_sessions(session, user.id, reason="two_factor_reset")
    _audit_account(
        session,
        "two_factor_reset",
        user,
        actor_id=actor_id,
        actor_label=actor_label,
        ip=ip,
        detail={"was_enrolled": was_on, "sessions_ended": ended},
    )
    session.flush()
    return True


# --- addresses a person signed in from -------------------------------------------------------------------------


def _address_digest(secret_key: str, user_id: int, address: str) -> str:
    return keyed_digest(secret_key, ADDRESS_PURPOSE, f"{user_id}:{address}")


def remember_address(
    session: Session, user_id: int, address: str | None, *, secret_key: str, now: datetime | None = None
) -> None:
    """Note a successful sign-in from address (kept as a keyed hash; the oldest beyond the few kept are dropped)."""
    if not address:
        return
    now = now or utcnow()
    digest = _address_digest(secret_key, user_id, address)
    # One upsert: two sign-ins from one new address at once must not collide on the unique key.
    stmt = upsert_insert(session)(KnownAddress).values(user_id=user_id, address_hash=digest, last_seen_at=now)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[KnownAddress.user_id, KnownAddress.address_hash],
            set_={"last_seen_at": stmt.excluded.last_seen_at},
        )
    )
    stale = list(
        session.scalars(
            select(KnownAddress.id)
            .where(KnownAddress.user_id == user_id)
            .order_by(KnownAddress.last_seen_at.desc(), KnownAddress.id.desc())
            .offset(KNOWN_ADDRESSES_KEPT)
        )
    )
    session.execute(
        delete(KnownAddress).where(
            KnownAddress.user_id == user_id,
            (KnownAddress.id.in_(stale)) | (KnownAddress.last_seen_at < now - KNOWN_ADDRESS_LIFETIME),
        )
    )


def is_known_address(
    session: Session, user_id: int, address: str | None, *, secret_key: str, now: datetime | None = None
) -> bool:
    """True when the person signed in successfully from address within KNOWN_ADDRESS_LIFETIME."""
    if not address:
        return False
    now = now or utcnow()
    found = session.scalar(
        select(KnownAddress.id).where(
            KnownAddress.user_id == user_id,
            KnownAddress.address_hash == _address_digest(secret_key, user_id, address),
            KnownAddress.last_seen_at >= now - KNOWN_ADDRESS_LIFETIME,
        )
    )
    return found is not None
