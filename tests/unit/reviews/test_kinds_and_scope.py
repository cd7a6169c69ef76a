"""Case reviews by kind (an outcome review never asks about the partnership's components) and case-review pages
that agree with the open reviews for every role that has them."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.alerts.models import Alert
from services.db import utcnow
from services.reviews.models import Review
from services.reviews.operations import open_review, review_key
from services.reviews.policy import ReviewPolicy
from services.reviews.queries import practice_review_counts
from tests.unit.reviews.conftest import B3, Practice, alliance_series, phq9_series
from tests.unit.reviews.test_pages import submit, unrepaired_review
from tests.unit.web.conftest import login

POLICY = ReviewPolicy()
LONDON = ZoneInfo("Europe/London")


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def deterioration_review(session: Session, practice: Practice) -> Review:
    episode = phq9_series(session, practice.clinician, [10, 17])
    alert = session.scalar(select(Alert).where(Alert.episode_id == episode.id, Alert.kind == "outcome"))
    assert alert is not None
    review = open_review(
        session,
        reason="RELIABLE_DETERIORATION",
        key=review_key("RELIABLE_DETERIORATION", alert.id),
        episode_id=episode.id,
        alert_id=alert.id,
        now=utcnow(),
        policy=POLICY,
        tz=LONDON,
        trigger={"alert_id": alert.id, "first": 10, "score": 17, "worse_by": 7, "rc": 6},
        due_at=utcnow() + timedelta(days=2),
    )
    assert review is not None
    session.flush()
    return review


def test_an_outcome_review_asks_about_the_outcome_and_closes_its_alert_with_an_outcome_reason(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    review = deterioration_review(session, practice)
    assert login(client, practice.supervisor.email).status_code == 302
    text = _text(client.get(f"/reviews/{review.id}").get_data(as_text=True))
    assert "What has changed for the client?" in text
    assert "What may explain it?" in text
    assert "Treatment plan reviewed: close the alert" in text
    for rupture in ("component of the partnership", "What happened in the partnership", "Not a rupture"):
        assert rupture not in text, rupture
    status, body = submit(
        client,
        review.id,
        what_happened="Scores rose after a bereavement.",
        component="mutual_goals",
        clinician_tried="",
        plan="",
        outcome="client_improving",
    )
    assert status == 400  # a partnership component is not an answer to an outcome review
    assert "Choose what may explain it" in body
    status, _ = submit(
        client,
        review.id,
        what_happened="Scores rose after a bereavement.",
        factor="life_events",
        clinician_tried="Offered extra sessions.",
        plan="",
        outcome="referred_stepped_up",
    )
    assert status == 303
    session.expire_all()
    stored = session.get(Review, review.id)
    assert stored is not None
    assert (stored.status, stored.outcome, stored.form["factor"]) == ("completed", "referred_stepped_up", "life_events")
    alert = session.get(Alert, review.alert_id)
    assert alert is not None
    assert (alert.status, alert.resolution_reason) == ("resolved", "referred_stepped_up")
    done = _text(client.get(f"/reviews/{review.id}").get_data(as_text=True))
    assert "What may explain it Events in the client's life outside therapy" in done


def test_a_partnership_review_keeps_its_component_question(
    client: FlaskClient, session: Session, practice: Practice
) -> None:
    review = unrepaired_review(session, practice)
    assert login(client, practice.supervisor.email).status_code == 302
    text = _text(client.get(f"/reviews/{review.id}").get_data(as_text=True))
    assert "Which component of the partnership?" in text
    assert "What may explain it?" not in text


def test_every_review_page_agrees_with_the_open_reviews(
    client: FlaskClient, app: Flask, session: Session, practice: Practice
) -> None:
    north = [unrepaired_review(session, practice) for _ in range(3)]
    overdue = unrepaired_review(session, practice, due_in=timedelta(days=-1))
    unassigned = unrepaired_review(session, practice)
    unassigned.reviewer_id = None
    south_episode = alliance_series(session, practice.south_supervisor, B3)
    south_alert = session.scalar(select(Alert).where(Alert.episode_id == south_episode.id))
    assert south_alert is not None
    south = open_review(
        session,
        reason="UNREPAIRED",
        key=review_key("UNREPAIRED", south_alert.id),
        episode_id=south_episode.id,
        alert_id=south_alert.id,
        now=utcnow(),
        policy=POLICY,
        tz=LONDON,
        trigger={"alert_id": south_alert.id},
        reviewer=practice.supervisor,
    )
    assert south is not None
    session.flush()
    open_total = session.scalar(select(func.count()).select_from(Review).where(Review.status == "open"))
    assert open_total == 6

    # The North supervisor: their team's reviews and the one assigned to them from the South.
    assert login(client, practice.supervisor.email).status_code == 302
    page = client.get("/reviews/").get_data(as_text=True)
    for review in [*north, overdue, unassigned, south]:
        assert f'href="/reviews/{review.id}"' in page
    assert "Nothing to review" not in page
    client = app.test_client()

    # The manager holds none of them: never "Nothing to review" while six are open; the one nobody holds is theirs.
    assert login(client, practice.manager.email).status_code == 302
    text = _text(client.get("/reviews/").get_data(as_text=True))
    assert "Nothing to review" not in text
    assert "6 reviews are open. 1 is overdue." in text
    assert f"/reviews/{unassigned.id}" in client.get("/reviews/").get_data(as_text=True)
    assert client.get(f"/reviews/{unassigned.id}").status_code == 200
    assert client.get(f"/reviews/{north[0].id}").status_code == 404  # counts, not other reviewers' cases
    counts = {c.reviewer_name: (c.open, c.overdue) for c in practice_review_counts(session, practice.manager)}
    assert counts == {practice.supervisor.name: (5, 1), None: (1, 0)}
    assert practice_review_counts(session, practice.supervisor) == []


def test_a_practice_with_no_open_review_says_so(client: FlaskClient, session: Session, practice: Practice) -> None:
    assert login(client, practice.manager.email).status_code == 302
    text = _text(client.get("/reviews/").get_data(as_text=True))
    assert "Nothing to review." in text
    assert "Open across the practice" not in text
