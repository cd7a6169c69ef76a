"""The scheduler's review pass: which alerts call for a review, one review each however often it runs, who gets it,
when it is due, and the reminders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.models import Alert
from services.audit.models import AuditEvent
from services.notifications.models import Notification
from services.reviews.models import Review
from services.reviews.operations import open_due_reviews, queue_review_reminders
from services.reviews.policy import ReviewPolicy
from services.reviews.queries import reviewer_for
from services.signals import DEFAULT_SETTINGS
from tests.factories import make_user
from tests.unit.alerts.series import session_time
from tests.unit.reviews.conftest import B3, REPEAT, Practice, alliance_series, phq9_series

LONDON = ZoneInfo("Europe/London")
POLICY = ReviewPolicy(business_days=5)
# Tuesday 24 February 2026, the day after B3's seventh weekly session.
TUESDAY = datetime(2026, 2, 24, 9, 0, tzinfo=UTC)


def scan(session: Session, now: datetime, policy: ReviewPolicy = POLICY) -> list[Review]:
    return open_due_reviews(session, now=now, policy=policy, tz=LONDON, settings=DEFAULT_SETTINGS)


def reviews_of(session: Session, episode_id: int) -> list[Review]:
    return list(session.scalars(select(Review).where(Review.episode_id == episode_id).order_by(Review.id)))


def test_an_unrepaired_rupture_opens_one_review_for_the_supervisor_due_in_five_business_days(
    session: Session, practice: Practice
) -> None:
    episode = alliance_series(session, practice.clinician, B3)
    (alert,) = session.scalars(select(Alert).where(Alert.episode_id == episode.id)).all()
    opened = scan(session, TUESDAY)
    assert [(r.reason, r.key, r.alert_id) for r in opened] == [("UNREPAIRED", f"unrepaired:alert:{alert.id}", alert.id)]
    (review,) = opened
    assert review.reviewer_id == practice.supervisor.id  # the clinician's team, not the other supervisor
    assert review.due_at == datetime(2026, 3, 3, 17, 0, tzinfo=UTC)  # Tuesday + 5 business days, 17:00 London
    assert review.form["trigger"]["sessions_open"] == 3
    assert review.form["trigger"]["baseline"] == 37.0
    # Again, and again later: still one.
    assert scan(session, TUESDAY) == []
    assert scan(session, TUESDAY + timedelta(hours=3)) == []
    assert [r.id for r in reviews_of(session, episode.id)] == [review.id]
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "review_opened"))
    assert event is not None
    assert (event.subject_id, event.actor_label, event.client_id) == (review.id, "scheduler", episode.client_id)


def test_a_review_is_due_at_the_teams_next_supervision_slot_when_the_practice_says_so(
    session: Session, practice: Practice
) -> None:
    practice.north.supervision_weekday, practice.north.supervision_time = 4, "14:00"
    alliance_series(session, practice.clinician, B3)
    (review,) = scan(session, TUESDAY, ReviewPolicy(mode="supervision_slot"))
    assert review.due_at == datetime(2026, 2, 26, 14, 0, tzinfo=UTC)


def test_silence_after_a_rupture_opens_a_review_after_fourteen_days_and_only_once(
    session: Session, practice: Practice
) -> None:
    episode = alliance_series(session, practice.clinician, B3[:4])  # a rupture at the fourth session, then nothing
    last = session_time(3)
    assert scan(session, last + timedelta(days=14) - timedelta(minutes=1)) == []
    (review,) = scan(session, last + timedelta(days=14))
    assert review.reason == "SILENT_AFTER_RUPTURE"
    assert review.form["trigger"]["silent_days"] == 14
    assert scan(session, last + timedelta(days=20)) == []
    assert len(reviews_of(session, episode.id)) == 1


def test_silence_needs_an_open_alert(session: Session, practice: Practice) -> None:
    episode = alliance_series(session, practice.clinician, [36, 37, 38, 29, 38])  # ruptured, then repaired
    assert scan(session, session_time(4) + timedelta(days=30)) == []
    assert reviews_of(session, episode.id) == []


def test_two_alliance_alerts_within_four_sessions_open_a_review(session: Session, practice: Practice) -> None:
    episode = alliance_series(session, practice.clinician, REPEAT)
    first, second = session.scalars(select(Alert).where(Alert.episode_id == episode.id).order_by(Alert.id)).all()
    (review,) = scan(session, session_time(5) + timedelta(hours=1))
    assert (review.reason, review.alert_id) == ("REPEATED_RUPTURE", second.id)
    assert review.form["trigger"]["previous_alert_id"] == first.id
    assert scan(session, session_time(5) + timedelta(hours=2)) == []


def test_reliable_deterioration_opens_a_review(session: Session, practice: Practice) -> None:
    episode = phq9_series(session, practice.clinician, [8, 18])
    (alert,) = session.scalars(select(Alert).where(Alert.episode_id == episode.id)).all()
    assert (alert.kind, alert.severity) == ("outcome", "red")
    (review,) = scan(session, TUESDAY)
    assert (review.reason, review.key) == ("RELIABLE_DETERIORATION", f"deterioration:alert:{alert.id}")
    assert scan(session, TUESDAY) == []


def test_a_stable_series_opens_nothing(session: Session, practice: Practice) -> None:
    alliance_series(session, practice.clinician, [39, 40, 39, 40, 38, 40])
    phq9_series(session, practice.clinician, [18, 16, 12])
    assert scan(session, TUESDAY + timedelta(days=60)) == []


def test_a_supervisors_own_case_goes_to_another_supervisor_else_a_manager(session: Session, practice: Practice) -> None:
    assert reviewer_for(session, practice.supervisor) == practice.south_supervisor
    assert reviewer_for(session, practice.clinician) == practice.supervisor
    lone = make_user(session, role="clinician", team="Team West")
    assert reviewer_for(session, lone) == practice.south_supervisor  # no supervisor in the team: any supervisor
    for user in (practice.supervisor, practice.south_supervisor):
        user.active = False
    session.flush()
    assert reviewer_for(session, practice.clinician) == practice.manager


def test_reminders_go_once_before_due_and_once_when_overdue(session: Session, practice: Practice) -> None:
    alliance_series(session, practice.clinician, B3)
    (review,) = scan(session, TUESDAY)
    base = "http://rapport.test"
    assert queue_review_reminders(session, now=review.due_at - timedelta(hours=30), policy=POLICY, base_url=base) == []
    (reminder_id,) = queue_review_reminders(
        session, now=review.due_at - timedelta(hours=20), policy=POLICY, base_url=base
    )
    assert queue_review_reminders(session, now=review.due_at - timedelta(hours=19), policy=POLICY, base_url=base) == []
    (overdue_id,) = queue_review_reminders(
        session, now=review.due_at + timedelta(minutes=1), policy=POLICY, base_url=base
    )
    assert queue_review_reminders(session, now=review.due_at + timedelta(days=3), policy=POLICY, base_url=base) == []
    notes = session.scalars(select(Notification).where(Notification.id.in_([reminder_id, overdue_id]))).all()
    assert {(n.template, n.to_address, n.dedupe_key) for n in notes} == {
        ("review_due", practice.supervisor.email, f"review:{review.id}:reminder"),
        ("review_due", practice.supervisor.email, f"review:{review.id}:overdue"),
    }
    # The message carries a link and nothing about the client.
    assert all(n.context == {"link": f"{base}/reviews/{review.id}", "language": "en"} for n in notes)


def test_a_review_whose_reviewer_left_is_reassigned_when_its_reminder_is_due(
    session: Session, practice: Practice
) -> None:
    alliance_series(session, practice.clinician, B3)
    (review,) = scan(session, TUESDAY)
    practice.supervisor.active = False
    session.flush()
    (note_id,) = queue_review_reminders(session, now=review.due_at + timedelta(hours=1), policy=POLICY, base_url="")
    note = session.get(Notification, note_id)
    assert note is not None
    assert note.to_address == practice.south_supervisor.email
    session.refresh(review)
    assert review.reviewer_id == practice.south_supervisor.id
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "review_reassigned"))


def test_nobody_to_review_leaves_the_review_unassigned(session: Session) -> None:
    clinician: User = make_user(session, role="clinician", team="Team Solo")
    alliance_series(session, clinician, B3)
    (review,) = scan(session, TUESDAY)
    assert review.reviewer_id is None
    assert queue_review_reminders(session, now=review.due_at + timedelta(hours=1), policy=POLICY, base_url="") == []


def test_a_rupture_repaired_at_the_last_session_of_the_window_opens_no_review(
    session: Session, practice: Practice
) -> None:
    episode = alliance_series(session, practice.clinician, [36, 37, 38, 29, 30, 31, 37])
    (alert,) = session.scalars(select(Alert).where(Alert.episode_id == episode.id)).all()
    assert (alert.status, alert.resolution_reason, alert.sessions_open) == ("resolved", "repaired", 3)
    assert scan(session, TUESDAY) == []


def test_a_deterioration_review_keeps_the_numbers_that_opened_it(session: Session, practice: Practice) -> None:
    phq9_series(session, practice.clinician, [8, 18])
    (review,) = scan(session, TUESDAY)
    trigger = review.form["trigger"]
    assert (trigger["instrument"], trigger["first"], trigger["score"], trigger["worse_by"]) == ("PHQ-9", 8, 18, 10)
