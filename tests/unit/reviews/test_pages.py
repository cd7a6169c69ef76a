"""The supervisor's agenda and the review form: who sees what, what completing a review does to its alert, the
follow-up check, and the audit trail."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.models import Alert, AlertAction
from services.audit.models import AuditEvent
from services.db import utcnow
from services.reviews.models import Review
from services.reviews.operations import open_review, review_key
from services.reviews.policy import ReviewPolicy
from tests.unit.reviews.conftest import B3, Practice, alliance_series
from tests.unit.web.conftest import csrf_from, login

POLICY = ReviewPolicy()
LONDON = ZoneInfo("Europe/London")


def unrepaired_review(session: Session, practice: Practice, *, due_in: timedelta = timedelta(days=3)) -> Review:
    """An open UNREPAIRED review of a B3 episode of the practice's clinician."""
    episode = alliance_series(session, practice.clinician, B3)
    alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id))
    assert alert is not None
    review = open_review(
        session,
        reason="UNREPAIRED",
        key=review_key("UNREPAIRED", alert.id),
        episode_id=episode.id,
        alert_id=alert.id,
        now=utcnow(),
        policy=POLICY,
        tz=LONDON,
        trigger={"alert_id": alert.id, "sessions_open": 3, "baseline": 37.0, "score": 32.0},
        due_at=utcnow() + due_in,
    )
    assert review is not None
    session.flush()
    return review


def sign_in(client: FlaskClient, user: User) -> None:
    assert login(client, user.email).status_code == 302


def submit(client: FlaskClient, review_id: int, **fields: str) -> tuple[int, str]:
    page = client.get(f"/reviews/{review_id}")
    assert page.status_code == 200
    data = {"csrf_token": csrf_from(page.get_data(as_text=True)), **fields}
    response = client.post(f"/reviews/{review_id}", data=data)
    return response.status_code, response.get_data(as_text=True)


GOOD = {
    "what_happened": "The client felt the homework was imposed.",
    "component": "mutual_goals",
    "clinician_tried": "Asked about it once.",
    "plan": "Choose the focus together next session.",
}


def test_the_agenda_lists_the_teams_reviews_by_due_date_with_the_chart(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    later = unrepaired_review(session, practice, due_in=timedelta(days=4))
    sooner = unrepaired_review(session, practice, due_in=timedelta(days=1))
    overdue = unrepaired_review(session, practice, due_in=timedelta(days=-1))
    sign_in(client, practice.supervisor)
    page = client.get("/reviews/").get_data(as_text=True)
    positions = [page.index(f'href="/reviews/{r.id}"') for r in (overdue, sooner, later)]
    assert positions == sorted(positions)
    assert "Overdue" in page
    assert f"/clinician/clients/{later.episode.client_id}/chart?episode={later.episode_id}" in page
    assert "Rupture not repaired" in page


def test_another_teams_supervisor_neither_sees_nor_opens_the_review(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    review = unrepaired_review(session, practice)
    sign_in(client, practice.south_supervisor)
    assert f"/reviews/{review.id}" not in client.get("/reviews/").get_data(as_text=True)
    assert client.get(f"/reviews/{review.id}").status_code == 404


def test_clinicians_and_front_desk_may_not_use_the_agenda(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    review = unrepaired_review(session, practice)
    sign_in(client, practice.clinician)
    assert client.get("/reviews/").status_code == 403
    assert client.get(f"/reviews/{review.id}").status_code == 403


def test_a_manager_sees_only_reviews_assigned_to_them_and_no_chart_link(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    mine = unrepaired_review(session, practice)
    other = unrepaired_review(session, practice)
    mine.reviewer_id = practice.manager.id
    session.flush()
    sign_in(client, practice.manager)
    page = client.get("/reviews/").get_data(as_text=True)
    assert f"/reviews/{mine.id}" in page
    assert f"/reviews/{other.id}" not in page
    assert "/chart" not in page
    assert client.get(f"/reviews/{other.id}").status_code == 404


def test_opening_a_review_is_audited_as_a_view_of_the_client(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    review = unrepaired_review(session, practice)
    sign_in(client, practice.supervisor)
    page = client.get(f"/reviews/{review.id}").get_data(as_text=True)
    assert "1. What happened in the partnership?" in page
    assert "stayed below its baseline for 3 sessions" in page
    event = session.scalar(
        select(AuditEvent).where(AuditEvent.action == "client_viewed", AuditEvent.actor_id == practice.supervisor.id)
    )
    assert event is not None
    assert event.detail == {"what": f"review:{review.id}"}


def test_a_repaired_outcome_records_the_review_and_resolves_the_alert(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    review = unrepaired_review(session, practice)
    sign_in(client, practice.supervisor)
    status, _ = submit(client, review.id, **GOOD, outcome="repaired")
    assert status == 303
    session.expire_all()
    session.refresh(review)
    assert (review.status, review.outcome, review.completed_by_id) == ("completed", "repaired", practice.supervisor.id)
    assert review.form["component"] == "mutual_goals"
    assert review.form["trigger"]["sessions_open"] == 3  # what opened it is kept
    alert = session.get(Alert, review.alert_id)
    assert alert is not None
    assert (alert.status, alert.resolution_reason, alert.resolved_by_id) == (
        "resolved",
        "repaired",
        practice.supervisor.id,
    )
    resolved = session.scalar(
        select(AlertAction).where(AlertAction.alert_id == alert.id, AlertAction.action == "resolved")
    )
    assert resolved is not None
    assert resolved.text is not None
    assert resolved.text.startswith("Case review (unrepaired): repaired or resolved.")
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.actor_id == practice.supervisor.id)))
    assert {"review_completed", "alert_resolved"} <= actions


def test_a_plan_keeps_the_alert_open_with_the_plan_on_it_and_a_follow_up_date_opens_a_check(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    review = unrepaired_review(session, practice)
    follow_up_day = (utcnow() + timedelta(days=14)).date()
    sign_in(client, practice.supervisor)
    status, _ = submit(client, review.id, **GOOD, outcome="plan_agreed", follow_up_on=follow_up_day.isoformat())
    assert status == 303
    session.expire_all()
    alert = session.get(Alert, review.alert_id)
    assert alert is not None
    assert alert.status == "acknowledged"
    note = session.scalar(select(AlertAction).where(AlertAction.alert_id == alert.id, AlertAction.action == "note"))
    assert note is not None
    assert "Plan: Choose the focus together next session." in (note.text or "")
    (follow_up,) = session.scalars(select(Review).where(Review.reason == "FOLLOW_UP")).all()
    assert follow_up.key == f"follow_up:review:{review.id}"
    assert (follow_up.alert_id, follow_up.episode_id, follow_up.reviewer_id) == (
        review.alert_id,
        review.episode_id,
        practice.supervisor.id,
    )
    local_due = follow_up.due_at.astimezone(LONDON)
    assert (local_due.date(), local_due.hour) == (follow_up_day, 17)
    agenda = client.get("/reviews/").get_data(as_text=True)
    assert "Follow-up check" in agenda


def test_bad_answers_get_a_clear_message_and_change_nothing(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    review = unrepaired_review(session, practice)
    sign_in(client, practice.supervisor)
    cases = [
        ({**GOOD, "what_happened": " ", "outcome": "repaired"}, "Please write what happened."),
        ({**GOOD, "plan": "", "outcome": "plan_agreed"}, "Please write the plan."),
        ({**GOOD, "outcome": "shrug"}, "Choose an outcome"),
        ({**GOOD, "component": "vibes", "outcome": "repaired"}, "Choose the component"),
        ({**GOOD, "outcome": "repaired", "follow_up_on": "2020-01-01"}, "A follow-up date must be after today."),
        ({**GOOD, "outcome": "repaired", "follow_up_on": "soon"}, "must be a date"),
    ]
    for fields, message in cases:
        status, page = submit(client, review.id, **fields)
        assert status == 400, fields
        assert message in page
        assert "The client felt the homework was imposed." in page or not fields["what_happened"].strip()
    session.expire_all()
    stored = session.get(Review, review.id)
    assert stored is not None
    assert stored.status == "open"
    alert = session.get(Alert, review.alert_id)
    assert alert is not None
    assert alert.status == "open"


def test_a_review_is_completed_once(client: FlaskClient, session: Session, practice: Practice) -> None:
    review = unrepaired_review(session, practice)
    sign_in(client, practice.supervisor)
    page = client.get(f"/reviews/{review.id}").get_data(as_text=True)
    token = csrf_from(page)
    first = client.post(f"/reviews/{review.id}", data={"csrf_token": token, **GOOD, "outcome": "repaired"})
    assert first.status_code == 303
    second = client.post(f"/reviews/{review.id}", data={"csrf_token": token, **GOOD, "outcome": "not_a_concern"})
    assert second.status_code == 400
    assert "already completed" in second.get_data(as_text=True)
    session.expire_all()
    stored = session.get(Review, review.id)
    assert stored is not None
    assert stored.outcome == "repaired"
    completed = session.scalars(select(AuditEvent).where(AuditEvent.action == "review_completed")).all()
    assert len(completed) == 1


def test_a_completed_review_shows_what_was_recorded(client: FlaskClient, session: Session, practice: Practice) -> None:
    review = unrepaired_review(session, practice)
    sign_in(client, practice.supervisor)
    submit(client, review.id, **GOOD, outcome="client_ended")
    page = client.get(f"/reviews/{review.id}").get_data(as_text=True)
    assert "Recorded" in page
    assert "The client ended therapy" in page
    assert 'name="what_happened"' not in page


def test_a_deterioration_review_shows_why_in_numbers(client: FlaskClient, session: Session, practice: Practice) -> None:
    from services.reviews.operations import open_due_reviews
    from services.signals import DEFAULT_SETTINGS
    from tests.unit.reviews.conftest import phq9_series

    phq9_series(session, practice.clinician, [8, 18])
    (review,) = open_due_reviews(session, now=utcnow(), policy=POLICY, tz=LONDON, settings=DEFAULT_SETTINGS)
    sign_in(client, practice.supervisor)
    page = client.get(f"/reviews/{review.id}").get_data(as_text=True)
    assert "Reliable deterioration" in page
    assert "PHQ-9 went from 8 to 18: worse by 10 (reliable change 6)." in page


def test_a_spanish_supervisor_sees_the_review_forms_errors_in_spanish(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    review = unrepaired_review(session, practice)
    practice.supervisor.language = "es"
    session.flush()
    sign_in(client, practice.supervisor)
    far = (utcnow() + timedelta(days=POLICY.follow_up_max_days + 30)).date().isoformat()
    cases = [
        ({**GOOD, "what_happened": " ", "outcome": "repaired"}, "Escriba qué ocurrió, por favor.", "Please write"),
        ({**GOOD, "plan": "", "outcome": "plan_agreed"}, "Escriba el plan, por favor.", "Please write"),
        ({**GOOD, "outcome": "shrug"}, "Elija un resultado: repaired, plan_agreed", "Choose an outcome"),
        (
            {**GOOD, "component": "vibes", "outcome": "repaired"},
            "Elija el componente de la colaboración: rapport, mutual_goals",
            "Choose the component",
        ),
        ({**GOOD, "plan": "x" * 2001, "outcome": "repaired"}, "El plan debe tener menos de 2000 caracteres.", "keep"),
        (
            {**GOOD, "outcome": "repaired", "follow_up_on": "soon"},
            "La fecha de seguimiento debe ser una fecha (AAAA-MM-DD).",
            "must be a date",
        ),
        (
            {**GOOD, "outcome": "repaired", "follow_up_on": far},
            f"La fecha de seguimiento debe estar dentro de los próximos {POLICY.follow_up_max_days} días.",
            "must be within",
        ),
    ]
    for fields, spanish, english in cases:
        status, page = submit(client, review.id, **fields)
        assert status == 400, fields
        assert spanish in page, fields
        assert english not in page, fields
    session.expire_all()
    stored = session.get(Review, review.id)
    assert stored is not None
    assert stored.status == "open"


def test_the_alerts_reason_is_in_the_readers_language_on_the_agenda_and_the_review(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    from services.alerts.summary import summarize_alert

    review = unrepaired_review(session, practice)
    alert = session.get(Alert, review.alert_id)
    assert alert is not None
    english = summarize_alert(alert.kind, alert.evidence, language="en")
    spanish = summarize_alert(alert.kind, alert.evidence, language="es")
    assert english != spanish
    sign_in(client, practice.supervisor)
    assert english in client.get("/reviews/").get_data(as_text=True)
    assert english in client.get(f"/reviews/{review.id}").get_data(as_text=True)
    practice.supervisor.language = "es"
    session.flush()
    for path in ("/reviews/", f"/reviews/{review.id}"):
        page = client.get(path).get_data(as_text=True)
        assert spanish in page, path
        assert english not in page, path


def test_every_review_form_message_has_a_translation() -> None:
    """Each message a ReviewError can carry (services' and the view's) is marked and has Spanish in the catalog."""
    import ast
    import inspect

    from babel.messages.pofile import read_po

    from services.reviews import operations
    from web.app import WEB_DIR
    from web.reviews import views

    def strings(node: ast.expr) -> set[str]:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "N_":
            return strings(node.args[0])
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.IfExp):
            return strings(node.body) | strings(node.orelse)
        return set()

    templates: set[str] = set()
    for module in (operations, views):
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id == "ReviewError":
                candidates = node.args[:1]
            elif node.func.id == "_clean":
                candidates = [k.value for k in node.keywords if k.arg in ("missing", "too_long")]
            else:
                continue
            for candidate in candidates:
                templates |= strings(candidate)
    assert len(templates) >= 10
    with (WEB_DIR / "translations" / "es" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        spanish = {m.id: m.string for m in read_po(fh) if m.id and m.string}
    assert sorted(templates - set(spanish)) == []


def main_navigation(page: str) -> str:
    """The top menu of a staff page (the <nav> labelled Main, or Principal in Spanish)."""
    match = re.search(r'<nav aria-label="(?:Main|Principal)">(.*?)</nav>', page, re.S)
    assert match, "no main navigation on the page"
    return match.group(1)


def test_a_supervisor_has_the_case_review_agenda_in_the_menu(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    sign_in(client, practice.supervisor)
    menu = main_navigation(client.get("/supervisor/").get_data(as_text=True))
    assert '<a href="/reviews/">Case reviews</a>' in menu
    on_the_agenda = main_navigation(client.get("/reviews/").get_data(as_text=True))
    assert '<a href="/reviews/" aria-current="page">Case reviews</a>' in on_the_agenda


def test_a_manager_has_the_case_review_agenda_in_the_menu(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    sign_in(client, practice.manager)
    assert '<a href="/reviews/">Case reviews</a>' in main_navigation(client.get("/manager/").get_data(as_text=True))


def test_front_desk_has_no_case_review_link(client: FlaskClient, session: Session, staff: Callable[..., User]) -> None:
    sign_in(client, staff("front_desk"))
    home = client.get("/frontdesk/").get_data(as_text=True)
    assert "Clients" in main_navigation(home)
    assert "/reviews/" not in home
    assert "Case reviews" not in home


def test_the_case_review_menu_link_is_in_spanish_for_a_spanish_supervisor(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    practice.supervisor.language = "es"
    session.flush()
    sign_in(client, practice.supervisor)
    menu = main_navigation(client.get("/supervisor/").get_data(as_text=True))
    assert '<a href="/reviews/">Revisiones de caso</a>' in menu
