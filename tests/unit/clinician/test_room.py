"""Feedback in the room: today's sessions on the clinician's home, the brief per session, "discussed with the
client", and the view shared with the client (with a sentinel in every staff-only field)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.models import Alert
from services.alerts.operations import add_alert_note, record_repair_step
from services.audit.models import AuditEvent
from services.briefs.models import BriefDiscussion, GoalRevision
from services.clients.models import Appointment, Episode
from services.config import Settings
from services.surveys.administrations import record_administration
from services.surveys.models import Administration
from tests.factories import make_appointment, make_client, make_episode
from tests.unit.alerts.series import PC_ITEMS, phq9_answers, split_total
from tests.unit.clinician.conftest import count_queries, evaluate, login, page_csrf


def _local_noon(settings: Settings, day: date | None = None) -> datetime:
    tz = settings.tz
    day = day or datetime.now(UTC).astimezone(tz).date()
    return datetime.combine(day, time(12), tzinfo=tz).astimezone(UTC)


def _phq9(session: Session, episode: Episode, total: int, at: datetime, *, item9: int = 0) -> Administration:
    return record_administration(
        session,
        episode_id=episode.id,
        instrument_code="PHQ-9",
        answers=phq9_answers(total, item9=item9),
        completed_at=at,
    )


def _check(
    session: Session, episode: Episode, items: list[int], at: datetime, *, tension: int = 0, comment: str | None = None
) -> Administration:
    answers: dict[str, Any] = dict(zip(PC_ITEMS, items, strict=True))
    answers["pc_tension"] = tension
    if comment is not None:
        answers["pc_comment"] = comment
    return record_administration(
        session, episode_id=episode.id, instrument_code="PARTNERSHIP-CHECK", answers=answers, completed_at=at
    )


def _goals(session: Session, episode: Episode, values: list[int], at: datetime) -> Administration:
    return record_administration(
        session,
        episode_id=episode.id,
        instrument_code="GOAL-PROGRESS",
        answers={f"goal_{i + 1}": v for i, v in enumerate(values)},
        not_applicable=[f"goal_{i + 1}" for i in range(len(values), 3)],
        completed_at=at,
    )


def _episode_with_history(session: Session, clinician: User, settings: Settings, **client_kw: Any) -> Appointment:
    """Four weekly sessions before today's: PHQ-9 18 -> 16 -> 15 -> 9 (a reliable change since the last one), the
    partnership at 9s then mutual goals down to 4 with some tension and a comment, two goals rated."""
    episode = make_episode(session, clinician=clinician, client=make_client(session, **client_kw))
    episode.goals = ["Sleep through the night", "Walk every day"]
    today = _local_noon(settings)
    for weeks_ago, (phq, items, goal_values) in zip(
        (4, 3, 2, 1),
        (
            (18, [9, 9, 9, 9], [2, 1]),
            (16, [9, 9, 9, 9], [3, 2]),
            (15, [9, 9, 8, 9], [4, 2]),
            (9, [9, 4, 8, 9], [6, 3]),
        ),
        strict=True,
    ):
        held = make_appointment(
            session, episode=episode, starts_at=today - timedelta(weeks=weeks_ago), status="completed"
        )
        _phq9(session, episode, phq, held.starts_at - timedelta(hours=1))
        _goals(session, episode, goal_values, held.starts_at - timedelta(minutes=50))
        last = weeks_ago == 1
        _check(
            session,
            episode,
            items,
            held.ends_at + timedelta(minutes=5),
            tension=2 if last else 0,
            comment="More time on homework, please" if last else None,
        )
    return make_appointment(session, episode=episode, starts_at=today)


def test_home_lists_todays_sessions_with_a_link_to_each_brief(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], test_settings: Settings
) -> None:
    me = signed_in("clinician")
    today = _episode_with_history(session, me, test_settings, first_name="Ada", last_name="Today")
    tomorrow_episode = make_episode(session, clinician=me, client=make_client(session, last_name="Tomorrow"))
    make_appointment(session, episode=tomorrow_episode, starts_at=_local_noon(test_settings) + timedelta(days=1))
    other = make_episode(session, client=make_client(session, last_name="Elsewhere"))
    make_appointment(session, episode=other, starts_at=_local_noon(test_settings))
    html = client.get("/clinician/").get_data(as_text=True)
    assert f"/clinician/sessions/{today.id}/brief" in html
    assert "Ada Today" in html
    assert "Tomorrow" not in html.split('id="today-heading"')[1].split("</section>")[0]
    assert "Elsewhere" not in html
    assert "1 new answer<" in html  # since the last session began: its Partnership Check (PHQ-9 and goals came before)


def test_brief_says_what_changed_in_plain_words_then_numbers_and_is_audited(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], test_settings: Settings
) -> None:
    me = signed_in("clinician")
    appointment = _episode_with_history(session, me, test_settings)
    episode = appointment.episode
    alert = Alert(episode_id=episode.id, kind="alliance", summary="partnership dropped", status="acknowledged")
    session.add(alert)
    session.flush()
    record_repair_step(session, alert, actor=me, suggestion_key=None, text="Asked what to change about homework")
    response = client.get(f"/clinician/sessions/{appointment.id}/brief")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # PHQ-9 15 -> 9 is a reliable improvement (RC 6) since last time; 18 -> 9 since the start.
    assert "Better, by more than the usual ups and downs (a reliable change)." in html
    assert "Now 9, last time 15, at the start 18; reliable change 6 points." in html
    assert "question 9 (risk item): 0" in html
    # Mutual goals at 4 against a usual level of 9: below; the others at their usual level.
    assert "<strong>mutual goals</strong>: below the client&#39;s usual level" in html
    assert "4 of 10; usually 9" in html
    assert "Some tension" in html
    assert "More time on homework, please" in html
    assert "“Sleep through the night”: 6 of 10 (last time 4)" in html
    assert "Acknowledged" in html
    assert f"/clinician/alerts/{alert.id}" in html
    assert "Asked what to change about homework" in html
    assert html.index("Better, by more") < html.index("Now 9, last time 15")  # words first, numbers after
    view = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "client_viewed", AuditEvent.actor_id == me.id)
    ).all()[-1]
    assert view.client_id == episode.client_id
    assert view.detail == {"what": f"brief:{appointment.id}"}


def test_marking_discussed_is_one_tap_stored_once_and_audited(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], test_settings: Settings
) -> None:
    me = signed_in("clinician")
    appointment = _episode_with_history(session, me, test_settings)
    path = f"/clinician/sessions/{appointment.id}/brief"
    csrf = page_csrf(client, path)
    response = client.post(f"{path}/discussed", data={"csrf_token": csrf, "note": "  talked about homework  "})
    assert response.status_code == 303
    again = client.post(f"{path}/discussed", data={"csrf_token": csrf})
    assert again.status_code == 303
    rows = session.scalars(select(BriefDiscussion).where(BriefDiscussion.appointment_id == appointment.id)).all()
    assert len(rows) == 1
    assert rows[0].note == "talked about homework"
    assert rows[0].clinician_id == me.id
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "brief_discussed")).all()
    assert len(events) == 1
    assert events[0].subject_id == appointment.id
    html = client.get(path).get_data(as_text=True)
    assert "Discussed on" in html
    assert "talked about homework" in html
    assert f'action="{path}/discussed"' not in html
    home = client.get("/clinician/").get_data(as_text=True)
    assert ">discussed<" in home


def test_a_supervisor_reads_the_brief_but_does_not_mark_it(
    app: Flask, session: Session, staff: Callable[..., User], test_settings: Settings
) -> None:
    clinician = staff("clinician", team="Team Room")
    supervisor = staff("supervisor", team="Team Room")
    appointment = _episode_with_history(session, clinician, test_settings)
    browser = app.test_client()
    login(browser, supervisor.email)
    path = f"/clinician/sessions/{appointment.id}/brief"
    html = browser.get(path).get_data(as_text=True)
    assert "Not marked as discussed yet." in html
    csrf = page_csrf(browser, path)
    assert browser.post(f"{path}/discussed", data={"csrf_token": csrf}).status_code == 404
    assert session.scalar(select(BriefDiscussion.id)) is None


def test_the_brief_is_reachable_from_the_chart_and_the_alert(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], test_settings: Settings
) -> None:
    me = signed_in("clinician")
    appointment = _episode_with_history(session, me, test_settings)
    episode = appointment.episode
    alert = Alert(episode_id=episode.id, kind="outcome", summary="x")
    session.add(alert)
    session.flush()
    link = f"/clinician/episodes/{episode.id}/brief"
    assert link in client.get(f"/clinician/clients/{episode.client_id}/chart").get_data(as_text=True)
    assert link in client.get(f"/clinician/alerts/{alert.id}").get_data(as_text=True)
    html = client.get(link).get_data(as_text=True)
    assert f"/clinician/sessions/{appointment.id}/brief/discussed" in html  # today's session is the next one


def _plant_staff_only(session: Session, clinician: User, test_settings: Settings) -> tuple[Appointment, list[str]]:
    """A client with a sentinel string in every staff-only field, and another client with sentinels of their own."""
    appointment = _episode_with_history(session, clinician, test_settings, first_name="Bea", language="es")
    episode = appointment.episode
    sentinels = {
        "alert_summary": "SENTINEL-ALERT-SUMMARY",
        "alert_evidence": "SENTINEL-ALERT-EVIDENCE",
        "alert_note": "SENTINEL-ALERT-NOTE",
        "repair_text": "SENTINEL-REPAIR-TEXT",
        "brief_note": "SENTINEL-BRIEF-NOTE",
        "therapist_note": "SENTINEL-THERAPIST-NOTE",
        "client_code": episode.client.code,
        "last_name": "SENTINEL-SURNAME",
        "other_client": "SENTINEL-OTHER-CLIENT",
        "other_goal": "SENTINEL-OTHER-GOAL",
    }
    episode.client.last_name = sentinels["last_name"]
    alert = Alert(
        episode_id=episode.id,
        kind="risk",
        severity="red",
        summary=sentinels["alert_summary"],
        evidence=[{"kind": "RISK", "text": sentinels["alert_evidence"], "instrument": "PHQ-9"}],
    )
    partnership = Alert(episode_id=episode.id, kind="alliance", summary=sentinels["alert_summary"])
    session.add_all([alert, partnership])
    session.flush()
    add_alert_note(session, alert, actor=clinician, text=sentinels["alert_note"])
    record_repair_step(session, partnership, actor=clinician, text=sentinels["repair_text"])
    session.add(
        BriefDiscussion(
            appointment_id=appointment.id,
            episode_id=episode.id,
            clinician_id=clinician.id,
            note=sentinels["brief_note"],
        )
    )
    # A risk answer (item 9 above 0) and the clinician's own rating with a note.
    _phq9(session, episode, 12, appointment.starts_at - timedelta(hours=2), item9=2)
    record_administration(
        session,
        episode_id=episode.id,
        instrument_code="THERAPIST-PARTNERSHIP-CHECK",
        answers={
            "tpc_rapport": 9,
            "tpc_mutual_goals": 9,
            "tpc_realistic_goals": 9,
            "tpc_shared_responsibility": 9,
            "tpc_note": sentinels["therapist_note"],
        },
        appointment_id=appointment.id,
        respondent="therapist",
        completed_at=appointment.starts_at - timedelta(days=7) + timedelta(hours=1),
    )
    other = make_episode(
        session, clinician=clinician, client=make_client(session, first_name=sentinels["other_client"])
    )
    other.goals = [sentinels["other_goal"]]
    _phq9(session, other, 27, appointment.starts_at - timedelta(hours=3), item9=3)
    session.flush()
    return appointment, list(sentinels.values())


# Words of the statistics and of the alerts that the shared view never uses (English and Spanish).
JARGON = (
    "reliable",
    "fiable",
    "cutoff",
    "threshold",
    "umbral",
    "SD",
    "alert",
    "alerta",
    "risk",
    "riesgo",
    "RCI",
    "baseline",
    "deviation",
    "desviación",
)


def test_the_shared_view_shows_nothing_staff_only(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], test_settings: Settings
) -> None:
    me = signed_in("clinician")
    appointment, sentinels = _plant_staff_only(session, me, test_settings)
    episode = appointment.episode
    # The risk item's wording and the tension question are staff-only too.
    from services.measures import load_instrument

    phq9 = load_instrument("PHQ-9")
    sentinels += [phq9.item("phq9_9").text["en"], phq9.item("phq9_9").text["es"]]
    response = client.get(f"/clinician/clients/{episode.client_id}/together")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    leaked = [s for s in sentinels if s in html]
    assert leaked == [], leaked
    visible = html.split("<main", 1)[1]
    import re

    words = set(re.findall(r"[\wáéíóúñ]+", re.sub(r"<[^>]+>", " ", visible)))
    assert [j for j in JARGON if j in words] == []
    # What it does show: the client's own goals, scores and ratings, in the client's language (Spanish).
    assert '<html lang="es">' in html
    assert "Sleep through the night" in html
    assert "Bea" in html
    assert "Sus objetivos" in html or "Your goals" not in html
    audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "client_viewed")).all()[-1]
    assert audit.detail == {"what": "together"}
    assert audit.client_id == episode.client_id


def test_revising_goals_together_keeps_the_history_and_is_audited(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], test_settings: Settings
) -> None:
    me = signed_in("clinician")
    appointment = _episode_with_history(session, me, test_settings)
    episode = appointment.episode
    path = f"/clinician/clients/{episode.client_id}/together"
    csrf = page_csrf(client, path)
    form = {"csrf_token": csrf, "goal_1": "Sleep through most nights", "goal_2": "Walk every day", "goal_3": " "}
    response = client.post(f"{path}/goals", data=form)
    assert response.status_code == 303
    assert client.post(f"{path}/goals", data=form).status_code == 303  # the same goals again: nothing new
    session.expire_all()
    assert episode.goals == ["Sleep through most nights", "Walk every day"]
    revisions = session.scalars(select(GoalRevision).where(GoalRevision.episode_id == episode.id)).all()
    assert [(r.version, r.previous, r.goals) for r in revisions] == [
        (1, ["Sleep through the night", "Walk every day"], ["Sleep through most nights", "Walk every day"])
    ]
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "goals_revised")).all()
    assert len(events) == 1
    assert events[0].subject_id == episode.id
    html = client.get(path).get_data(as_text=True)
    assert "How our goals have changed" in html
    assert "“Sleep through the night”" in html
    too_many = {"csrf_token": csrf, "goal_1": "x" * 301}
    bad = client.post(f"{path}/goals", data=too_many)
    assert bad.status_code == 400
    assert "300" in bad.get_data(as_text=True)
    empty = client.post(f"{path}/goals", data={"csrf_token": csrf})
    assert empty.status_code == 400


def test_room_pages_are_404_outside_the_caseload(
    app: Flask, session: Session, staff: Callable[..., User], test_settings: Settings
) -> None:
    owner = staff("clinician", team="Team North")
    stranger = staff("clinician", team="Team North")
    appointment = _episode_with_history(session, owner, test_settings)
    browser = app.test_client()
    login(browser, stranger.email)
    for path in (
        f"/clinician/sessions/{appointment.id}/brief",
        f"/clinician/episodes/{appointment.episode_id}/brief",
        f"/clinician/clients/{appointment.episode.client_id}/together",
    ):
        assert browser.get(path).status_code == 404, path


def test_room_pages_cost_the_same_for_few_and_many_sessions(
    app: Flask, session: Session, staff: Callable[..., User], test_settings: Settings
) -> None:
    clinician = staff("clinician")
    browser = app.test_client()
    login(browser, clinician.email)
    counts: dict[str, list[int]] = {"home": [], "brief": [], "together": [], "episode": []}
    for extra in (0, 30):
        appointment = _episode_with_history(session, clinician, test_settings)
        episode = appointment.episode
        for n in range(extra):
            at = _local_noon(test_settings) - timedelta(weeks=5 + n)
            make_appointment(session, episode=episode, starts_at=at, status="completed")
            _phq9(session, episode, 10 + n % 5, at - timedelta(hours=1))
            _check(session, episode, split_total(30 + n % 8), at + timedelta(hours=1))
            evaluate(session, _goals(session, episode, [n % 10, 5], at - timedelta(minutes=30)).id)
            today_episode = make_episode(session, clinician=clinician)
            make_appointment(session, episode=today_episode, starts_at=_local_noon(test_settings))
        browser.get("/clinician/")
        for name, path in (
            ("home", "/clinician/"),
            ("brief", f"/clinician/sessions/{appointment.id}/brief"),
            ("episode", f"/clinician/episodes/{episode.id}/brief"),
            ("together", f"/clinician/clients/{episode.client_id}/together"),
        ):
            with count_queries(session.get_bind().engine) as counter:
                response = browser.get(path)
            assert response.status_code == 200, path
            counts[name].append(counter.count)
    assert all(few == many for few, many in counts.values()), counts


def test_the_chart_shows_answers_by_question_with_phases_and_the_risk_item(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], test_settings: Settings
) -> None:
    me = signed_in("clinician")
    appointment = _episode_with_history(session, me, test_settings)
    episode = appointment.episode
    _phq9(session, episode, 12, appointment.starts_at - timedelta(hours=1), item9=2)
    html = client.get(f"/clinician/clients/{episode.client_id}/chart").get_data(as_text=True)
    table = html.split('id="items-heading"')[1].split("</section>")[0]
    assert "Q9 (risk item)" in table
    assert table.count("<tr><td>") == 5  # five PHQ-9 administrations
    phases = re.findall(r"<tr><td>\d+ \([^)]*\)</td><td>([^<]+)</td>", table)
    assert phases == ["intake", "session", "session", "review (checkpoint)", "session"]
    assert '<td class="num risk-col"><strong>2</strong></td>' in table  # the latest answer to question 9
    # An ended episode's last administration is its discharge.
    episode.ended_on = date.today()
    session.flush()
    html = client.get(f"/clinician/clients/{episode.client_id}/chart").get_data(as_text=True)
    table = html.split('id="items-heading"')[1].split("</section>")[0]
    assert re.findall(r"<tr><td>\d+ \([^)]*\)</td><td>([^<]+)</td>", table)[-1] == "discharge"
    brief = client.get(f"/clinician/sessions/{appointment.id}/brief").get_data(as_text=True)
    assert "question 9 (risk item): 2" in brief
