"""Was the feedback used? The fidelity figures against a fixture counted by hand (October 2026, Europe/London).

Clinician A:
- episode 1 (sessions 5, 12, 19 (cancelled) and 26 October, and 20 November, after "now"):
  a1 PHQ-9 5 Oct 08:00, chart opened 08:30, session 09:00                        -> viewed
  a2 Partnership Check 5 Oct 10:00, brief opened only after the 12 Oct session  -> not viewed
  a3 PHQ-9 12 Oct 08:00; views in its window by the supervisor, of the record and
     of the shared view only (none of them counts), a view by A before it        -> not viewed
  a4 Partnership Check 12 Oct 10:00, next session 26 Oct (19 Oct cancelled);
     alert opened 20 Oct                                                         -> viewed
  a5 Partnership Check 26 Oct 10:00: next session not yet begun, not opened      -> left out (undecided)
  the clinician's own rating 12 Oct                                              -> left out (not the client's)
  a0 PHQ-9 28 September                                                          -> another month
- episode 2 (ended 8 Oct): b1 PHQ-9 7 Oct 08:00, brief opened 08:45 before the
  09:00 session -> viewed; b2 7 Oct 10:00, no session after it ever -> left out
- episode 3: a session on 14 Oct with no answers at all -> adds nothing
  => administrations 5, viewed 3.
Briefs: sessions begun in October with answers before them: ep1 5, 12, 26 Oct and ep2 7 Oct = 4 (ep3's has none,
19 Oct is cancelled); discussed: ep1 12 Oct and ep2 7 Oct = 2.
Alerts opened in October: risk R1 (acknowledged after 35 min), risk R2 (after 2 h), alliance (a note after 24 h;
the system's escalation before it is no action), outcome (nothing) -> risk 2 opened, 2 acted on, median 1.29 h,
1 within the 60-minute window; alliance 1/1, 24 h; outcome 1 opened, 0 acted on. A September alert is left out.
Clinician B: one answer, chart opened before the session -> 1 of 1.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.models import Alert, AlertAction
from services.audit.chain import link_event
from services.audit.models import AuditEvent
from services.briefs.models import BriefDiscussion
from services.clients.models import Appointment, Episode
from services.reporting.fidelity import fidelity
from services.reporting.periods import ReportScope, month_of
from services.surveys.administrations import record_administration
from tests.factories import make_appointment, make_client, make_episode, make_user
from tests.unit.alerts.series import PC_ITEMS, phq9_answers

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0, month: int = 10) -> datetime:
    """A UTC instant (October 2026 is BST until the 25th: UTC+1, so 09:00 UTC on the 5th is 10:00 local)."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def view(session: Session, actor: User, client_id: int, what: str, when: datetime) -> None:
    event = AuditEvent(
        at=when, action="client_viewed", actor_id=actor.id, subject_type="client", subject_id=client_id,
        client_id=client_id, detail={"what": what},
    )  # fmt: skip
    link_event(session, event)
    session.add(event)


def answer(session: Session, episode: Episode, code: str, when: datetime, **kw: Any) -> None:
    answers: dict[str, Any] = phq9_answers(10) if code == "PHQ-9" else {**dict.fromkeys(PC_ITEMS, 9), "pc_tension": 0}
    if code == "THERAPIST-PARTNERSHIP-CHECK":
        answers = {f"tpc_{p[3:]}": 9 for p in PC_ITEMS}
    record_administration(
        session, episode_id=episode.id, instrument_code=code, answers=answers, completed_at=when, **kw
    )


def session_at(session: Session, episode: Episode, when: datetime, status: str = "completed") -> Appointment:
    return make_appointment(session, episode=episode, starts_at=when, status=status)


def alert(session: Session, episode: Episode, kind: str, opened: datetime, **kw: Any) -> Alert:
    row = Alert(episode_id=episode.id, kind=kind, opened_at=opened, **kw)
    session.add(row)
    session.flush()
    return row


def act(session: Session, row: Alert, actor: User | None, action: str, when: datetime) -> None:
    session.add(AlertAction(alert_id=row.id, actor_id=actor.id if actor else None, action=action, at=when))


@pytest.fixture
def world(session: Session) -> dict[str, User]:
    """The hand-counted fixture of the module docstring."""
    return build_world(session)


def build_world(session: Session) -> dict[str, User]:
    """The hand-counted fixture of the module docstring (also run on PostgreSQL: tests/integration)."""
    a = make_user(session, role="clinician", team="Team F")
    b = make_user(session, role="clinician", team="Team F")
    supervisor = make_user(session, role="supervisor", team="Team F")
    ep1 = make_episode(session, clinician=a, client=make_client(session), started_on=date(2026, 9, 1))
    ep2 = make_episode(session, clinician=a, client=make_client(session), started_on=date(2026, 9, 1))
    ep3 = make_episode(session, clinician=a, client=make_client(session), started_on=date(2026, 9, 1))
    c1, c2 = ep1.client_id, ep2.client_id
    # Episode 1.
    answer(session, ep1, "PHQ-9", at(28, 8, month=9))
    session_at(session, ep1, at(28, 9, month=9))
    session_at(session, ep1, at(5, 9))
    s2 = session_at(session, ep1, at(12, 9))
    session_at(session, ep1, at(19, 9), status="cancelled")
    session_at(session, ep1, at(26, 9))
    session_at(session, ep1, at(20, 9, month=11), status="scheduled")
    answer(session, ep1, "PHQ-9", at(5, 8))  # a1
    view(session, a, c1, "chart", at(5, 8, 30))
    answer(session, ep1, "PARTNERSHIP-CHECK", at(5, 10))  # a2
    view(session, a, c1, "brief:1", at(12, 10))  # after the 12 Oct session: too late for a2, a3 (and before a4)
    answer(session, ep1, "PHQ-9", at(12, 8))  # a3
    view(session, supervisor, c1, "chart", at(12, 8, 15))
    view(session, a, c1, "clinician_record", at(12, 8, 20))
    view(session, a, c1, "together", at(12, 8, 25))
    answer(session, ep1, "PARTNERSHIP-CHECK", at(12, 10, 5))  # a4 (after the 10:00 view)
    answer(session, ep1, "THERAPIST-PARTNERSHIP-CHECK", at(12, 10, 10), respondent="therapist")
    view(session, a, c1, "alert:99", at(20, 12))
    answer(session, ep1, "PARTNERSHIP-CHECK", at(26, 10))  # a5
    # Episode 2, ended on 8 October.
    e2s1 = session_at(session, ep2, at(7, 9))
    answer(session, ep2, "PHQ-9", at(7, 8))  # b1
    view(session, a, c2, f"brief:{e2s1.id}", at(7, 8, 45))
    answer(session, ep2, "PARTNERSHIP-CHECK", at(7, 10))  # b2
    ep2.ended_on = date(2026, 10, 8)
    # Episode 3: a session and no answers.
    session_at(session, ep3, at(14, 9))
    # Discussions.
    for appointment, episode in ((s2, ep1), (e2s1, ep2)):
        session.add(BriefDiscussion(appointment_id=appointment.id, episode_id=episode.id, clinician_id=a.id))
    # Alerts.
    r1 = alert(session, ep1, "risk", at(5, 8, 5), status="resolved", acknowledged_at=at(5, 8, 40))
    act(session, r1, a, "acknowledged", at(5, 8, 40))
    r2 = alert(session, ep2, "risk", at(7, 8, 5), status="acknowledged", acknowledged_at=at(7, 10, 5))
    act(session, r2, a, "acknowledged", at(7, 10, 5))
    al = alert(session, ep1, "alliance", at(5, 10, 10), status="acknowledged", acknowledged_at=at(6, 10, 10))
    act(session, al, None, "escalated", at(5, 11))
    act(session, al, a, "note", at(6, 10, 10))
    alert(session, ep1, "outcome", at(12, 8, 5))
    old = alert(session, ep3, "outcome", at(20, 8, month=9), status="resolved")
    act(session, old, a, "acknowledged", at(20, 9, month=9))
    # Clinician B.
    ep4 = make_episode(session, clinician=b, client=make_client(session), started_on=date(2026, 9, 1))
    session_at(session, ep4, at(3, 9))
    answer(session, ep4, "PHQ-9", at(3, 8))
    view(session, b, ep4.client_id, "chart", at(3, 8, 10))
    session.flush()
    return {"a": a, "b": b}


def test_fidelity_figures_match_the_hand_count(session: Session, world: dict[str, User]) -> None:
    check_hand_count(session, world)


def check_hand_count(session: Session, world: dict[str, User]) -> None:
    """Assert every figure of October against the hand count."""
    a, b = world["a"], world["b"]
    found = fidelity(session, ReportScope("practice"), month_of("2026-10", LONDON), risk_window_minutes=60, now=NOW)
    rows = {row.clinician_id: row for row in found.rows}
    assert set(rows) == {a.id, b.id}
    mine = rows[a.id]
    assert (mine.administrations, mine.viewed_before_next) == (5, 3)
    assert (mine.briefs, mine.briefs_discussed) == (4, 2)
    assert (mine.risk_alerts, mine.risk_in_window) == (2, 1)
    assert {kind: (use.opened, use.acted_on) for kind, use in mine.alerts.items()} == {
        "risk": (2, 2),
        "alliance": (1, 1),
        "outcome": (1, 0),
    }
    assert mine.alerts["risk"].median_hours == pytest.approx((35 / 60 + 2) / 2)
    assert mine.alerts["alliance"].median_hours == pytest.approx(24)
    assert mine.alerts["outcome"].median_hours is None
    assert (rows[b.id].administrations, rows[b.id].viewed_before_next) == (1, 1)
    assert (found.total.administrations, found.total.viewed_before_next) == (6, 4)
    assert found.median_hours["risk"] == pytest.approx((35 / 60 + 2) / 2)


def test_fidelity_keeps_to_its_scope_and_month(session: Session, world: dict[str, User]) -> None:
    a = world["a"]
    mine = fidelity(
        session, ReportScope("clinician", a.id), month_of("2026-10", LONDON), risk_window_minutes=60, now=NOW
    )
    assert [row.clinician_id for row in mine.rows] == [a.id]
    september = fidelity(session, ReportScope("practice"), month_of("2026-09", LONDON), risk_window_minutes=60, now=NOW)
    (row,) = september.rows
    # a0 (28 Sep 08:00) was never opened before the 28 Sep session; the September alert was acted on after 1 hour.
    assert (row.administrations, row.viewed_before_next) == (1, 0)
    assert row.alerts["outcome"].median_hours == pytest.approx(1)


def test_before_the_next_session_an_opened_answer_counts_and_the_session_does_not(
    session: Session, world: dict[str, User]
) -> None:
    """On 25 October a4's next session (26 October) is still to come: it counts, having been opened on the 20th;
    the 26 October session is no brief yet."""
    early = datetime(2026, 10, 25, 12, tzinfo=UTC)
    found = fidelity(session, ReportScope("practice"), month_of("2026-10", LONDON), risk_window_minutes=60, now=early)
    mine = next(row for row in found.rows if row.clinician_id == world["a"].id)
    assert (mine.administrations, mine.viewed_before_next) == (5, 3)
    assert mine.briefs == 3


def test_an_answer_opened_before_its_next_session_counts_at_once(session: Session, world: dict[str, User]) -> None:
    """a5's next session (20 November) is still to come: opening its brief decides it as viewed straight away."""
    a = world["a"]
    episode = session.scalars(select(Episode).where(Episode.clinician_id == a.id).order_by(Episode.id)).first()
    assert episode is not None
    view(session, a, episode.client_id, "brief:7", datetime(2026, 11, 1, 9, tzinfo=UTC))
    session.flush()
    found = fidelity(session, ReportScope("practice"), month_of("2026-10", LONDON), risk_window_minutes=60, now=NOW)
    mine = next(row for row in found.rows if row.clinician_id == a.id)
    assert (mine.administrations, mine.viewed_before_next) == (6, 4)
