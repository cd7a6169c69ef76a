"""Spanish pages and dates in the practice's time zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from services.accounts.models import User
from tests.factories import make_appointment, make_episode
from tests.unit.web.conftest import login


def test_login_page_in_spanish_for_a_spanish_browser(client: FlaskClient) -> None:
    page = client.get("/login", headers={"Accept-Language": "es-ES,es;q=0.9"}).get_data(as_text=True)
    assert '<html lang="es">' in page
    assert "Iniciar sesión" in page
    assert "Contraseña" in page
    english = client.get("/login", headers={"Accept-Language": "en-GB"}).get_data(as_text=True)
    assert "Sign in" in english


def test_staff_language_setting_wins(client: FlaskClient, staff: Callable[..., User], session: Session) -> None:
    user = staff("clinician")
    user.language = "es"
    session.flush()
    login(client, user.email)
    page = client.get("/clinician/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Mi lista de casos" in page
    assert "Cerrar sesión" in page


def test_times_are_shown_in_the_practice_time_zone(
    make_app: Callable[..., Flask], staff: Callable[..., User], session: Session
) -> None:
    client = make_app(timezone="America/New_York").test_client()
    login(client, staff("front_desk").email)
    episode = make_episode(session)
    make_appointment(session, episode=episode, starts_at=datetime(2026, 1, 12, 15, 0, tzinfo=UTC))
    page = client.get(f"/frontdesk/clients/{episode.client_id}").get_data(as_text=True)
    assert "10:00" in page  # 15:00 UTC is 10:00 in New York in January
    assert "15:00" not in page
    assert "3:00" not in page
    assert "America/New_York" in page


def _strings(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def test_spanish_catalog_covers_every_message_and_is_compiled() -> None:
    import importlib.util

    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    from web.app import WEB_DIR

    # the same extraction as infra/update_translations.py: web/, and the N_()/Message() marks of services/, reports/
    spec = importlib.util.spec_from_file_location(
        "update_translations", WEB_DIR.parent / "infra" / "update_translations.py"
    )
    assert spec is not None
    assert spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    in_code = {message if isinstance(message, str) else message[0] for message, _context in tool.extract_messages()}
    assert len(in_code) > 800
    es_dir = WEB_DIR / "translations" / "es" / "LC_MESSAGES"
    with (es_dir / "messages.po").open("rb") as fh:
        po = read_po(fh)
    translated = {(m.id if isinstance(m.id, str) else m.id[0]): _strings(m.string) for m in po if m.id}
    assert sorted(in_code - set(translated)) == [], "run .venv/bin/python infra/update_translations.py"
    assert [key for key, value in translated.items() if not all(value)] == []
    with (es_dir / "messages.mo").open("rb") as fh:
        mo = read_mo(fh)
    compiled = {(m.id if isinstance(m.id, str) else m.id[0]): _strings(m.string) for m in mo if m.id}
    assert compiled == translated, "run .venv/bin/python infra/update_translations.py"
