"""Making invitations with live links for survey tests (through the front desk's own token functions)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from services.clients.models import Appointment, Client, Episode
from services.db import utcnow
from services.surveys.invitations import issue_token
from services.surveys.models import Invitation
from tests.factories import make_appointment, make_client, make_episode

PRE = ("PHQ-9", "GAD-7", "GOAL-PROGRESS")
POST = ("PARTNERSHIP-CHECK",)
STATE_INPUT = re.compile(r'name="state" value="([^"]+)"')


@dataclass
class Link:
    """An invitation, its client and episode, and the raw token of its link."""

    invitation: Invitation
    client: Client
    episode: Episode
    appointment: Appointment
    raw: str

    @property
    def path(self) -> str:
        """The survey's path."""
        return f"/s/{self.raw}"


def make_link(
    session: Session,
    *,
    instruments: Sequence[str] = PRE,
    status: str = "sent",
    expires_in: timedelta = timedelta(days=2),
    language: str = "en",
    goals: Sequence[str] = ("Sleep through the night", "Go back to choir practice"),
    channel: str = "email",
    purpose: str | None = None,
    client: Client | None = None,
    episode: Episode | None = None,
    **invitation_fields: Any,
) -> Link:
    """An invitation in a given status with a freshly minted link token."""
    client = client or make_client(session, language=language, first_name="Testa")
    episode = episode or make_episode(session, client=client, goals=list(goals))
    appointment = make_appointment(session, episode=episode, starts_at=utcnow() + timedelta(hours=2))
    now = utcnow()
    invitation = Invitation(
        episode_id=episode.id,
        appointment_id=appointment.id,
        phase="pre" if instruments != POST else "post",
        instruments=list(instruments),
        channel=channel,
        status=status,
        due_at=now,
        sent_at=now if status != "scheduled" else None,
        expires_at=now + expires_in,
        **invitation_fields,
    )
    session.add(invitation)
    session.flush()
    raw = issue_token(session, invitation, purpose=purpose or channel)
    session.commit()
    return Link(invitation=invitation, client=client, episode=episode, appointment=appointment, raw=raw)


def state_of(html: str) -> str:
    """The encrypted progress field of a survey page."""
    match = STATE_INPUT.search(html)
    assert match, "no state field on the page"
    return match.group(1).replace("&#34;", '"').replace("&amp;", "&")


def all_zero(instrument: str) -> dict[str, str]:
    """Form answers of 0 to every required item of an instrument (the lowest answer)."""
    from services.measures import load_instrument

    return {item.id: "0" for item in load_instrument(instrument).items if item.required}


def answers_for(instrument: str, goals: int = 2, **overrides: str) -> dict[str, str]:
    """A complete page of answers for an instrument (goals: how many goals the episode has)."""
    values = all_zero(instrument)
    if instrument == "GOAL-PROGRESS":
        values = {f"goal_{i}": "5" for i in range(1, goals + 1)}
    if instrument == "PARTNERSHIP-CHECK":
        values = {k: "8" for k in values}
    values.update(overrides)
    return values


def when(days: float = 0) -> datetime:
    """A time relative to now (UTC)."""
    return datetime.now(UTC) + timedelta(days=days)


def post_step(client: Any, link: Link, html: str, answers: Mapping[str, str], **extra: str) -> Any:
    """Submit the step shown in html with answers, as the browser would."""
    data = {"state": state_of(html), "lang": extra.pop("lang", "en"), "action": extra.pop("action", "next")}
    data.update(answers)
    data.update(extra)
    return client.post(link.path, data=data)
