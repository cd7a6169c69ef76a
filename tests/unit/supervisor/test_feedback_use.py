"""The supervisor's "was the feedback used?" table: it changes when a clinician opens a brief before the session."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.db import utcnow
from tests.factories import make_appointment, make_client, make_episode
from tests.unit.alerts.series import phq9_answers
from tests.unit.web.conftest import login


def _cell(html: str, clinician: User, figure: str) -> str:
    row = re.search(rf'<tr data-use="{clinician.id}">(.*?)</tr>', html, re.S)
    assert row is not None, html
    cell = re.search(rf'data-figure="{figure}">(.*?)</td>', row.group(1), re.S)
    assert cell is not None
    return cell.group(1).strip()


def test_the_feedback_viewed_figure_changes_when_the_clinician_opens_the_brief(
    app: Flask, session: Session, staff: Callable[..., User]
) -> None:
    from services.surveys.administrations import record_administration

    supervisor = staff("supervisor", team="Team Use")
    clinician = staff("clinician", team="Team Use")
    episode = make_episode(session, clinician=clinician, client=make_client(session))
    now = utcnow()
    appointment = make_appointment(session, episode=episode, starts_at=now + timedelta(hours=2))
    record_administration(
        session, episode_id=episode.id, instrument_code="PHQ-9", answers=phq9_answers(12), completed_at=now
    )
    session.commit()
    boss = app.test_client()
    login(boss, supervisor.email)
    before = boss.get("/supervisor/").get_data(as_text=True)
    assert _cell(before, clinician, "viewed") == "\u2013"  # undecided until opened or the session begins
    doctor = app.test_client()
    login(doctor, clinician.email)
    assert doctor.get(f"/clinician/sessions/{appointment.id}/brief").status_code == 200
    after = boss.get("/supervisor/").get_data(as_text=True)
    assert _cell(after, clinician, "viewed") == "1 of 1 (100%)"
    assert "Was the feedback used?" in after
