"""Case review verbs: open reviews the rules call for, remind reviewers, complete a review. They flush; callers commit.

What opens a review (CLINICAL.md section 3 and 4), each under a natural key so a repeat, a second scheduler or a
concurrent run opens nothing twice (reviews.key is unique):

- UNREPAIRED            "unrepaired:alert:<id>"     an alliance alert that went the repair window without repair
                                                    (the UNREPAIRED signal the evaluation stored on the alert);
- REPEATED_RUPTURE      "repeat:alert:<id>"         an alliance alert opened within review_alert_window sessions of
                                                    the previous one on the same series;
- RELIABLE_DETERIORATION "deterioration:alert:<id>" an outcome alert carrying reliable deterioration (severity red);
- SILENT_AFTER_RUPTURE  "silent:alert:<id>"         an alliance alert still open and no administration in the
                                                    episode for the silence window (found with the `now` passed in);
- FOLLOW_UP             "follow_up:review:<id>"     a follow-up date set when a review was completed.

The scan looks only at alerts that are not resolved, plus those opened within LOOKBACK (so a rupture repaired or
resolved between two runs still gets its review); both are ranges of the (status, opened_at) index, and alerts that
already have their review are dropped in SQL by the unique key, so a pass reads a few rows at any size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, cast, exists, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from services.accounts.models import Role, Team, User
from services.alerts.kinds import EPISODE_ENDED, resolution_reasons
from services.alerts.models import Alert
from services.alerts.operations import acknowledge_alert, add_alert_note, resolve_alert
from services.alerts.repair import REPAIR_TOPICS
from services.audit.operations import record_event
from services.clients.models import Episode
from services.db import utcnow
from services.notifications.operations import queue_notification
from services.reviews.models import Review
from services.reviews.policy import ReviewPolicy, follow_up_due_at, parse_slot, review_due_at
from services.reviews.queries import COMPLETED, OPEN, ReviewDetail, reviewer_for
from services.signals import RELIABLE_DETERIORATION, UNREPAIRED, SignalSettings, silent_after_rupture
from services.surveys.models import Administration

UNREPAIRED_REASON = "UNREPAIRED"
SILENT_REASON = "SILENT_AFTER_RUPTURE"
REPEAT_REASON = "REPEATED_RUPTURE"
DETERIORATION_REASON = "RELIABLE_DETERIORATION"
FOLLOW_UP_REASON = "FOLLOW_UP"
KEY_PREFIX = {
    UNREPAIRED_REASON: "unrepaired:alert:",
    SILENT_REASON: "silent:alert:",
    REPEAT_REASON: "repeat:alert:",
    DETERIORATION_REASON: "deterioration:alert:",
    FOLLOW_UP_REASON: "follow_up:review:",
}
# Episodes still in care: reviews are opened and reminded only for these.
_OPEN_EPISODES = select(Episode.id).where(Episode.ended_on.is_(None))
# Alerts resolved since the last run still get the review they earned, within this window.
LOOKBACK = timedelta(days=30)
# Per pass and trigger; the next pass takes the rest.
BATCH = 200
SCHEDULER = "scheduler"

# What a completed review decided, and what it does to the alert it is about (None: the alert stays open), by the
# kind of alert the review is about: a partnership review walks through its components, an outcome review through
# what may explain the change, a risk review through what lies behind the answer.
ALLIANCE_OUTCOMES: dict[str, str | None] = {
    "repaired": "repaired",
    "plan_agreed": None,
    "not_a_concern": "not_a_rupture",
    "client_ended": "client_ended",
}
OUTCOME_OUTCOMES: dict[str, str | None] = {
    "plan_reviewed": "plan_reviewed",
    "referred_stepped_up": "referred_stepped_up",
    "client_improving": "client_improving",
    "plan_agreed": None,
}
RISK_OUTCOMES: dict[str, str | None] = {
    "contacted_client": "contacted_client",
    "safety_plan_reviewed": "safety_plan_reviewed",
    "emergency_services": "emergency_services",
    "not_a_risk": "not_a_risk",
    "plan_agreed": None,
}
OUTCOMES_BY_KIND: dict[str, dict[str, str | None]] = {
    "alliance": ALLIANCE_OUTCOMES,
    "outcome": OUTCOME_OUTCOMES,
    "risk": RISK_OUTCOMES,
}
OUTCOMES = ALLIANCE_OUTCOMES
OUTCOME_LABELS = {
    "repaired": "repaired or resolved",
    "plan_agreed": "plan agreed",
    "not_a_concern": "not a rupture or concern",
    "client_ended": "client ended therapy",
    "plan_reviewed": "treatment plan reviewed",
    "referred_stepped_up": "referred or stepped up",
    "client_improving": "client improving",
    "contacted_client": "client contacted",
    "safety_plan_reviewed": "safety plan reviewed",
    "emergency_services": "emergency services involved",
    "not_a_risk": "not a risk",
}
COMPONENTS = REPAIR_TOPICS
OUTCOME_FACTORS = ("life_events", "treatment_fit", "partnership", "engagement", "unclear")
RISK_FACTORS = ("recent_crisis", "long_standing", "misunderstood", "unclear")
CHOICES_BY_KIND: dict[str, tuple[str, ...]] = {
    "alliance": COMPONENTS,
    "outcome": OUTCOME_FACTORS,
    "risk": RISK_FACTORS,
}
# The form's key for the choice: the partnership's component, or what may explain an outcome or a risk answer.
CHOICE_FIELD = {"alliance": "component", "outcome": "factor", "risk": "factor"}
MAX_TEXT = 2000


class ReviewError(ValueError):
    """A review cannot be completed as asked, with a message fit to show.

    template is the English message with %(name)s placeholders and params their values, so a page can show it in
    the reader's language (web/reviews keeps the translations); str(exc) is the English text.
    """

    def __init__(self, template: str, **params: object) -> None:
        super().__init__(template % params if params else template)
        self.template = template
        self.params = params


def review_link(base_url: str, review_id: int) -> str:
    """The page a reminder links to: the review, nothing about the client."""
    return f"{base_url.rstrip('/')}/reviews/{review_id}"


def review_key(reason: str, subject_id: int) -> str:
    """The natural key of the review reason calls for on an alert (or, for a follow-up, on a review)."""
    return f"{KEY_PREFIX[reason]}{subject_id}"


# Opening reviews ---------------------------------------------------------------------------------------------------


def _slot_for(session: Session, *users: User | None) -> tuple[int, Any] | None:
    for user in users:
        if user is None or user.team_id is None:
            continue
        team = session.get(Team, user.team_id)
        slot = parse_slot(team.supervision_weekday, team.supervision_time) if team is not None else None
        if slot is not None:
            return slot
    return None


def open_review(
    session: Session,
    *,
    reason: str,
    key: str,
    episode_id: int,
    alert_id: int | None,
    now: datetime,
    policy: ReviewPolicy,
    tz: ZoneInfo,
    trigger: dict[str, Any],
    reviewer: User | None = None,
    due_at: datetime | None = None,
) -> Review | None:
    """Open the review with this natural key; None when it exists already (a repeat or a concurrent run)."""
    if session.scalar(select(Review.id).where(Review.key == key)) is not None:
        return None
    episode = session.get(Episode, episode_id)
    if episode is None:
        return None
    clinician = session.get(User, episode.clinician_id)
    if reviewer is None:
        reviewer = reviewer_for(session, clinician)
    if due_at is None:
        due_at = review_due_at(now, policy, tz, slot=_slot_for(session, clinician, reviewer))
    row = Review(
        key=key,
        reason=reason,
        alert_id=alert_id,
        episode_id=episode_id,
        reviewer_id=reviewer.id if reviewer is not None else None,
        status=OPEN,
        created_at=now,
        due_at=due_at,
        form={"trigger": trigger},
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None  # opened by a concurrent run between the look-up and the insert
    record_event(
        session,
        action="review_opened",
        actor_label=SCHEDULER,
        subject_type="review",
        subject_id=row.id,
        client_id=episode.client_id,
        detail={
            "reason": reason,
            "alert_id": alert_id,
            "reviewer_id": row.reviewer_id,
            "due_at": due_at.isoformat(),
        },
    )
    return row


def _without_review(reason: str) -> Any:
    key = literal(KEY_PREFIX[reason]) + cast(Alert.id, String)
    return ~exists(select(Review.id).where(Review.key == key))


def _relevant(now: datetime) -> Any:
    # Two ranges of ix_alerts_status_opened: every unresolved alert, and resolved ones opened recently; never one
    # whose episode has ended (closed as "episode ended", or about to be by the escalation job's safety net).
    return and_(
        or_(
            Alert.status.in_(("open", "acknowledged")),
            and_(Alert.status == "resolved", Alert.opened_at >= now - LOOKBACK),
        ),
        or_(Alert.resolution_reason.is_(None), Alert.resolution_reason != EPISODE_ENDED),
        Alert.episode_id.in_(_OPEN_EPISODES),
    )


def _series(alert: Alert) -> str | None:
    return str(alert.evidence[0].get("series")) if alert.evidence and alert.evidence[0].get("series") else None


def _entry(alert: Alert, kind: str) -> dict[str, Any] | None:
    return next((entry for entry in alert.evidence if entry.get("kind") == kind), None)


def _numbers(evidence: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in evidence.items() if isinstance(v, int | float) and not isinstance(v, bool)}


@dataclass(frozen=True)
class Finding:
    """A review the rules call for: why, on which alert, and the numbers behind it."""

    reason: str
    alert_id: int
    episode_id: int
    trigger: dict[str, Any]


def find_review_triggers(
    session: Session, *, now: datetime, settings: SignalSettings, limit: int = BATCH
) -> list[Finding]:
    """Alerts that call for a review they do not have yet (pure reads)."""
    found: list[Finding] = []
    relevant = _relevant(now)

    unrepaired = session.scalars(
        select(Alert)
        .where(
            relevant,
            Alert.kind == "alliance",
            Alert.sessions_open >= settings.repair_window,
            # Repaired at the last session of the window: it never went unrepaired (and would stay a candidate).
            ~(
                (Alert.status == "resolved")
                & (Alert.resolution_reason == "repaired")
                & (Alert.sessions_open == settings.repair_window)
            ),
            _without_review(UNREPAIRED_REASON),
        )
        .order_by(Alert.id)
        .limit(limit)
    )
    for alert in unrepaired:
        entry = _entry(alert, UNREPAIRED)
        if entry is not None:
            trigger = {"alert_id": alert.id, "session": entry.get("session"), **_numbers(entry.get("evidence") or {})}
            found.append(Finding(UNREPAIRED_REASON, alert.id, alert.episode_id, trigger))

    previous = aliased(Alert)
    repeated = session.execute(
        select(Alert, previous)
        .join(
            previous,
            and_(
                previous.episode_id == Alert.episode_id,
                previous.kind == "alliance",
                previous.id < Alert.id,
                previous.opened_session <= Alert.opened_session,
                previous.opened_session >= Alert.opened_session - settings.review_alert_window,
            ),
        )
        .where(relevant, Alert.kind == "alliance", _without_review(REPEAT_REASON))
        .order_by(Alert.id, previous.id.desc())
        .limit(limit)
    )
    seen: set[int] = set()
    for alert, earlier in repeated:
        if alert.id in seen or _series(alert) != _series(earlier):
            continue
        seen.add(alert.id)
        trigger = {
            "alert_id": alert.id,
            "previous_alert_id": earlier.id,
            "opened_session": alert.opened_session,
            "previous_opened_session": earlier.opened_session,
            "window": settings.review_alert_window,
        }
        found.append(Finding(REPEAT_REASON, alert.id, alert.episode_id, trigger))

    deteriorated = session.scalars(
        select(Alert)
        .where(relevant, Alert.kind == "outcome", Alert.severity == "red", _without_review(DETERIORATION_REASON))
        .order_by(Alert.id)
        .limit(limit)
    )
    for alert in deteriorated:
        entry = _entry(alert, RELIABLE_DETERIORATION)
        if entry is not None:
            trigger = {
                "alert_id": alert.id,
                "session": entry.get("session"),
                "instrument": entry.get("instrument"),
                **_numbers(entry.get("evidence") or {}),
            }
            found.append(Finding(DETERIORATION_REASON, alert.id, alert.episode_id, trigger))

    last_seen = (
        select(func.max(Administration.completed_at))
        .where(Administration.episode_id == Alert.episode_id)
        .correlate(Alert)
        .scalar_subquery()
    )
    silent = session.execute(
        select(Alert.id, Alert.episode_id, last_seen.label("last_seen"))
        .where(
            Alert.status.in_(("open", "acknowledged")),
            Alert.kind == "alliance",
            Alert.episode_id.in_(_OPEN_EPISODES),
            _without_review(SILENT_REASON),
            last_seen <= now - timedelta(days=settings.silence_days),
        )
        .order_by(Alert.id)
        .limit(limit)
    )
    for alert_id, episode_id, last in silent:
        if last is not None and silent_after_rupture(last, now, settings):
            trigger = {
                "alert_id": alert_id,
                "last_administration_at": last.isoformat(),
                "silent_days": (now - last).days,
                "silence_days": settings.silence_days,
            }
            found.append(Finding(SILENT_REASON, alert_id, episode_id, trigger))
    return found


def open_due_reviews(
    session: Session, *, now: datetime, policy: ReviewPolicy, tz: ZoneInfo, settings: SignalSettings
) -> list[Review]:
    """Open every review the rules call for (the scheduler's pass; a repeat opens nothing)."""
    opened = []
    for finding in find_review_triggers(session, now=now, settings=settings):
        row = open_review(
            session,
            reason=finding.reason,
            key=review_key(finding.reason, finding.alert_id),
            episode_id=finding.episode_id,
            alert_id=finding.alert_id,
            now=now,
            policy=policy,
            tz=tz,
            trigger=finding.trigger,
        )
        if row is not None:
            opened.append(row)
    session.flush()
    return opened


# Reminders ---------------------------------------------------------------------------------------------------------


def _reviewer_now(session: Session, review: Review) -> User | None:
    """The review's reviewer; one who left (inactive or gone) is replaced by whoever reviews the case now."""
    reviewer = session.get(User, review.reviewer_id) if review.reviewer_id is not None else None
    if reviewer is not None and reviewer.active:
        return reviewer
    episode = session.get(Episode, review.episode_id)
    clinician = session.get(User, episode.clinician_id) if episode is not None else None
    replacement = reviewer_for(session, clinician)
    if replacement is not None and replacement.id != review.reviewer_id:
        record_event(
            session,
            action="review_reassigned",
            actor_label=SCHEDULER,
            subject_type="review",
            subject_id=review.id,
            client_id=episode.client_id if episode is not None else None,
            detail={"from": review.reviewer_id, "to": replacement.id},
        )
        review.reviewer_id = replacement.id
    return replacement


def queue_review_reminders(session: Session, *, now: datetime, policy: ReviewPolicy, base_url: str) -> list[int]:
    """One reminder before a review is due and one once it is overdue; returns the notification ids to publish."""
    notification_ids: list[int] = []
    passes: list[tuple[str, Any, Any]] = [
        ("overdue", Review.overdue_notified_at, Review.due_at <= now),
    ]
    if policy.reminder_before > timedelta(0):
        passes.append(
            ("reminder", Review.reminded_at, and_(Review.due_at > now, Review.due_at <= now + policy.reminder_before))
        )
    for what, column, when in passes:
        reviews = session.scalars(
            select(Review)
            .where(Review.status == OPEN, column.is_(None), when, Review.episode_id.in_(_OPEN_EPISODES))
            .order_by(Review.due_at, Review.id)
            .limit(BATCH)
        )
        for review in list(reviews):
            values: dict[str, Any] = {column.key: now}
            if what == "overdue":
                values["reminded_at"] = func.coalesce(Review.reminded_at, now)  # no "due soon" after "overdue"
            claimed = session.execute(
                update(Review)
                .where(Review.id == review.id, Review.status == OPEN, column.is_(None))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                continue
            reviewer = _reviewer_now(session, review)
            if reviewer is None or not reviewer.email:
                continue
            notification = queue_notification(
                session,
                channel="email",
                template="review_due",
                to_address=reviewer.email,
                recipient_user_id=reviewer.id,
                context={"link": review_link(base_url, review.id), "language": reviewer.language},
                dedupe_key=f"review:{review.id}:{what}",
            )
            notification_ids.append(notification.id)
    session.flush()
    return notification_ids


# Completing a review -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewAnswers:
    """The review form: the partnership's components walked through, an outcome, and an optional follow-up date."""

    what_happened: str
    component: str
    clinician_tried: str
    plan: str
    outcome: str
    follow_up_on: date | None = None


@dataclass
class CompletedReview:
    """What completing a review did."""

    review: Review
    follow_up: Review | None = None
    alert_resolved: bool = False


def _clean(value: str | None, *, too_long: str, missing: str | None = None) -> str:
    """The text stripped; missing is the message when it is required and empty (None: optional)."""
    text = (value or "").strip()
    if missing is not None and not text:
        raise ReviewError(missing)
    if len(text) > MAX_TEXT:
        raise ReviewError(too_long, max=MAX_TEXT)
    return text


def check_answers(
    answers: ReviewAnswers, *, today: date, policy: ReviewPolicy, kind: str = "alliance"
) -> ReviewAnswers:
    """The answers cleaned and checked against the form of this kind (raises ReviewError with a message to show)."""
    outcomes = OUTCOMES_BY_KIND.get(kind, ALLIANCE_OUTCOMES)
    if answers.outcome not in outcomes:
        raise ReviewError("Choose an outcome: %(choices)s.", choices=", ".join(outcomes))
    choices = CHOICES_BY_KIND.get(kind, COMPONENTS)
    if answers.component not in choices:
        if kind == "alliance":
            raise ReviewError("Choose the component of the partnership: %(choices)s.", choices=", ".join(choices))
        raise ReviewError("Choose what may explain it: %(choices)s.", choices=", ".join(choices))
    if answers.follow_up_on is not None:
        if answers.follow_up_on <= today:
            raise ReviewError("A follow-up date must be after today.")
        if answers.follow_up_on > today + timedelta(days=policy.follow_up_max_days):
            raise ReviewError("A follow-up date must be within %(days)d days.", days=policy.follow_up_max_days)
    return ReviewAnswers(
        what_happened=_clean(
            answers.what_happened,
            missing="Please write what happened.",
            too_long="Please keep what happened under %(max)d characters.",
        ),
        component=answers.component,
        clinician_tried=_clean(
            answers.clinician_tried,
            too_long="Please keep what the clinician tried under %(max)d characters.",
        ),
        plan=_clean(
            answers.plan,
            missing="Please write the plan." if answers.outcome == "plan_agreed" else None,
            too_long="Please keep the plan under %(max)d characters.",
        ),
        outcome=answers.outcome,
        follow_up_on=answers.follow_up_on,
    )


def _alert_note(review: Review, answers: ReviewAnswers) -> str:
    parts = [f"Case review ({review.reason.replace('_', ' ').lower()}): {OUTCOME_LABELS[answers.outcome]}."]
    if answers.plan:
        parts.append(f"Plan: {answers.plan}")
    if answers.follow_up_on is not None:
        parts.append(f"Follow-up on {answers.follow_up_on.isoformat()}.")
    return " ".join(parts)[:MAX_TEXT]


def complete_review(
    session: Session,
    detail: ReviewDetail,
    *,
    actor: User,
    answers: ReviewAnswers,
    policy: ReviewPolicy,
    tz: ZoneInfo,
    now: datetime | None = None,
    ip: str | None = None,
) -> CompletedReview:
    """Record the review, close the loop on its alert, and open the follow-up check if a date was set.

    Permission is the caller's: pass only a detail that `queries.get_review_for` returned for actor (for_update).
    """
    now = now or utcnow()
    review = detail.review
    if review.status != OPEN:
        raise ReviewError("This review is already completed.")
    kind = detail.kind
    clean = check_answers(answers, today=now.astimezone(tz).date(), policy=policy, kind=kind)
    review.status = COMPLETED
    review.completed_at = now
    review.completed_by_id = actor.id
    review.outcome = clean.outcome
    review.follow_up_on = clean.follow_up_on
    review.form = {
        **review.form,
        "what_happened": clean.what_happened,
        CHOICE_FIELD.get(kind, "component"): clean.component,
        "clinician_tried": clean.clinician_tried,
        "plan": clean.plan,
        "follow_up_on": clean.follow_up_on.isoformat() if clean.follow_up_on else None,
    }
    result = CompletedReview(review=review)
    alert = (
        session.scalar(
            select(Alert).where(Alert.id == review.alert_id).with_for_update().execution_options(populate_existing=True)
        )
        if review.alert_id is not None
        else None
    )
    if alert is not None:
        note = _alert_note(review, clean)
        resolution = OUTCOMES_BY_KIND.get(kind, ALLIANCE_OUTCOMES)[clean.outcome]
        if resolution is not None and resolution not in resolution_reasons(alert.kind):
            resolution = None  # a follow-up of another kind's review: the alert keeps its own workflow
        if resolution is not None and alert.status != "resolved":
            resolve_alert(session, alert, actor=actor, reason=resolution, note=note, ip=ip)
            result.alert_resolved = True
        else:
            if alert.status == "open":
                acknowledge_alert(session, alert, actor=actor, ip=ip)
            add_alert_note(session, alert, actor=actor, text=note, ip=ip)
    if clean.follow_up_on is not None:
        follow_up_reviewer = actor if actor.role in (Role.SUPERVISOR, Role.MANAGER) else detail.reviewer
        result.follow_up = open_review(
            session,
            reason=FOLLOW_UP_REASON,
            key=review_key(FOLLOW_UP_REASON, review.id),
            episode_id=review.episode_id,
            alert_id=review.alert_id,
            now=now,
            policy=policy,
            tz=tz,
            trigger={"review_id": review.id, "follow_up_on": clean.follow_up_on.isoformat()},
            reviewer=follow_up_reviewer,
            due_at=follow_up_due_at(clean.follow_up_on, policy, tz),
        )
    record_event(
        session,
        action="review_completed",
        actor_id=actor.id,
        subject_type="review",
        subject_id=review.id,
        client_id=detail.client.id,
        ip=ip,
        detail={
            "reason": review.reason,
            "outcome": clean.outcome,
            CHOICE_FIELD.get(kind, "component"): clean.component,
            "alert_id": review.alert_id,
            "alert_resolved": result.alert_resolved,
            "follow_up_review_id": result.follow_up.id if result.follow_up is not None else None,
        },
    )
    session.flush()
    return result
