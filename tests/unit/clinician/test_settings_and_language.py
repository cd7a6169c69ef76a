"""The notification choice (risk always at once), and the clinician's pages in Spanish."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.models import Alert
from services.audit.models import AuditEvent
from services.notifications.models import Notification
from tests.factories import make_episode
from tests.unit.clinician.conftest import alliance_alert, page_csrf, risk_alert


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_digest_choice_is_saved_audited_and_risk_stays_immediate(
    client: FlaskClient, session: Session, signed_in: Callable[..., User]
) -> None:
    me = signed_in("clinician")
    page = client.get("/clinician/settings").get_data(as_text=True)
    assert "Risk alerts are always sent at once, whatever you choose here." in page
    assert "8:00\u202fAM and 4:00\u202fPM" in page  # the locale's clock (Babel writes a narrow no-break space)
    response = client.post(
        "/clinician/settings", data={"notify_mode": "digest", "csrf_token": page_csrf(client, "/clinician/settings")}
    )
    assert response.status_code == 303
    session.expire_all()
    assert session.get(User, me.id).notify_mode == "digest"  # type: ignore[union-attr]
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "notify_mode_changed"))
    assert event is not None
    assert event.detail == {"from": "immediate", "to": "digest"}
    # what the choice does: an alliance alert waits for the digest, a risk alert is sent at once
    alliance = alliance_alert(session, me)
    risk = risk_alert(session, make_episode(session, clinician=me))
    keys = set(session.scalars(select(Notification.dedupe_key).where(Notification.recipient_user_id == me.id)))
    assert f"alert:{risk.id}:opened" in keys
    assert f"alert:{alliance.id}:opened" not in keys
    bad = client.post(
        "/clinician/settings", data={"notify_mode": "never", "csrf_token": page_csrf(client, "/clinician/settings")}
    )
    assert bad.status_code == 400
    assert session.get(User, me.id).notify_mode == "digest"  # type: ignore[union-attr]


def test_supervisors_choose_too(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("supervisor")
    assert client.get("/clinician/settings").status_code == 200


def test_pages_in_spanish(client: FlaskClient, session: Session, staff: Callable[..., User]) -> None:
    from tests.unit.clinician.conftest import login

    me = staff("clinician")
    me.language = "es"
    session.flush()
    login(client, me.email)
    alert = alliance_alert(session, me)
    home = _text(client.get("/clinician/").get_data(as_text=True))
    assert "Alertas abiertas" in home
    assert "La puntuación de colaboración bajó de 36 a 27" in home
    assert "Colaboración" in home
    page = _text(client.get(f"/clinician/alerts/{alert.id}").get_data(as_text=True))
    assert "Qué ha pasado" in page
    assert "Las pruebas, en cifras" in page
    assert "no es un instrumento validado" in page
    assert "Termine cada sesión acordando juntos" in page
    assert "Resolver la alerta" in page
    chart = _text(client.get(f"/clinician/clients/{alert.episode.client_id}/chart").get_data(as_text=True))
    assert "Puntuaciones por sesión" in chart
    assert "Sesión" in chart
    settings = _text(client.get("/clinician/settings").get_data(as_text=True))
    assert "Las alertas de riesgo se envían siempre al momento" in settings
    assert session.scalar(select(Alert.summary).where(Alert.id == alert.id)).startswith("Partnership")  # type: ignore[union-attr]
