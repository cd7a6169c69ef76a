"""Alert reads, scoped to what the asking staff member may see.

- clinician: alerts on episodes where they are the clinician;
- supervisor: alerts on episodes of every clinician in their team (themselves included); with no team, their own;
- front desk, manager, admin, and anyone inactive: none (managers see rates in reports, not alerts).

An alert outside the scope is reported as missing (None), so a page answers 404 and does not confirm it exists.
The scope is `services.clients.queries.episode_scope`, the one rule for who sees clinical content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session, selectinload

from services.accounts.models import User
from services.alerts.evaluation import ALERT_KINDS
from services.alerts.models import Alert, AlertAction, SignalRecord
from services.alerts.repair import RepairSuggestion, suggestions_for_evidence
from services.alerts.summary import describe_signal, summarize_alert
from services.clients.models import Client, Episode
from services.clients.queries import episode_scope

# Risk first, then alliance, then outcome (issue 5: what a clinician should look at first).
_KIND_RANK = case({kind: rank for rank, kind in enumerate(ALERT_KINDS)}, value=Alert.kind, else_=len(ALERT_KINDS))


@dataclass(frozen=True)
class AlertListItem:
    """One row of an alert list: the alert and who it is about (for staff who may see it)."""

    alert: Alert
    client_id: int
    client_code: str
    client_name: str
    episode_id: int
    clinician_id: int

    def summary(self, language: str = "en") -> str:
        """Return the alert's one-line reason in a language."""
        if language == "en" and self.alert.summary:
            return self.alert.summary
        return summarize_alert(self.alert.kind, self.alert.evidence, language=language)


@dataclass(frozen=True)
class EvidenceLine:
    """One piece of an alert's evidence, for display: the session, the rule, a plain sentence and the numbers."""

    session: int | None
    kind: str
    at: str | None
    text: str
    numbers: dict[str, Any]


@dataclass(frozen=True)
class AlertDetail:
    """An alert with everything its page shows: who, why (evidence lines), what was done, what to try."""

    alert: Alert
    client: Client
    episode: Episode
    actions: list[AlertAction]
    signals: list[SignalRecord]
    evidence: list[EvidenceLine] = field(default_factory=list)
    suggestions: list[RepairSuggestion] = field(default_factory=list)


def list_open_alerts_for(session: Session, user: User, *, limit: int | None = None) -> list[AlertListItem]:
    """Non-resolved alerts user may see: risk, then alliance, then outcome; newest first within a kind (one query)."""
    stmt = (
        select(Alert, Client.id, Client.code, Client.first_name, Client.last_name, Episode.id, Episode.clinician_id)
        .join(Episode, Episode.id == Alert.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(Alert.status != "resolved", episode_scope(user))
        .order_by(_KIND_RANK, Alert.opened_at.desc(), Alert.id.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        AlertListItem(
            alert=alert,
            client_id=client_id,
            client_code=code,
            client_name=f"{first} {last}",
            episode_id=episode_id,
            clinician_id=clinician_id,
        )
        for alert, client_id, code, first, last, episode_id, clinician_id in session.execute(stmt)
    ]


def get_alert_for(
    session: Session, user: User, alert_id: int, *, language: str = "en", for_update: bool = False
) -> AlertDetail | None:
    """The alert with its evidence, actions and repair suggestions, or None when user may not see it.

    Pass for_update=True before acting on it (acknowledge, resolve): the alert row is locked on PostgreSQL, so an
    evaluation adding evidence or repairing it at the same moment waits rather than being overwritten.
    """
    stmt = (
        select(Alert, Episode, Client)
        .join(Episode, Episode.id == Alert.episode_id)
        .join(Client, Client.id == Episode.client_id)
        .where(Alert.id == alert_id, episode_scope(user))
        .options(selectinload(Alert.actions))
    )
    if for_update:
        stmt = stmt.with_for_update(of=Alert).execution_options(populate_existing=True)
    row = session.execute(stmt).one_or_none()
    if row is None:
        return None
    alert, episode, client = row
    administration_ids = sorted(
        {int(entry["administration_id"]) for entry in alert.evidence if "administration_id" in entry}
    )
    signals = (
        list(
            session.scalars(
                select(SignalRecord)
                .where(SignalRecord.administration_id.in_(administration_ids))
                .order_by(SignalRecord.session, SignalRecord.id)
            )
        )
        if administration_ids
        else []
    )
    return AlertDetail(
        alert=alert,
        client=client,
        episode=episode,
        actions=list(alert.actions),
        signals=signals,
        evidence=evidence_lines(alert.evidence, language=language),
        suggestions=suggestions_for_evidence(alert.evidence) if alert.kind == "alliance" else [],
    )


def evidence_lines(entries: Sequence[dict[str, Any]], *, language: str = "en") -> list[EvidenceLine]:
    """Turn an alert's evidence entries into plain sentences with their numbers, in session order."""
    lines = []
    for entry in entries:
        numbers = dict(entry.get("evidence") or {})
        numbers.setdefault("session", entry.get("session"))
        kind = str(entry.get("kind", ""))
        lines.append(
            EvidenceLine(
                session=entry.get("session"),
                kind=kind,
                at=entry.get("at"),
                text=describe_signal(kind, numbers, instrument=str(entry.get("instrument", "")), language=language),
                numbers=numbers,
            )
        )
    return lines
