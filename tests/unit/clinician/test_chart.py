"""The client chart (1 and 100 sessions, markers with evidence, a table alternative) and the clinician's own rating."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.models import Alert, SignalRecord
from services.audit.models import AuditEvent
from services.clients.chart import expected_band, get_client_chart
from services.clients.models import Episode
from services.signals import TrajectoryModel
from services.surveys.administrations import record_administration
from services.surveys.models import Administration
from tests.factories import make_episode
from tests.unit.alerts.series import B1, session_time, split_total, submit_partnership, submit_phq9
from tests.unit.clinician.conftest import alliance_alert, evaluate, page_csrf, past_appointment

SVG = re.compile(r"<svg\b.*?</svg>", re.S)


def _goals(session: Session, episode: Episode, week: int, values: list[int]) -> Administration:
    return record_administration(
        session,
        episode_id=episode.id,
        instrument_code="GOAL-PROGRESS",
        answers={f"goal_{i + 1}": v for i, v in enumerate(values)},
        not_applicable=[f"goal_{i + 1}" for i in range(len(values), 3)],
        completed_at=session_time(week) + timedelta(minutes=5),
    )


def test_chart_draws_every_series_with_markers_and_a_table(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    alert = alliance_alert(session, me)
    episode = alert.episode
    episode.goals = ["Sleep through the night", "Walk every day"]
    for week, total in enumerate([18, 16, 15, 12, 11]):
        evaluate(session, submit_phq9(session, episode, total, week=week).id)
        _goals(session, episode, week, [week + 2, week + 1])
    submit_partnership(session, episode, split_total(30), week=5, tension=3)
    response = client.get(f"/clinician/clients/{episode.client_id}/chart")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    svgs = SVG.findall(html)
    assert len(svgs) == 4 * 2  # PHQ-9, Partnership total, its four parts, goals: each wide and compact
    for heading in (
        "Patient Health Questionnaire (PHQ-9) by session",
        "Partnership Check total by session",
        "Partnership Check: the four parts by session",
        "Goal progress by session",
    ):
        assert heading in html
    # the PHQ-9: cutoff and the no-reliable-change band around the first score
    assert "Clinical cutoff (&gt;= 10)" in html
    assert "No reliable change from the first score (18 ± 6)" in html
    # the Partnership Check: the rupture at session 5 with its evidence in the marker's <title>
    assert re.search(r"<title>Session 5: [^<]*Sharp drop from last session: Partnership score fell from 36 to 27", html)
    assert "Below 36: talk about the partnership (design)" in html
    assert "tension 3 (a lot)" in html
    # goals in the client's own words
    assert "Sleep through the night" in html
    # the table alternative sits in a <details> under each chart
    assert html.count('<details class="chart-table">') == 4
    assert "<caption>Partnership Check total by session</caption>" in html
    assert "Not a validated instrument" in html
    views = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "client_viewed", AuditEvent.actor_id == me.id)
    )
    assert [e.detail["what"] for e in views] == ["chart"]


def test_chart_for_one_session(client: FlaskClient, session: Session, signed_in: Callable[..., User]) -> None:
    me = signed_in("clinician")
    episode = make_episode(session, clinician=me)
    evaluate(session, submit_partnership(session, episode, split_total(34), week=0).id)
    html = client.get(f"/clinician/clients/{episode.client_id}/chart").get_data(as_text=True)
    assert len(SVG.findall(html)) == 2 * 2
    assert "1 session, 1 to 1." in html  # the SVG's description
    assert "Client&#39;s total: 34 at session 1." in html
    assert "Below 36: talk about the partnership: Partnership score 34 is below 36" in html
    assert html.count("<tr>") >= 2  # header and the one session


def test_chart_for_a_hundred_sessions(client: FlaskClient, session: Session, signed_in: Callable[..., User]) -> None:
    me = signed_in("clinician")
    episode = make_episode(session, clinician=me)
    totals = [36 + (week % 3) for week in range(100)]
    totals[60] = 26
    for week, total in enumerate(totals):
        submit_partnership(session, episode, split_total(total), week=week)
        submit_phq9(session, episode, max(0, 20 - week // 5), week=week)
    evaluate(session, session.scalars(select(Administration.id).order_by(Administration.id.desc())).first() or 0)
    last_alliance = session.scalar(
        select(Administration.id)
        .where(Administration.instrument_code == "PARTNERSHIP-CHECK")
        .order_by(Administration.completed_at.desc())
    )
    assert last_alliance is not None
    evaluate(session, last_alliance)  # evaluates the whole series in order
    assert session.scalar(select(SignalRecord.session).where(SignalRecord.kind == "RUPTURE_DROP")) == 61
    html = client.get(f"/clinician/clients/{episode.client_id}/chart").get_data(as_text=True)
    assert "100 sessions, 1 to 100." in html
    assert re.search(r"<title>Session 61: [^<]*Sharp drop from last session", html)
    table = html[html.index("<caption>Partnership Check total by session</caption>") :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == 101
    # wide charts thin their axis labels; every session is still in the table
    wide = SVG.findall(html)[0]
    assert wide.count(">100</text>") == 1


def test_expected_band_from_a_fitted_model() -> None:
    model = TrajectoryModel(b0=0.0, b1=1.0, b2=-4.0, b3=0.0, sigma_pred=4.0)
    band = expected_band(model, 20.0, 5)
    assert len(band) == 5
    low, high = band[4] or (0.0, 0.0)
    assert round((low + high) / 2, 3) == 13.562  # CLINICAL.md O5: yhat_4
    assert round(high, 2) == 18.69  # and its off-track boundary


def test_chart_reads_a_constant_number_of_queries(session: Session, staff: Callable[..., User]) -> None:
    from tests.unit.clinician.conftest import count_queries

    me = staff("clinician")
    counts = []
    for sessions in (1, 40):
        episode = make_episode(session, clinician=me)
        for week in range(sessions):
            submit_partnership(session, episode, split_total(B1[week % len(B1)]), week=week)
            submit_phq9(session, episode, 12, week=week)
        session.flush()
        with count_queries(session.get_bind().engine) as counter:
            data = get_client_chart(session, me, episode.client_id)
        assert data is not None
        counts.append(counter.count)
    assert counts[0] == counts[1] == 5


def test_therapist_check_is_stored_evaluated_and_gives_the_perspective_gap(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], monkeypatch: object
) -> None:
    import workers.enqueue as enqueue

    published: list[tuple[str, tuple[int, ...]]] = []
    monkeypatch.setattr(enqueue, "_publish", lambda name, *args: published.append((name, args)))  # type: ignore[attr-defined]
    me = signed_in("clinician")
    episode = make_episode(session, clinician=me)
    appointment = past_appointment(session, episode, days_ago=0.05)
    client_row = submit_partnership(session, episode, split_total(30), week=0, appointment_id=appointment.id)
    evaluate(session, client_row.id)
    chart = client.get(f"/clinician/clients/{episode.client_id}/chart").get_data(as_text=True)
    form_url = f"/clinician/sessions/{appointment.id}/partnership"
    assert form_url in chart
    form = client.get(form_url).get_data(as_text=True)
    assert form.count('type="radio"') == 44  # four parts, 11 tap targets each
    token = page_csrf(client, form_url)
    incomplete = client.post(form_url, data={"tpc_rapport": "9", "csrf_token": token})
    assert incomplete.status_code == 400
    assert "Please rate all four parts" in incomplete.get_data(as_text=True)
    answers = {
        "tpc_rapport": "10",
        "tpc_mutual_goals": "10",
        "tpc_realistic_goals": "9",
        "tpc_shared_responsibility": "9",
        "tpc_note": "Felt like a good session",
    }
    response = client.post(form_url, data={**answers, "csrf_token": token})
    assert response.status_code == 303
    rating = session.scalar(select(Administration).where(Administration.respondent == "therapist"))
    assert rating is not None
    assert rating.instrument_code == "THERAPIST-PARTNERSHIP-CHECK"
    assert rating.appointment_id == appointment.id
    assert rating.total == 38
    assert published == [("alerts.evaluate", (rating.id,))]
    assert session.scalar(select(AuditEvent.id).where(AuditEvent.action == "partnership_rated")) is not None
    # what the worker does with it: the perspective gap (38 vs 30) opens a partnership alert
    evaluate(session, rating.id)
    alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id))
    assert alert is not None
    assert [entry["kind"] for entry in alert.evidence] == ["PERSPECTIVE_GAP"]
    # a second submit changes nothing
    again = client.post(form_url, data={**answers, "csrf_token": token})
    assert again.status_code == 303
    assert len(list(session.scalars(select(Administration).where(Administration.respondent == "therapist")))) == 1
    chart = client.get(f"/clinician/clients/{episode.client_id}/chart").get_data(as_text=True)
    assert "Your own rating" in chart
    assert "You rated the partnership 38, the client 30" in chart


def test_only_the_sessions_clinician_rates_it(
    client: FlaskClient, session: Session, signed_in: Callable[..., User], staff: Callable[..., User]
) -> None:
    signed_in("supervisor", team="Team Kite")
    clinician = staff("clinician", team="Team Kite")
    episode = make_episode(session, clinician=clinician)
    appointment = past_appointment(session, episode)
    assert client.get(f"/clinician/sessions/{appointment.id}/partnership").status_code == 404
    assert client.get(f"/clinician/clients/{episode.client_id}/chart").status_code == 200


def test_a_future_session_cannot_be_rated_yet(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    episode = make_episode(session, clinician=me)
    future = past_appointment(session, episode, days_ago=-2)
    url = f"/clinician/sessions/{future.id}/partnership"
    assert "has not taken place yet" in client.get(url).get_data(as_text=True)
    token = page_csrf(client, "/clinician/settings")
    data = {f"tpc_{n}": "8" for n in ("rapport", "mutual_goals", "realistic_goals", "shared_responsibility")}
    assert client.post(url, data={**data, "csrf_token": token}).status_code == 409
    assert session.scalar(select(Administration.id)) is None


def test_empty_chart_says_what_to_do(client: FlaskClient, session: Session, signed_in: Callable[..., User]) -> None:
    me = signed_in("clinician")
    episode = make_episode(session, clinician=me)
    html = client.get(f"/clinician/clients/{episode.client_id}/chart").get_data(as_text=True)
    assert "No answers yet in this episode." in html
    assert "check with the front desk" in html


def test_the_chart_draws_the_practices_current_fit_and_labels_a_reference_cohort(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    from services.calibration.models import TrajectoryFit

    me = signed_in("clinician")
    episode = make_episode(session, clinician=me)
    for week, total in enumerate([18, 17, 17]):
        submit_phq9(session, episode, total, week=week)
    page = f"/clinician/clients/{episode.client_id}/chart"
    assert "No expected range yet" in client.get(page).get_data(as_text=True)
    fit = dict(b0=0.0, b1=1.0, b2=-4.0, b3=0.0, sigma_pred=4.0, n_episodes=400, n_observations=2400, r_squared=0.3)
    session.add(TrajectoryFit(instrument_code="PHQ-9", period="2026-05", reference="a synthetic cohort", **fit))
    session.flush()
    html = client.get(page).get_data(as_text=True)
    assert "No expected range yet" not in html
    assert "Expected range (a synthetic reference cohort, not this practice&#39;s own data)" in html
    session.add(TrajectoryFit(instrument_code="PHQ-9", period="2026-06", **fit))
    session.flush()
    html = client.get(page).get_data(as_text=True)
    assert "Expected range (the practice&#39;s fitted model)" in html
