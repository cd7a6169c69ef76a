"""Survey reads: invitation history (no answers, no scores) and the completion funnel.

The funnel is plain data (counts per channel, clinician and week) so that the front-desk page and the monthly
report show the same numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from services.accounts.models import Role, User
from services.clients.models import Appointment, Client, Episode
from services.clients.queries import DEFAULT_PER_PAGE, MAX_PER_PAGE, Page, client_scope, episode_scope
from services.db import utcnow
from services.inputs import page_offset
from services.surveys.models import Invitation


@dataclass(frozen=True)
class InvitationRow:
    """One invitation as staff see it in a history: when, how, and how far the client got. Never answers."""

    id: int
    client_id: int
    episode_id: int
    appointment_id: int | None
    appointment_starts_at: datetime | None
    clinician_name: str
    phase: str
    channel: str
    status: str
    questionnaires: int
    created_at: datetime
    due_at: datetime
    sent_at: datetime | None
    opened_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    expires_at: datetime
    reminder_sent_at: datetime | None


def _invitation_scope(user: User) -> ColumnElement[bool]:
    if user.role == Role.FRONT_DESK:
        return client_scope(user)
    return and_(client_scope(user), episode_scope(user))


def list_invitations(
    session: Session,
    user: User,
    *,
    client_id: int | None = None,
    episode_id: int | None = None,
    appointment_id: int | None = None,
    status: str | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
) -> Page[InvitationRow]:
    """Invitations of the clients user may see, newest first, optionally for one client, episode or appointment."""
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    page = max(page, 1)
    conditions: list[ColumnElement[bool]] = [_invitation_scope(user)]
    if client_id is not None:
        conditions.append(Episode.client_id == client_id)
    if episode_id is not None:
        conditions.append(Invitation.episode_id == episode_id)
    if appointment_id is not None:
        conditions.append(Invitation.appointment_id == appointment_id)
    if status is not None:
        conditions.append(Invitation.status == status)
    base = (
        select(Invitation, Episode.client_id, User.name, Appointment.starts_at)
        .join(Episode, Episode.id == Invitation.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .join(User, User.id == Episode.clinician_id)
        .outerjoin(Appointment, Appointment.id == Invitation.appointment_id)
        .where(and_(*conditions))
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(
        base.order_by(Invitation.created_at.desc(), Invitation.id.desc())
        .limit(per_page)
        .offset(page_offset(page, per_page))
    ).all()
    return Page(items=[_row(*row) for row in rows], total=total, page=page, per_page=per_page)


def _row(invitation: Invitation, client_id: int, clinician_name: str, starts_at: datetime | None) -> InvitationRow:
    return InvitationRow(
        id=invitation.id,
        client_id=client_id,
        episode_id=invitation.episode_id,
        appointment_id=invitation.appointment_id,
        appointment_starts_at=starts_at,
        clinician_name=clinician_name,
        phase=invitation.phase,
        channel=invitation.channel,
        status=invitation.status,
        questionnaires=len(invitation.instruments or []),
        created_at=invitation.created_at,
        due_at=invitation.due_at,
        sent_at=invitation.sent_at,
        opened_at=invitation.opened_at,
        started_at=invitation.started_at,
        completed_at=invitation.completed_at,
        cancelled_at=invitation.cancelled_at,
        expires_at=invitation.expires_at,
        reminder_sent_at=invitation.reminder_sent_at,
    )


def get_invitation_row(session: Session, user: User, invitation_id: int) -> InvitationRow | None:
    """One invitation if user may see its client, else None."""
    row = session.execute(
        select(Invitation, Episode.client_id, User.name, Appointment.starts_at)
        .join(Episode, Episode.id == Invitation.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .join(User, User.id == Episode.clinician_id)
        .outerjoin(Appointment, Appointment.id == Invitation.appointment_id)
        .where(Invitation.id == invitation_id, _invitation_scope(user))
    ).first()
    return _row(*row) if row is not None else None


# --- the funnel ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelCounts:
    """How many invitations were sent, and how many of them were opened, started and completed."""

    sent: int = 0
    opened: int = 0
    started: int = 0
    completed: int = 0

    def rate(self, step: str) -> float | None:
        """The share of sent invitations that reached step (None when nothing was sent)."""
        if not self.sent:
            return None
        value: int = getattr(self, step)
        return value / self.sent

    @property
    def completion_rate(self) -> float | None:
        """Completed as a share of sent."""
        return self.rate("completed")

    def plus(self, opened: bool, started: bool, completed: bool) -> FunnelCounts:
        """These counts with one more sent invitation."""
        return FunnelCounts(
            sent=self.sent + 1,
            opened=self.opened + int(opened),
            started=self.started + int(started),
            completed=self.completed + int(completed),
        )


@dataclass(frozen=True)
class FunnelGroup:
    """The funnel of one channel, clinician or week."""

    key: str
    label: str
    counts: FunnelCounts


@dataclass(frozen=True)
class Funnel:
    """Invitations sent in [start, end) and how far they got: overall and by channel, clinician and week."""

    start: datetime
    end: datetime
    total: FunnelCounts
    by_channel: list[FunnelGroup]
    by_clinician: list[FunnelGroup]
    by_week: list[FunnelGroup]


FUNNEL_STEPS = ("sent", "opened", "started", "completed")
CHANNEL_ORDER = ("email", "sms", "kiosk", "link")


def week_start(moment: datetime, tz: ZoneInfo) -> date:
    """The Monday of the practice-local week a moment falls in."""
    local = moment.astimezone(tz).date()
    return local - timedelta(days=local.weekday())


def invitation_funnel(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    tz: ZoneInfo | str = "UTC",
    clinician_ids: Sequence[int] | None = None,
) -> Funnel:
    """The completion funnel of invitations sent in [start, end), optionally for some clinicians only.

    A later step implies the earlier ones (a kiosk answer counts as opened and started even if those times are
    missing). Counts only: no client, no answer, no score.
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    conditions: list[ColumnElement[bool]] = [
        Invitation.sent_at.is_not(None),
        Invitation.sent_at >= start,
        Invitation.sent_at < end,
    ]
    if clinician_ids is not None:
        conditions.append(Episode.clinician_id.in_(list(clinician_ids)))
    rows = session.execute(
        select(
            Invitation.channel,
            Episode.clinician_id,
            Invitation.sent_at,
            Invitation.opened_at.is_not(None),
            Invitation.started_at.is_not(None),
            Invitation.completed_at.is_not(None),
        )
        .join(Episode, Episode.id == Invitation.episode_id)
        .where(*conditions)
    ).all()
    total = FunnelCounts()
    channels: dict[str, FunnelCounts] = defaultdict(FunnelCounts)
    clinicians: dict[int, FunnelCounts] = defaultdict(FunnelCounts)
    weeks: dict[date, FunnelCounts] = defaultdict(FunnelCounts)
    for channel, clinician_id, sent_at, opened_at, started_at, completed_at in rows:
        if sent_at is None:
            continue  # excluded by the query; keeps the type checker honest
        completed = bool(completed_at)
        started = bool(started_at) or completed
        opened = bool(opened_at) or started
        total = total.plus(opened, started, completed)
        channels[channel] = channels[channel].plus(opened, started, completed)
        clinicians[clinician_id] = clinicians[clinician_id].plus(opened, started, completed)
        week = week_start(sent_at, zone)
        weeks[week] = weeks[week].plus(opened, started, completed)
    names: dict[int, str] = {}
    if clinicians:
        names = {
            user_id: name
            for user_id, name in session.execute(select(User.id, User.name).where(User.id.in_(list(clinicians))))
        }
    by_channel = [
        FunnelGroup(key=c, label=c, counts=channels[c])
        for c in sorted(channels, key=lambda c: (CHANNEL_ORDER.index(c) if c in CHANNEL_ORDER else 99, c))
    ]
    by_clinician = sorted(
        (FunnelGroup(key=str(i), label=names.get(i, f"#{i}"), counts=counts) for i, counts in clinicians.items()),
        key=lambda g: (g.label, g.key),
    )
    by_week = [FunnelGroup(key=w.isoformat(), label=w.isoformat(), counts=weeks[w]) for w in sorted(weeks)]
    return Funnel(start=start, end=end, total=total, by_channel=by_channel, by_clinician=by_clinician, by_week=by_week)


@dataclass(frozen=True)
class OverdueClient:
    """A client in care with no completed questionnaire in their last N sessions, and their latest invitation."""

    client_id: int
    first_name: str
    last_name: str
    code: str
    clinician_name: str
    episode_id: int
    last_session_at: datetime
    invitation: Invitation | None
    email_ok: bool
    sms_ok: bool

    @property
    def answerable(self) -> bool:
        """True when the latest invitation can still be answered (so its link can be sent again)."""
        inv = self.invitation
        return inv is not None and inv.status in ("sent", "opened", "started") and inv.expires_at > utcnow()


def list_overdue(
    session: Session, *, sessions: int, now: datetime, page: int = 1, per_page: int = 25
) -> tuple[list[OverdueClient], int]:
    """Open episodes whose last `sessions` sessions (begun by now, not cancelled or missed) all lack a completed
    invitation, most recent session first, one page at a time; and how many there are. Three queries."""
    # One pass over the completed invitations (a hashed set on PostgreSQL), not a look-up per session.
    done = Appointment.id.in_(
        select(Invitation.appointment_id).where(
            Invitation.status == "completed", Invitation.appointment_id.is_not(None)
        )
    )
    ranked = (
        select(
            Appointment.episode_id.label("episode_id"),
            Appointment.starts_at.label("starts_at"),
            case((done, 1), else_=0).label("done"),
            func.row_number()
            .over(partition_by=Appointment.episode_id, order_by=(Appointment.starts_at.desc(), Appointment.id.desc()))
            .label("n"),
        )
        .join(Episode, Episode.id == Appointment.episode_id)
        .where(
            Episode.ended_on.is_(None),
            Appointment.status.in_(("scheduled", "completed")),
            Appointment.starts_at <= now,
        )
        .subquery("ranked")
    )
    latest = (
        select(ranked.c.episode_id, func.max(ranked.c.starts_at).label("last_at"))
        .where(ranked.c.n <= sessions)
        .group_by(ranked.c.episode_id)
        .having(func.count() == sessions, func.sum(ranked.c.done) == 0)
        .subquery("overdue")
    )
    total = session.scalar(select(func.count()).select_from(latest)) or 0
    rows = session.execute(
        select(latest.c.episode_id, latest.c.last_at, Client, User.name)
        .join(Episode, Episode.id == latest.c.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .join(User, User.id == Episode.clinician_id)
        .where(Client.archived_at.is_(None))
        .order_by(latest.c.last_at.desc(), latest.c.episode_id)
        .limit(per_page)
        .offset((max(page, 1) - 1) * per_page)
    ).all()
    episode_ids = [row[0] for row in rows]
    last: dict[int, Invitation] = {}
    if episode_ids:
        newest = (
            select(func.max(Invitation.id))
            .where(Invitation.episode_id.in_(episode_ids), Invitation.sent_at.is_not(None))
            .group_by(Invitation.episode_id)
        )
        for invitation in session.scalars(select(Invitation).where(Invitation.id.in_(newest))):
            last[invitation.episode_id] = invitation
    items = [
        OverdueClient(
            client_id=client.id,
            first_name=client.first_name,
            last_name=client.last_name,
            code=client.code,
            clinician_name=clinician_name,
            episode_id=episode_id,
            last_session_at=last_at,
            invitation=last.get(episode_id),
            email_ok=bool(client.consent_email and client.email and client.opted_out_at is None),
            sms_ok=bool(client.consent_sms and client.phone and client.opted_out_at is None),
        )
        for episode_id, last_at, client, clinician_name in rows
    ]
    return items, total
