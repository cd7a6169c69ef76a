"""Evaluating stored administrations: signals, alerts and notifications, session by session (SQLite)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.evaluation import (
    EvaluationResult,
    evaluate_administration,
    evaluate_episode_histories,
    evaluate_episode_history,
)
from services.alerts.models import Alert, SignalRecord
from services.alerts.operations import resolve_alert
from services.alerts.queries import evidence_lines
from services.alerts.repair import topics_for_evidence
from services.clients.models import Episode
from services.notifications.models import Notification
from services.signals import (
    COMPONENT_DROP,
    DEFAULT_SETTINGS,
    LOW_ALLIANCE,
    NOT_ON_TRACK,
    PERSPECTIVE_GAP,
    RELIABLE_DETERIORATION,
    REPAIRED,
    RISK,
    RUPTURE_DEV,
    RUPTURE_DROP,
    UNREPAIRED,
    alliance_signals,
    evaluate_alliance,
)
from services.surveys.administrations import record_administration
from services.surveys.models import Administration
from tests.factories import make_appointment, make_episode, make_user
from tests.unit.alerts.series import (
    B1,
    B3,
    B4_ITEMS,
    session_time,
    split_total,
    submit_partnership,
    submit_phq9,
    submit_therapist_view,
)

BASE = "http://rapport.test"


def evaluate(session: Session, administration: Administration, **kw: object) -> EvaluationResult:
    return evaluate_administration(
        session,
        administration.id,
        settings=DEFAULT_SETTINGS,
        base_url=BASE,
        **kw,  # type: ignore[arg-type]
    )


def alerts_of(session: Session, episode: Episode, kind: str | None = None) -> list[Alert]:
    stmt = select(Alert).where(Alert.episode_id == episode.id).order_by(Alert.id)
    if kind is not None:
        stmt = stmt.where(Alert.kind == kind)
    return list(session.scalars(stmt))


def signal_kinds(session: Session, administration: Administration) -> list[str]:
    return sorted(session.scalars(select(SignalRecord.kind).where(SignalRecord.administration_id == administration.id)))


def notifications_for(session: Session, address: str) -> list[Notification]:
    return list(session.scalars(select(Notification).where(Notification.to_address == address)))


def counts(session: Session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(SignalRecord)) or 0,
        session.scalar(select(func.count()).select_from(Alert)) or 0,
        session.scalar(select(func.count()).select_from(Notification)) or 0,
    )


def session_kinds(session: Session, administrations: list[Administration]) -> list[list[str]]:
    order = {
        kind: i
        for i, kind in enumerate(
            [RUPTURE_DEV, RUPTURE_DROP, "TENSION", COMPONENT_DROP, PERSPECTIVE_GAP, LOW_ALLIANCE, REPAIRED, UNREPAIRED]
        )
    }
    return [sorted(signal_kinds(session, row), key=order.__getitem__) for row in administrations]


def test_b1_opens_one_alliance_alert_at_session_5_and_repairs_it_at_session_7(session: Session) -> None:
    clinician = make_user(session, role="clinician")
    episode = make_episode(session, clinician=clinician)
    rows = []
    for week, total in enumerate(B1):
        row = submit_partnership(session, episode, split_total(total), week=week)
        result = evaluate(session, row)
        assert result.status == "evaluated"
        assert result.evaluated == [row.id]
        rows.append(row)
        alerts = alerts_of(session, episode)
        if week + 1 < 5:
            assert alerts == [], f"no alert before session 5 (session {week + 1})"
        elif week + 1 in (5, 6):
            (alert,) = alerts
            assert alert.status == "open"
        else:
            (alert,) = alerts
            assert alert.status == "resolved"
    assert session_kinds(session, rows) == [
        [LOW_ALLIANCE],
        [],
        [],
        [],
        [RUPTURE_DEV, RUPTURE_DROP, LOW_ALLIANCE],
        [LOW_ALLIANCE],
        [REPAIRED],
        [],
    ]
    (alert,) = alerts_of(session, episode)
    assert (alert.kind, alert.opened_session, alert.baseline) == ("alliance", 5, 35.75)
    assert alert.opened_by_administration_id == rows[4].id
    opened = {entry["kind"] for entry in alert.evidence if entry["session"] == 5}
    assert opened == {RUPTURE_DEV, RUPTURE_DROP, LOW_ALLIANCE}
    assert [entry["session"] for entry in alert.evidence if entry["kind"] == LOW_ALLIANCE] == [5, 6]
    dev = next(entry["evidence"] for entry in alert.evidence if entry["kind"] == RUPTURE_DEV)
    assert (dev["m"], dev["s"], dev["threshold"], dev["score"], dev["alert"]) == (35.75, 3.0, 29.75, 27, "opened")
    assert (alert.status, alert.resolution_reason) == ("resolved", "repaired")
    assert alert.repaired_at is not None
    assert alert.resolved_at == alert.repaired_at
    assert alert.summary.startswith("Partnership score fell from 36 to 27")
    assert alert.summary.endswith("back to 36 at session 7 (repaired)")
    # One immediate email with only a link to the alert.
    (note,) = notifications_for(session, clinician.email)
    assert (note.template, note.channel, note.dedupe_key) == ("alert", "email", f"alert:{alert.id}:opened")
    assert note.context == {"link": f"{BASE}/clinician/alerts/{alert.id}", "language": "en"}
    assert note.recipient_user_id == clinician.id


def test_b1_stored_signals_match_the_pure_rules_for_the_same_items(session: Session) -> None:
    episode = make_episode(session)
    rows = [submit_partnership(session, episode, split_total(t), week=w) for w, t in enumerate(B1)]
    for row in rows:
        evaluate(session, row)
    expected = alliance_signals(B1, items=[split_total(t) for t in B1], tension=[0] * len(B1))
    assert session_kinds(session, rows) == [[signal.kind for signal in per] for per in expected]
    stored = session.scalars(select(SignalRecord).where(SignalRecord.administration_id == rows[4].id)).all()
    assert {record.session for record in stored} == {5}
    drop = next(record for record in stored if record.kind == RUPTURE_DROP)
    assert (drop.evidence["previous"], drop.evidence["score"], drop.evidence["drop"]) == (36, 27, 9)


def test_b3_stores_unrepaired_at_session_7_and_keeps_the_alert_open(session: Session) -> None:
    episode = make_episode(session)
    rows = []
    for week, total in enumerate(B3):
        rows.append(submit_partnership(session, episode, split_total(total), week=week))
        evaluate(session, rows[-1])
    assert session_kinds(session, rows) == [
        [],
        [],
        [],
        [RUPTURE_DEV, RUPTURE_DROP, LOW_ALLIANCE],
        [LOW_ALLIANCE],
        [LOW_ALLIANCE],
        [LOW_ALLIANCE, UNREPAIRED],
    ]
    (alert,) = alerts_of(session, episode)
    assert (alert.status, alert.opened_session, alert.baseline, alert.sessions_open) == ("open", 4, 37.0, 3)
    unrepaired = session.scalar(
        select(SignalRecord).where(SignalRecord.administration_id == rows[6].id, SignalRecord.kind == UNREPAIRED)
    )
    assert unrepaired is not None
    assert (unrepaired.session, unrepaired.evidence["sessions_open"], unrepaired.evidence["opened_session"]) == (
        7,
        3,
        4,
    )
    assert "not back to its usual level after 3 sessions" in alert.summary


def test_b4_component_drop_names_mutual_goals(session: Session) -> None:
    episode = make_episode(session)
    rows = []
    for week, items in enumerate(B4_ITEMS):
        rows.append(submit_partnership(session, episode, items, week=week))
        evaluate(session, rows[-1])
    assert [row.total for row in rows] == [40, 40, 39, 36]
    assert session_kinds(session, rows) == [[], [], [], [COMPONENT_DROP]]
    (alert,) = alerts_of(session, episode)
    assert alert.opened_session == 4
    assert alert.baseline == pytest.approx(39.6667, abs=1e-4)
    (entry,) = alert.evidence
    assert entry["evidence"]["component"] == "mutual_goals"
    assert (entry["evidence"]["score"], entry["evidence"]["mean"]) == (6, 10)
    assert alert.summary == "Client's rating of mutual goals fell to 6 from a usual 10"
    assert topics_for_evidence(alert.evidence)[0] == "mutual_goals"


def test_largest_component_drop_is_named_in_the_summary(session: Session) -> None:
    episode = make_episode(session)
    for week, items in enumerate([[9, 9, 9, 9], [9, 9, 9, 9], [10, 9, 9, 9], [9, 9, 9, 9], [8, 5, 7, 7]]):
        evaluate(session, submit_partnership(session, episode, items, week=week))
    (alert,) = alerts_of(session, episode)
    assert alert.summary.startswith("Partnership score fell from 36 to 27; largest drop: mutual goals")


def test_risk_answer_opens_a_risk_alert_with_an_immediate_email_even_in_digest_mode(session: Session) -> None:
    clinician = make_user(session, role="clinician")
    clinician.notify_mode = "digest"
    episode = make_episode(session, clinician=clinician)
    row = submit_phq9(session, episode, 14, week=0, item9=2)
    result = evaluate(session, row)
    assert signal_kinds(session, row) == [RISK]
    (alert,) = alerts_of(session, episode)
    assert (alert.kind, alert.severity, alert.status) == ("risk", "risk", "open")
    assert alert.summary.startswith("Risk question answered above 0 on PHQ-9 (question 9): “Thoughts that you would")
    assert alert.summary.endswith("answered “More than half the days”")
    (note,) = notifications_for(session, clinician.email)
    assert note.dedupe_key == f"alert:{alert.id}:opened"
    assert result.notification_ids == [note.id]
    # A later positive risk answer is added to the open alert and announced again, immediately.
    later = submit_phq9(session, episode, 12, week=1, item9=1)
    evaluate(session, later)
    assert [a.id for a in alerts_of(session, episode)] == [alert.id]
    assert len(notifications_for(session, clinician.email)) == 2
    assert "2 occasions" in alert.summary


def test_digest_clinician_gets_no_immediate_email_for_an_alliance_alert(session: Session) -> None:
    clinician = make_user(session, role="clinician")
    clinician.notify_mode = "digest"
    episode = make_episode(session, clinician=clinician)
    for week, total in enumerate(B1[:5]):
        evaluate(session, submit_partnership(session, episode, split_total(total), week=week))
    assert len(alerts_of(session, episode, "alliance")) == 1
    assert notifications_for(session, clinician.email) == []


def test_inactive_clinician_alerts_go_to_the_supervisor(session: Session) -> None:
    supervisor = make_user(session, role="supervisor", team="Team Far")
    clinician = make_user(session, role="clinician", team="Team Far")
    clinician.active = False
    episode = make_episode(session, clinician=clinician)
    evaluate(session, submit_phq9(session, episode, 10, week=0, item9=1))
    assert notifications_for(session, clinician.email) == []
    assert len(notifications_for(session, supervisor.email)) == 1


def test_evaluating_twice_changes_nothing(session: Session) -> None:
    episode = make_episode(session)
    rows = [submit_partnership(session, episode, split_total(t), week=w) for w, t in enumerate(B1[:5])]
    rows.append(submit_phq9(session, episode, 20, week=5, item9=3))
    for row in rows:
        evaluate(session, row)
    before = counts(session)
    evidence_before = [list(a.evidence) for a in alerts_of(session, episode)]
    stamps = [row.evaluated_at for row in rows]
    for row in rows:
        again = evaluate(session, row)
        assert again.status == "already_evaluated"
        assert (again.evaluated, again.signals, again.notification_ids) == ([], {}, [])
    assert counts(session) == before
    assert [list(a.evidence) for a in alerts_of(session, episode)] == evidence_before
    assert [row.evaluated_at for row in rows] == stamps


def test_missing_administration_is_reported_not_raised(session: Session) -> None:
    assert evaluate_administration(session, 987654321, settings=DEFAULT_SETTINGS).status == "missing"


def test_a_hand_resolved_alert_followed_by_a_new_rupture_opens_a_new_alert(session: Session) -> None:
    clinician = make_user(session, role="clinician")
    episode = make_episode(session, clinician=clinician)
    totals = [36, 37, 36, 37, 27, 18]
    rows = [submit_partnership(session, episode, split_total(t), week=w) for w, t in enumerate(totals)]
    for row in rows[:5]:
        evaluate(session, row)
    (first,) = alerts_of(session, episode)
    resolve_alert(session, first, actor=clinician, reason="not_a_rupture")
    evaluate(session, rows[5])
    first_alert, second = alerts_of(session, episode)
    assert first_alert.id == first.id
    assert (first_alert.status, first_alert.resolution_reason) == ("resolved", "not_a_rupture")
    assert (second.status, second.opened_session) == ("open", 6)
    assert second.baseline == pytest.approx(sum(totals[:5]) / 5)
    assert {e["kind"] for e in second.evidence} >= {RUPTURE_DROP}
    assert len(notifications_for(session, clinician.email)) == 2


def test_a_repaired_alert_followed_by_a_new_rupture_opens_a_new_alert(session: Session) -> None:
    episode = make_episode(session)
    totals = [*B1, 37, 28]
    rows = [submit_partnership(session, episode, split_total(t), week=w) for w, t in enumerate(totals)]
    for row in rows:
        evaluate(session, row)
    repaired, new = alerts_of(session, episode)
    assert (repaired.resolution_reason, new.status, new.opened_session) == ("repaired", "open", 10)
    pure = evaluate_alliance(totals, items=[split_total(t) for t in totals], tension=[0] * len(totals))
    assert [a.opened_session for a in pure.alerts] == [5, 10]


def test_outcome_rules_open_one_outcome_alert_that_turns_red(session: Session) -> None:
    episode = make_episode(session)
    rows = [submit_phq9(session, episode, total, week=w) for w, total in enumerate([16, 16, 15, 15, 22])]
    for row in rows:
        evaluate(session, row)
    assert [signal_kinds(session, row) for row in rows] == [[], [], [], [NOT_ON_TRACK], [RELIABLE_DETERIORATION]]
    (alert,) = alerts_of(session, episode)
    assert (alert.kind, alert.opened_session, alert.severity) == ("outcome", 4, "red")
    assert [entry["kind"] for entry in alert.evidence] == [NOT_ON_TRACK, RELIABLE_DETERIORATION]
    assert alert.summary == "PHQ-9 score worsened from 16 to 22 (reliable change is 6)"
    assert evidence_lines(alert.evidence)[0].text == (
        "PHQ-9 not on track at session 4: 16 at the start, 15 now (expected at least 3 points better; a rule of thumb)"
    )


def test_incomplete_administrations_count_as_sessions_without_a_score(session: Session) -> None:
    episode = make_episode(session)
    series: list[list[int | None]] = [split_total(t) for t in [36, 37, 36, 37]]
    series += [[9, None, 9, 9], split_total(26)]
    rows = [submit_partnership(session, episode, items, week=w) for w, items in enumerate(series)]
    for row in rows:
        evaluate(session, row)
    assert rows[4].complete is False
    assert rows[4].total is None
    totals = [36, 37, 36, 37, None, 26]
    items = [[float(v) if v is not None else None for v in s] for s in series]
    expected = alliance_signals(totals, items=items, tension=[0] * 6)
    assert session_kinds(session, rows) == [[s.kind for s in per] for per in expected]


def test_out_of_order_evaluation_catches_up_earlier_sessions_first(session: Session) -> None:
    in_order = make_episode(session)
    shuffled = make_episode(session)
    for episode, order in ((in_order, range(8)), (shuffled, [4, 6, 2, 7, 0, 1, 3, 5])):
        rows = [submit_partnership(session, episode, split_total(t), week=w) for w, t in enumerate(B1)]
        for index in order:
            evaluate(session, rows[index])
        assert all(row.evaluated_at is not None for row in rows)
    first = evaluate(session, submit_partnership(session, make_episode(session), [9, 9, 9, 9], week=0))
    assert first.evaluated
    (a,) = alerts_of(session, in_order)
    (b,) = alerts_of(session, shuffled)
    assert (a.opened_session, a.baseline, a.status, a.resolution_reason) == (
        b.opened_session,
        b.baseline,
        b.status,
        b.resolution_reason,
    )
    assert [e["kind"] for e in a.evidence] == [e["kind"] for e in b.evidence]


def test_catch_up_evaluates_the_waiting_earlier_administrations_in_one_call(session: Session) -> None:
    episode = make_episode(session)
    rows = [submit_partnership(session, episode, split_total(t), week=w) for w, t in enumerate(B1[:5])]
    result = evaluate(session, rows[4])
    assert result.evaluated == [row.id for row in rows]
    assert len(result.alerts_opened) == 1


def test_a_late_entry_stores_its_signals_but_does_not_move_the_alert(session: Session) -> None:
    episode = make_episode(session)
    rows = [submit_partnership(session, episode, split_total(t), week=w) for w, t in enumerate([36, 37, 36, 37])]
    for row in rows:
        evaluate(session, row)
    # Entered afterwards (paper form), dated between sessions 3 and 4.
    late = submit_partnership(session, episode, split_total(20), week=2)
    late.completed_at = session_time(2) + timedelta(days=2)
    evaluate(session, late)
    kinds = signal_kinds(session, late)
    assert RUPTURE_DROP in kinds
    assert alerts_of(session, episode) == []
    record = session.scalar(select(SignalRecord).where(SignalRecord.administration_id == late.id).limit(1))
    assert record is not None
    assert record.evidence["late"] is True


def test_perspective_gap_from_a_therapist_view_given_before_the_client_answers(session: Session) -> None:
    episode = make_episode(session)
    appointments = [make_appointment(session, episode=episode, starts_at=session_time(w)) for w in range(3)]
    for week, total in enumerate([36, 37, 36]):
        evaluate(
            session,
            submit_partnership(session, episode, split_total(total), week=week, appointment_id=appointments[week].id),
        )
    # For the next session the clinician rates first; the client's lower view arrives afterwards.
    appointment = make_appointment(session, episode=episode, starts_at=session_time(3))
    therapist = submit_therapist_view(session, episode, [10, 10, 10, 10], week=3, appointment_id=appointment.id)
    therapist.completed_at = session_time(3) - timedelta(minutes=5)
    evaluate(session, therapist)
    client = submit_partnership(session, episode, split_total(33), week=3, appointment_id=appointment.id)
    evaluate(session, client)
    assert signal_kinds(session, client) == [LOW_ALLIANCE, PERSPECTIVE_GAP]
    assert signal_kinds(session, therapist) == []
    (alert,) = alerts_of(session, episode)
    gap = next(e["evidence"] for e in alert.evidence if e["kind"] == PERSPECTIVE_GAP)
    assert (gap["therapist_total"], gap["client_total"], gap["gap"]) == (40, 33, 7)
    assert alert.summary.startswith("You rated the partnership 40, the client 33")


def test_perspective_gap_from_a_therapist_view_given_after_the_client_was_evaluated(session: Session) -> None:
    episode = make_episode(session)
    appointments = [make_appointment(session, episode=episode, starts_at=session_time(w)) for w in range(4)]
    clients = []
    for week, total in enumerate([36, 37, 36, 33]):
        clients.append(
            submit_partnership(session, episode, split_total(total), week=week, appointment_id=appointments[week].id)
        )
        evaluate(session, clients[-1])
    assert alerts_of(session, episode) == []
    therapist = submit_therapist_view(session, episode, [10, 10, 10, 10], week=3, appointment_id=appointments[3].id)
    evaluate(session, therapist)
    assert signal_kinds(session, therapist) == [PERSPECTIVE_GAP]
    (alert,) = alerts_of(session, episode)
    assert (alert.opened_session, alert.opened_by_administration_id) == (4, therapist.id)
    assert alert.baseline == pytest.approx((36 + 37 + 36) / 3)
    # The next client session sees the same alert, as the pure rules would with the therapist's view in place.
    nxt = submit_partnership(session, episode, split_total(37), week=4)
    evaluate(session, nxt)
    assert signal_kinds(session, nxt) == [REPAIRED]
    assert alerts_of(session, episode)[0].resolution_reason == "repaired"
    # Re-evaluating anything adds no second gap.
    assert evaluate(session, therapist).status == "already_evaluated"


def test_stored_alliance_alerts_follow_the_pure_state_machine(session: Session) -> None:
    rng = random.Random(20260112)
    clinician = make_user(session, role="clinician")
    for _ in range(25):
        length = rng.randint(3, 14)
        mean = rng.uniform(30, 39)
        series: list[list[int | None]] = []
        tension: list[int] = []
        for _ in range(length):
            total = max(0, min(40, round(rng.gauss(mean, 3) - (rng.random() < 0.2) * rng.uniform(4, 12))))
            items: list[int | None] = list(split_total(total))
            rng.shuffle(items)
            if rng.random() < 0.08:
                items[rng.randrange(4)] = None
            series.append(items)
            tension.append(rng.choice([0, 0, 0, 0, 1, 2]))
        episode = make_episode(session, clinician=clinician)
        rows = [
            submit_partnership(session, episode, items, week=w, tension=tension[w]) for w, items in enumerate(series)
        ]
        for row in rows:
            evaluate(session, row)
        totals = [row.total if row.complete else None for row in rows]
        values = [[float(v) if v is not None else None for v in items] for items in series]
        pure = evaluate_alliance(totals, items=values, tension=tension)
        assert session_kinds(session, rows) == [[s.kind for s in per] for per in pure.signals], series
        stored = alerts_of(session, episode, "alliance")
        assert [(a.opened_session, a.baseline) for a in stored] == [(a.opened_session, a.baseline) for a in pure.alerts]
        for stored_alert, pure_alert in zip(stored, pure.alerts, strict=True):
            repaired_session = next((e["session"] for e in stored_alert.evidence if e["kind"] == REPAIRED), None)
            assert repaired_session == pure_alert.repaired_session
            assert (stored_alert.status == "resolved") == (pure_alert.repaired_session is not None)


def test_episode_history_is_evaluated_without_notifications_and_dated_by_the_sessions(session: Session) -> None:
    clinician = make_user(session, role="clinician")
    episode = make_episode(session, clinician=clinician)
    for week, total in enumerate(B1):
        submit_partnership(session, episode, split_total(total), week=week)
        submit_phq9(session, episode, 12, week=week, item9=1 if week == 2 else 0)
    result = evaluate_episode_history(session, episode.id, settings=DEFAULT_SETTINGS)
    assert len(result.evaluated) == 16
    assert result.notification_ids == []
    assert notifications_for(session, clinician.email) == []
    (alliance,) = alerts_of(session, episode, "alliance")
    (risk,) = alerts_of(session, episode, "risk")
    assert alliance.opened_at == session_time(4)
    assert alliance.repaired_at == session_time(6)
    assert risk.opened_at == session_time(2) - timedelta(hours=1)
    waiting = session.scalar(
        select(func.count())
        .select_from(Administration)
        .where(Administration.episode_id == episode.id, Administration.evaluated_at.is_(None))
    )
    assert waiting == 0
    again = evaluate_episode_history(session, episode.id, settings=DEFAULT_SETTINGS)
    assert again.evaluated == []


def test_goal_progress_is_marked_evaluated_without_signals(session: Session) -> None:
    from services.surveys.administrations import record_administration

    episode = make_episode(session)
    row = record_administration(
        session,
        episode_id=episode.id,
        instrument_code="GOAL-PROGRESS",
        answers={"goal_1": 4},
        completed_at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    result = evaluate(session, row)
    assert result.evaluated == [row.id]
    assert row.evaluated_at is not None
    assert signal_kinds(session, row) == []


# Bulk history evaluation against one administration at a time -------------------------------------------------

ID_KEYS = ("alert_id", "administration_id", "client_administration_id", "opened_by_administration_id")


def build_practice(session: Session, seed: int) -> tuple[list[Episode], User]:
    """Episodes with ruptures and repairs, therapist views, risk answers and deteriorating PHQ-9 series; some
    partly evaluated already (one alert resolved by hand) with a late paper form entered afterwards."""
    rng = random.Random(seed)
    clinician = make_user(session, role="clinician")
    episodes = []
    for _ in range(10):
        episode = make_episode(session, clinician=clinician)
        episodes.append(episode)
        length = rng.randint(4, 14)
        mean = rng.uniform(30, 39)
        rupture = rng.randint(2, length - 1) if rng.random() < 0.6 else None
        repair = rng.random() < 0.6
        phq = rng.uniform(8, 20)
        slope = rng.choice([-1.0, -0.3, 0.0, 0.8, 1.6])
        therapist_share = rng.choice([0.0, 0.0, 0.5, 0.9])
        rows: list[Administration] = []
        for week in range(length):
            dip = rupture is not None and (week == rupture or (week > rupture and not repair))
            total = round(rng.gauss(mean, 1.5) - (rng.uniform(7, 13) if dip else 0))
            items: list[int | None] = list(split_total(max(0, min(40, total))))
            rng.shuffle(items)
            if rng.random() < 0.06:
                items[rng.randrange(4)] = None
            appointment = make_appointment(session, episode=episode, starts_at=session_time(week) - timedelta(hours=1))
            therapist_first = rng.random() < 0.3
            rows.append(
                submit_partnership(
                    session,
                    episode,
                    items,
                    week=week,
                    tension=rng.choice([0, 0, 0, 1, 2]),
                    appointment_id=appointment.id,
                )
            )
            if rng.random() < therapist_share:
                view = submit_therapist_view(
                    session, episode, [rng.randint(8, 10) for _ in range(4)], week=week, appointment_id=appointment.id
                )
                if therapist_first:
                    view.completed_at = session_time(week) - timedelta(minutes=5)
            item9 = rng.choice([1, 2]) if rng.random() < 0.08 else 0
            score = max(item9, min(24 + item9, round(phq + slope * week + rng.gauss(0, 1.5))))
            rows.append(submit_phq9(session, episode, score, week=week, item9=item9))
            if rng.random() < 0.3:
                record_administration(
                    session,
                    episode_id=episode.id,
                    instrument_code="GOAL-PROGRESS",
                    answers={"goal_1": rng.randint(0, 10)},
                    completed_at=session_time(week) - timedelta(minutes=30),
                )
        if rng.random() < 0.4:
            # Part of the history was evaluated as it came in, one alert was closed by hand, and a paper form dated
            # between earlier sessions was entered afterwards.
            done = sorted(rows, key=lambda row: (row.completed_at, row.id))[: len(rows) // 2]
            for row in done:
                evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS, now=row.completed_at, notify=False)
            open_alert = session.scalar(
                select(Alert).where(Alert.episode_id == episode.id, Alert.status != "resolved").order_by(Alert.id)
            )
            if open_alert is not None:
                reason = {"alliance": "not_a_rupture", "risk": "not_a_risk"}.get(open_alert.kind, "client_improving")
                resolve_alert(session, open_alert, actor=clinician, reason=reason)
            late = submit_partnership(session, episode, split_total(rng.randint(10, 25)), week=1)
            late.completed_at = session_time(1) + timedelta(days=2)
    session.flush()
    return episodes, clinician


def _waiting(session: Session, episode: Episode) -> list[Administration]:
    return list(
        session.scalars(
            select(Administration)
            .where(Administration.episode_id == episode.id, Administration.evaluated_at.is_(None))
            .order_by(Administration.completed_at, Administration.id)
        )
    )


def _normalise(
    value: object, ids: dict[int, tuple[int, int]], alerts: dict[int, tuple[int, int]], key: str = ""
) -> object:
    if isinstance(value, dict):
        return {k: _normalise(v, ids, alerts, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v, ids, alerts) for v in value]
    if key == "alert_id" and isinstance(value, int):
        return ("alert", alerts[value])
    if key in ID_KEYS and isinstance(value, int):
        return ("administration", ids[value])
    return value


def snapshot(session: Session, episodes: list[Episode]) -> list[object]:
    """Everything the evaluation stored for these episodes, with ids replaced by positions within the episode."""
    out: list[object] = []
    for number, episode in enumerate(episodes):
        rows = list(
            session.scalars(
                select(Administration).where(Administration.episode_id == episode.id).order_by(Administration.id)
            )
        )
        ids = {row.id: (number, position) for position, row in enumerate(rows)}
        alerts = list(session.scalars(select(Alert).where(Alert.episode_id == episode.id).order_by(Alert.id)))
        alert_ids = {alert.id: (number, position) for position, alert in enumerate(alerts)}
        signals = session.scalars(
            select(SignalRecord).where(SignalRecord.episode_id == episode.id).order_by(SignalRecord.id)
        ).all()
        out.append([row.evaluated_at is not None for row in rows])
        out.append(
            [(ids[s.administration_id], s.kind, s.session, _normalise(s.evidence, ids, alert_ids)) for s in signals]
        )
        out.append(
            [
                (
                    a.kind,
                    a.status,
                    a.severity,
                    a.baseline,
                    a.opened_session,
                    a.sessions_open,
                    a.opened_at,
                    a.repaired_at,
                    a.resolved_at if a.resolution_reason == "repaired" else a.resolution_reason,
                    _normalise({"opened_by_administration_id": a.opened_by_administration_id}, ids, alert_ids),
                    _normalise(a.evidence, ids, alert_ids),
                    a.summary,
                )
                for a in alerts
            ]
        )
    return out


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_bulk_history_stores_what_evaluating_one_administration_at_a_time_stores(session: Session, seed: int) -> None:
    one_by_one, _ = build_practice(session, seed)
    bulk, _ = build_practice(session, seed)
    per_episode, _ = build_practice(session, seed)
    assert snapshot(session, one_by_one) == snapshot(session, bulk)  # the same data, partly evaluated alike
    for episode in one_by_one:
        for row in _waiting(session, episode):
            # Dated by the session itself, as history is.
            evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS, now=row.completed_at, notify=False)
    result = evaluate_episode_histories(session, [e.id for e in bulk], settings=DEFAULT_SETTINGS)
    for episode in per_episode:
        evaluate_episode_history(session, episode.id, settings=DEFAULT_SETTINGS)
    session.expire_all()
    expected = snapshot(session, one_by_one)
    assert snapshot(session, bulk) == expected
    assert snapshot(session, per_episode) == expected
    stored = session.scalars(
        select(SignalRecord).where(SignalRecord.episode_id.in_([e.id for e in bulk])).order_by(SignalRecord.id)
    ).all()
    kinds = {s.kind for s in stored}
    assert {RUPTURE_DROP, LOW_ALLIANCE, RISK} <= kinds, kinds
    assert kinds & {REPAIRED, UNREPAIRED}
    assert sum(len(v) for v in result.signals.values()) == len(
        [s for s in stored if s.administration_id in result.signals]
    )
    assert all(_waiting(session, e) == [] for e in bulk)
    assert result.notification_ids == []


def test_bulk_history_notifies_like_one_at_a_time_when_asked(session: Session) -> None:
    one_by_one, first = build_practice(session, 5)
    bulk, second = build_practice(session, 5)
    for episode in one_by_one:
        for row in _waiting(session, episode):
            evaluate_administration(session, row.id, settings=DEFAULT_SETTINGS, now=row.completed_at, base_url=BASE)
    result = evaluate_episode_histories(
        session, [e.id for e in bulk], settings=DEFAULT_SETTINGS, notify=True, base_url=BASE
    )
    assert snapshot(session, bulk) == snapshot(session, one_by_one)

    def keys(user: User) -> list[str]:
        notes = notifications_for(session, user.email)
        return [note.dedupe_key.split(":")[2] for note in notes if note.dedupe_key]

    assert keys(second) == keys(first)
    assert len(result.notification_ids) == len(notifications_for(session, second.email)) > 0
