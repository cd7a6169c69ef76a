"""Supervisor: the team's caseload at a glance, and the team's clients' records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, render_template

from services.accounts.models import Role
from services.alerts.queries import caseload_page, list_open_alerts_for
from services.clients.queries import CaseloadRow, caseload, team_members
from web.access import allow
from web.client_pages import show_client_record
from web.clinician.presenting import clinical_context
from web.clinician.views import CASELOAD_TARGET, HOME_ALERTS, page_number, page_size
from web.htmx import wants_fragment
from web.login import current_account
from web.request_db import db_session

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor")
bp.context_processor(clinical_context)


@dataclass(frozen=True)
class MemberSummary:
    """One team member's line on the overview."""

    user_id: int
    name: str
    role: str
    open_episodes: int
    open_alerts: int
    last_measure_at: datetime | None


def summarise(members: list[tuple[int, str, str]], rows: list[CaseloadRow]) -> list[MemberSummary]:
    """Per-member counts from the team's caseload rows."""
    summaries = []
    for user_id, name, role in members:
        mine = [row for row in rows if row.clinician_id == user_id]
        measured = [row.last_measure_at for row in mine if row.last_measure_at is not None]
        summaries.append(
            MemberSummary(
                user_id=user_id,
                name=name,
                role=role,
                open_episodes=len(mine),
                open_alerts=sum(row.open_alerts for row in mine),
                last_measure_at=max(measured) if measured else None,
            )
        )
    return summaries


@bp.get("/")
@allow(Role.SUPERVISOR)
def home() -> str:
    """The team's open alerts first, each member's counts, then the team caseload with a status per client."""
    account = current_account()
    session = db_session()
    page = caseload_page(session, account, page=page_number(), per_page=page_size())
    if wants_fragment(CASELOAD_TARGET):
        return render_template(
            "clinician/_caseload.html",
            caseload=page,
            endpoint="supervisor.home",
            client_endpoint="supervisor.client",
            show_clinician=True,
        )
    members = team_members(session, account)
    rows = caseload(session, clinician_ids=[member.id for member in members])
    summaries = summarise([(m.id, m.name, m.role) for m in members], rows)
    team_name = account.team.name if account.team is not None else None
    alerts = list_open_alerts_for(session, account, limit=HOME_ALERTS + 1)
    return render_template(
        "supervisor/home.html",
        summaries=summaries,
        caseload=page,
        team_name=team_name,
        alerts=alerts[:HOME_ALERTS],
        more_alerts=len(alerts) > HOME_ALERTS,
        clinician_names={m.id: m.name for m in members},
    )


@bp.get("/clients/<int:client_id>")
@allow(Role.SUPERVISOR)
def client(client_id: int) -> str:
    """A team client's record (404 outside the team; audited)."""
    return show_client_record(client_id, template="supervisor/client.html", what="supervisor_record")
