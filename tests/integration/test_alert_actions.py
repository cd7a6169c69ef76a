"""A clinician acts on an alert through the web app, on PostgreSQL with a real worker on Redis and real SMTP.

The alert is opened by the worker from committed answers; the clinician follows the emailed link, acknowledges it in
place (htmx), records a repair step, resolves it without JavaScript, and rates the next session; the rows and the
audit trail are checked in the database the worker wrote to.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.accounts.models import User
from services.accounts.operations import create_api_token
from services.alerts.models import Alert, AlertAction
from services.audit.models import AuditEvent
from services.clients.models import Appointment, Episode
from services.config import Settings
from services.db import Database
from services.notifications.models import Notification
from services.surveys.models import Administration
from tests.factories import make_client, make_episode, make_user
from tests.integration.conftest import SmtpSink, WorkerProcess, wait_for
from tests.unit.alerts.series import B1, split_total, submit_partnership
from tests.unit.web.conftest import csrf_from, login
from web.app import create_app
from workers.enqueue import enqueue_after_commit

HTMX = {"HX-Request": "true", "HX-Target": "alert-panel"}


def test_clinician_acknowledges_and_resolves_through_the_web_app(
    it_settings: Settings, it_db: Database, running_worker: WorkerProcess, smtp: SmtpSink, celery_publisher: Any
) -> None:
    with it_db.unit_of_work() as session:
        clinician = make_user(session, role="clinician", team="Team Integration")
        other = make_user(session, role="clinician", team="Team Elsewhere")
        episode = make_episode(session, clinician=clinician, client=make_client(session))
        clinician_id, email, other_email = clinician.id, clinician.email, other.email
        episode_id, client_id = episode.id, episode.client_id
    # Sessions 1-5 of CLINICAL.md's B1, committed one by one and evaluated by the worker: the alert opens at 5.
    administration_ids = []
    for week, total in enumerate(B1[:5]):
        with it_db.unit_of_work() as session:
            row = submit_partnership(session, session.get(Episode, episode_id), split_total(total), week=week)  # type: ignore[arg-type]
            enqueue_after_commit(session, "alerts.evaluate", row.id)
            administration_ids.append(row.id)

    def evaluated() -> bool:
        with it_db.session() as s:
            return (
                s.scalar(select(Administration.evaluated_at).where(Administration.id == administration_ids[-1]))
                is not None
            )

    wait_for(evaluated, what="the worker to evaluate session 5")
    with it_db.session() as s:
        alert = s.scalar(select(Alert).where(Alert.episode_id == episode_id))
        assert alert is not None
        alert_id = alert.id
        assert (alert.kind, alert.status, alert.opened_session) == ("alliance", "open", 5)
    [message] = wait_for(lambda: smtp.to(email), what="the alert email")
    body = (
        message.get_payload(decode=True)
        if not message.is_multipart()
        else message.get_payload(0).get_payload(decode=True)
    )
    link = f"/clinician/alerts/{alert_id}"
    assert link in body.decode()
    assert "Testa" not in body.decode()  # no client data in the email

    app = create_app(settings=it_settings, database=it_db)
    web = app.test_client()
    assert login(web, email).status_code == 302
    home = web.get("/clinician/").get_data(as_text=True)  # the caseload's correlated subqueries, on PostgreSQL
    assert f'href="/clinician/alerts/{alert_id}"' in home
    assert '<tr class="row-amber">' in home
    page = web.get(link)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Partnership score fell from 36 to 27" in html
    token = csrf_from(html)
    acknowledged = web.post(f"{link}/acknowledge", data={"csrf_token": token}, headers=HTMX)
    assert acknowledged.status_code == 200
    assert "Acknowledged." in acknowledged.get_data(as_text=True)
    again = web.post(f"{link}/acknowledge", data={"csrf_token": token}, headers=HTMX)
    assert "already acknowledged" in again.get_data(as_text=True)
    step = web.post(
        f"{link}/repair-steps",
        data={
            "suggestion": "shared_responsibility.agree_next_step",
            "text": "Agreed a small step",
            "csrf_token": token,
        },
    )
    assert step.status_code == 303
    resolved = web.post(f"{link}/resolve", data={"reason": "repaired", "note": "", "csrf_token": token})
    assert resolved.status_code == 303

    # Another clinician cannot see it or act on it.
    outsider = app.test_client()
    assert login(outsider, other_email).status_code == 302
    assert outsider.get(link).status_code == 404
    outsider_token = csrf_from(outsider.get("/clinician/settings").get_data(as_text=True))
    assert (
        outsider.post(
            f"{link}/resolve", data={"reason": "other", "note": "x", "csrf_token": outsider_token}
        ).status_code
        == 404
    )

    with it_db.session() as s:
        stored = s.get(Alert, alert_id)
        assert stored is not None
        assert stored.status == "resolved"
        assert stored.resolution_reason == "repaired"
        assert stored.resolved_by_id == clinician_id
        assert stored.acknowledged_by_id == clinician_id
        assert stored.repaired_at is not None
        actions = list(s.scalars(select(AlertAction).where(AlertAction.alert_id == alert_id).order_by(AlertAction.id)))
        assert [(a.action, a.actor_id) for a in actions] == [
            ("acknowledged", clinician_id),
            ("repair_step", clinician_id),
            ("resolved", clinician_id),
        ]
        assert actions[1].detail == {"suggestion": "shared_responsibility.agree_next_step"}
        assert actions[1].text == "Agreed a small step"
        trail = list(s.scalars(select(AuditEvent).where(AuditEvent.client_id == client_id).order_by(AuditEvent.id)))
        assert [(e.action, e.actor_id) for e in trail if e.subject_type == "alert"] == [
            ("alert_acknowledged", clinician_id),
            ("alert_repair_step", clinician_id),
            ("alert_resolved", clinician_id),
        ]
        views = [e for e in trail if e.action == "client_viewed"]
        assert views
        assert {e.actor_id for e in views} == {clinician_id}
        assert all(e.detail["what"] == f"alert:{alert_id}" for e in views)
        notifications = list(s.scalars(select(Notification).where(Notification.recipient_user_id == clinician_id)))
        assert [n.dedupe_key for n in notifications] == [f"alert:{alert_id}:opened"]

    # The clinician rates the next session higher than the client does: the worker opens a new alert on the gap.
    with it_db.unit_of_work() as session:
        start = datetime.now(UTC) - timedelta(hours=1)
        appointment = Appointment(
            episode_id=episode_id, starts_at=start, ends_at=start + timedelta(minutes=50), status="completed"
        )
        session.add(appointment)
        session.flush()
        appointment_id = appointment.id
        row = submit_partnership(
            session,
            session.get(Episode, episode_id),
            split_total(30),
            week=5,
            appointment_id=appointment_id,  # type: ignore[arg-type]
        )
        enqueue_after_commit(session, "alerts.evaluate", row.id)
        client_row_id = row.id
    wait_for(lambda: _evaluated(it_db, client_row_id), what="the client's session 6 to be evaluated")
    rate_url = f"/clinician/sessions/{appointment_id}/partnership"
    form = web.get(rate_url).get_data(as_text=True)
    answers = {
        "tpc_rapport": "10",
        "tpc_mutual_goals": "10",
        "tpc_realistic_goals": "9",
        "tpc_shared_responsibility": "9",
    }
    rated = web.post(rate_url, data={**answers, "csrf_token": csrf_from(form)})
    assert rated.status_code == 303

    def gap_alert() -> Alert | None:
        with it_db.session() as s:
            return s.scalar(
                select(Alert).where(Alert.episode_id == episode_id, Alert.status == "open", Alert.id != alert_id)
            )

    opened = wait_for(gap_alert, what="the perspective-gap alert")
    assert [entry["kind"] for entry in opened.evidence] == ["PERSPECTIVE_GAP"]
    chart = web.get(f"/clinician/clients/{client_id}/chart").get_data(as_text=True)
    assert re.search(r"You rated the partnership 38, the client 30", chart)
    listed = web.get("/clinician/alerts?status=all").get_data(as_text=True)
    assert listed.index(f"/clinician/alerts/{opened.id}") < listed.index(f"/clinician/alerts/{alert_id}")
    with it_db.unit_of_work() as session:
        token = create_api_token(session, user=session.get(User, clinician_id))  # type: ignore[arg-type]
    api = web.get("/api/v1/alerts?status=resolved", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert [a["id"] for a in api["alerts"]] == [alert_id]


def _evaluated(db: Database, administration_id: int) -> bool:
    with db.session() as s:
        return s.scalar(select(Administration.evaluated_at).where(Administration.id == administration_id)) is not None
