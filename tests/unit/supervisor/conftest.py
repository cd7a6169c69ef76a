"""Fixtures for the supervisor's overview: staff and login (shared with the clinician pages) and quick alert rows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from services.alerts.models import Alert
from services.clients.models import Episode
from services.db import utcnow
from tests.unit.clinician.conftest import _quick_argon2, signed_in, staff  # noqa: F401  (fixtures used by name)


def quick_alert(session: Session, episode: Episode, kind: str, *, days_ago: float = 0, status: str = "open") -> Alert:
    """An alert row as the evaluation writes it (for lists that need many alerts fast)."""
    alert = Alert(
        episode_id=episode.id,
        kind=kind,
        status=status,
        severity="red" if kind == "risk" else "amber",
        summary=f"Synthetic {kind} alert",
        opened_at=utcnow() - timedelta(days=days_ago),
    )
    session.add(alert)
    session.flush()
    return alert
