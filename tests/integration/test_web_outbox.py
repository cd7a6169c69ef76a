"""A notification written inside a web request reaches a real SMTP server through a real worker."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.config import Settings
from services.db import Database
from services.notifications.models import Notification
from tests.factories import make_user
from tests.integration.conftest import SmtpSink, WorkerProcess, wait_for
from tests.unit.web.conftest import login, post_form
from web.app import create_app


def test_admin_test_email_written_in_a_request_is_delivered(
    it_settings: Settings, it_db: Database, running_worker: WorkerProcess, smtp: SmtpSink, celery_publisher: Any
) -> None:
    with it_db.unit_of_work() as session:
        admin = make_user(session, role="admin", email="it-admin@example.test", team=None)
        admin_id = admin.id
    app = create_app(settings=it_settings, database=it_db)
    client = app.test_client()
    assert login(client, "it-admin@example.test").status_code == 302
    response = post_form(client, "/admin/operations/test-email", page="/admin/operations")
    assert response.status_code == 302
    wait_for(lambda: smtp.to("it-admin@example.test"), what="the test email at the SMTP server")
    with it_db.session() as s:
        row = s.scalar(select(Notification).where(Notification.recipient_user_id == admin_id))
        assert row is not None
        wait_for(lambda: s.get(Notification, row.id, populate_existing=True).status == "sent", what="status sent")
    [message] = smtp.to("it-admin@example.test")
    assert message["Subject"] == "Rapport test message"
