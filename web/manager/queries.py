"""Read-only listing for the manager pages (moves to services/reporting/queries.py when that module exists)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.reporting.models import Report


def list_reports(session: Session, *, limit: int = 60) -> list[Report]:
    """Stored reports, newest period first."""
    return list(session.scalars(select(Report).order_by(Report.period.desc(), Report.scope).limit(limit)))
