"""Paired kiosk tablets as rows: listed, revocable, expiring when unused, and bound to the browser they were paired in.

The tablet's cookie carries the row id and a random secret; the row keeps only the secret's hash. The secret is
replaced by a new one as the tablet is used (at most every ROTATE_AFTER), and the one before stays valid for
PREVIOUS_GRACE so requests already in flight do not lock the tablet out. So a copy of the cookie taken to another
machine works only until the real tablet's next rotation, and not at all in a browser with another User-Agent.

The limit, honestly: a copy made with the same User-Agent string and used before the tablet's next rotation works
until then (at most ROTATE_AFTER of the tablet's use); after that, whichever of the two holds the older secret is
refused, and the refusal is audited (``kiosk_refused``) so staff can revoke the device and pair it again. Binding
more tightly (to the address) would break tablets on Wi-Fi whose address changes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.accounts.models import KioskDevice, User
from services.audit.operations import record_event
from services.db import utcnow

KIOSK_IDLE = timedelta(days=14)  # a tablet not used for this long must be paired again (the lifetime slides)
ROTATE_AFTER = timedelta(minutes=10)
PREVIOUS_GRACE = timedelta(minutes=5)
SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _agent_digest(user_agent: str | None) -> str:
    return _digest("ua:" + (user_agent or "")[:500])


def pair_kiosk(
    session: Session, *, name: str, paired_by_id: int, user_agent: str | None, ip: str | None
) -> tuple[KioskDevice, str]:
    """Register a tablet as a kiosk; returns the row and the raw secret for its cookie (never stored)."""
    now = utcnow()
    secret = secrets.token_urlsafe(32)
    device = KioskDevice(
        name=(name.strip() or "Kiosk")[:60],
        paired_by_id=paired_by_id,
        paired_at=now,
        last_seen_at=now,
        secret_hash=_digest(secret),
        secret_rotated_at=now,
        user_agent_hash=_agent_digest(user_agent),
    )
    session.add(device)
    session.flush()
    record_event(
        session,
        action="kiosk_paired",
        actor_id=paired_by_id,
        subject_type="kiosk_device",
        subject_id=device.id,
        ip=ip,
        detail={"name": device.name},
    )
    return device, secret


@dataclass(frozen=True)
class KioskCheck:
    """A tablet's cookie judged: the device when it may go on (and a new secret to send when rotated), or why not."""

    device: KioskDevice | None
    refused: str | None = None  # "unknown", "revoked", "expired", "other_browser", "stale_secret"
    new_secret: str | None = None


def resume_kiosk(
    session: Session,
    *,
    device_id: int,
    secret: str,
    user_agent: str | None,
    ip: str | None,
    now: datetime | None = None,
) -> KioskCheck:
    """Check a tablet's cookie against its row; slide its lifetime and rotate its secret as it is used."""
    now = now or utcnow()
    device = session.get(KioskDevice, device_id)
    if device is None:
        return KioskCheck(None, "unknown")
    reason = None
    presented = _digest(secret)
    current = hmac.compare_digest(presented, device.secret_hash)
    previous = device.previous_secret_hash is not None and hmac.compare_digest(presented, device.previous_secret_hash)
    if device.revoked_at is not None:
        reason = "revoked"
    elif now - device.last_seen_at > KIOSK_IDLE:
        reason = "expired"
    elif not hmac.compare_digest(_agent_digest(user_agent), device.user_agent_hash):
        reason = "other_browser"
    elif not current and not (previous and now - device.secret_rotated_at <= PREVIOUS_GRACE):
        reason = "stale_secret"
    if reason is not None:
        if reason in {"other_browser", "stale_secret"}:
            # A cookie of a live device used where or when it should not be: most likely a copy.
            record_event(
                session,
                action="kiosk_refused",
                subject_type="kiosk_device",
                subject_id=device.id,
                ip=ip,
                detail={"reason": reason, "name": device.name},
            )
        return KioskCheck(None, reason)
    new_secret = None
    if current and now - device.secret_rotated_at >= ROTATE_AFTER:
        fresh = secrets.token_urlsafe(32)
        # Conditional: of two requests rotating at once, one wins; the other's cookie stays valid as the previous.
        rotated = session.execute(
            update(KioskDevice)
            .where(KioskDevice.id == device.id, KioskDevice.secret_hash == device.secret_hash)
            .values(
                previous_secret_hash=device.secret_hash,
                secret_hash=_digest(fresh),
                secret_rotated_at=now,
                last_seen_at=now,
            )
            .execution_options(synchronize_session="fetch")
        )
        if rotated.rowcount:  # type: ignore[attr-defined]
            new_secret = fresh
    if new_secret is None and now - device.last_seen_at >= SEEN_EVERY:
        device.last_seen_at = now
    session.flush()
    return KioskCheck(device, None, new_secret)


def revoke_kiosk(session: Session, device: KioskDevice, *, actor_id: int, ip: str | None) -> bool:
    """Revoke a kiosk at once (its next request shows the unpaired screen); False when it already was."""
    if device.revoked_at is not None:
        return False
    device.revoked_at = utcnow()
    device.revoked_by_id = actor_id
    record_event(
        session,
        action="kiosk_revoked",
        actor_id=actor_id,
        subject_type="kiosk_device",
        subject_id=device.id,
        ip=ip,
        detail={"name": device.name},
    )
    session.flush()
    return True


@dataclass(frozen=True)
class KioskRow:
    """A kiosk as the devices page lists it."""

    device: KioskDevice
    paired_by: str | None
    state: str  # "active", "expired", "revoked"


def list_kiosks(session: Session, *, now: datetime | None = None) -> list[KioskRow]:
    """Every paired kiosk, active ones first, newest pairing first."""
    now = now or utcnow()
    rows = session.execute(
        select(KioskDevice, User.name)
        .outerjoin(User, User.id == KioskDevice.paired_by_id)
        .order_by(KioskDevice.revoked_at.is_not(None), KioskDevice.paired_at.desc(), KioskDevice.id.desc())
    )
    listed = []
    for device, paired_by in rows:
        if device.revoked_at is not None:
            state = "revoked"
        elif now - device.last_seen_at > KIOSK_IDLE:
            state = "expired"
        else:
            state = "active"
        listed.append(KioskRow(device=device, paired_by=paired_by, state=state))
    return listed
