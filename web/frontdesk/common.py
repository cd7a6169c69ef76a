"""What the front-desk views share: practice-local times, where to go back to, auditing, the invitation policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import redirect, request
from werkzeug.wrappers import Response

from services.audit.operations import record_event
from services.clients.operations import CHECK_IN_AFTER, CHECK_IN_BEFORE
from services.db import utcnow
from services.i18n import N_
from services.surveys.policy import InvitationPolicy, invitation_policy
from web.access import safe_next
from web.app import current_settings
from web.limiter import client_ip
from web.login import current_account
from web.request_db import db_session


class LocalTimeError(ValueError):
    """A wall-clock time that does not exist in the practice's zone (the hour skipped when clocks go forward)."""


def local_to_utc(day: date, at: time) -> datetime:
    """A practice-local date and time as UTC; refuses a time that does not exist on that day."""
    tz = current_settings().tz
    local = datetime.combine(day, at.replace(second=0, microsecond=0), tzinfo=tz)
    utc = local.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise LocalTimeError(N_("That time does not exist on that day (the clocks go forward); choose another."))
    return utc


def utc_to_local(moment: datetime) -> datetime:
    """A UTC timestamp in the practice's zone."""
    return moment.astimezone(current_settings().tz)


def local_today() -> date:
    """Today's date in the practice's zone."""
    return datetime.now(UTC).astimezone(current_settings().tz).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC start and end of a practice-local day."""
    tz = current_settings().tz
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def back_to(default: str) -> Response:
    """Redirect to the form's `next` (a same-site path only), else to default."""
    target = safe_next(request.form.get("next") or request.args.get("next"))
    return redirect(target or default, code=303)


def audit(action: str, *, client_id: int | None, subject_type: str, subject_id: int | None, **detail: Any) -> None:
    """Record a front-desk change in the audit trail (committed with the request)."""
    record_event(
        db_session(),
        action=action,
        actor_id=current_account().id,
        subject_type=subject_type,
        subject_id=subject_id,
        client_id=client_id,
        ip=client_ip(),
        detail=detail,
    )


def current_policy() -> InvitationPolicy:
    """The practice's invitation policy."""
    return invitation_policy(current_settings())


def page_arg() -> int:
    """The ?page= argument, at least 1."""
    page = request.args.get("page", 1, type=int) or 1
    return max(1, min(page, 100_000))


@dataclass(frozen=True)
class CheckInWindow:
    """Appointments that start before starts_before and end after ends_after can be checked in now."""

    starts_before: datetime
    ends_after: datetime


def check_in_window() -> CheckInWindow:
    """Which appointments the Check in button is shown for right now."""
    now = utcnow()
    return CheckInWindow(starts_before=now + CHECK_IN_BEFORE, ends_after=now - CHECK_IN_AFTER)
