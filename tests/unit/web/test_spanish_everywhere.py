"""Every staff page and the survey, in Spanish on a small demo practice, show no English message from the catalog.

The routes come from the app's url_map (GET routes without arguments, plus id routes filled from the demo data), so
pages added later are covered without touching this test. A page fails when the text a reader sees (tags stripped,
plus alt/title/aria-label/placeholder) contains a msgid of the catalog whose Spanish differs from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.models import Alert
from services.clients.models import Appointment, Client, Episode
from services.db import Database
from services.demo.seed import DEMO_LOGINS, DEMO_PASSWORD, seed_demo
from services.reporting.operations import request_report
from services.reporting.periods import ReportScope
from services.reviews.models import Review
from services.reviews.operations import open_due_reviews
from services.reviews.policy import ReviewPolicy
from services.signals import DEFAULT_SETTINGS
from services.surveys.invitations import issue_token
from services.surveys.models import Invitation
from tests.unit.survey.helpers import answers_for, state_of
from tests.unit.web.conftest import HOMES, login, post_form

# Messages that read the same in both languages or that appear inside Spanish text; keep this short and explicit.
SAME_IN_SPANISH: frozenset[str] = frozenset()
# Endpoints that serve no page in a language (files, JSON, machine endpoints).
NOT_PAGES = ("api.", "fhir.", "static", "health.")
PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|%[sdif]|\{\w*\}")
WORD = re.compile(r"[A-Za-z]{2,}")
SHOWN_ATTRIBUTES = ("alt", "title", "aria-label", "placeholder")


class _Text(HTMLParser):
    """The text a reader sees or hears: character data outside script and style, and a few attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        self.parts.extend(value for name, value in attrs if name in SHOWN_ATTRIBUTES and value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """The page's visible text with whitespace collapsed."""
    parser = _Text()
    parser.feed(html)
    return " " + re.sub(r"\s+", " ", " ".join(parser.parts)) + " "


def english_fragments() -> dict[str, str]:
    """Fragment -> msgid: each msgid's literal pieces between placeholders that hold at least two words."""
    from babel.messages.pofile import read_po

    from web.app import WEB_DIR

    with (WEB_DIR / "translations" / "es" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh)
    fragments: dict[str, str] = {}
    for message in catalog:
        msgid = message.id if isinstance(message.id, str) else (message.id[0] if message.id else "")
        spanish = message.string if isinstance(message.string, str) else " ".join(message.string or ())
        if not msgid or msgid in SAME_IN_SPANISH or msgid == spanish:
            continue
        for piece in PLACEHOLDER.split(msgid):
            piece = re.sub(r"\s+", " ", piece).strip(" .,:;()")
            if len(WORD.findall(piece)) >= 2 and piece not in spanish:
                fragments[piece] = msgid
    return fragments


@pytest.fixture(scope="module")
def fragments() -> dict[str, str]:
    """The catalog's English fragments (read once)."""
    return english_fragments()


def untranslated(html: str, fragments: dict[str, str]) -> list[str]:
    """The catalog's English messages found in a page's visible text."""
    text = visible_text(html)
    return sorted(
        {
            msgid
            for piece, msgid in fragments.items()
            if piece in text and re.search(rf"(?<![A-Za-z]){re.escape(piece)}(?![A-Za-z])", text)
        }
    )


@dataclass
class Demo:
    """The seeded practice's ids that fill the id routes, and a live survey link for a Spanish-speaking client."""

    values: dict[str, object]
    survey_token: str
    pages: dict[str, list[str]] = field(default_factory=dict)


@pytest.fixture
def demo(db: Database) -> Demo:
    """A small demo practice, everyone reading Spanish, with an open review, a requested report and a survey link."""
    now = datetime.now(UTC)
    seed_demo(db, clients=14, months=4, seed=11)
    with db.unit_of_work() as s:
        s.execute(update(User).values(language="es"))
        s.execute(update(Client).values(language="es"))
        open_due_reviews(s, now=now + timedelta(days=30), policy=ReviewPolicy(), tz=UTC, settings=DEFAULT_SETTINGS)
        report, _queued = request_report(
            s, scope=ReportScope("practice"), period=(now - timedelta(days=40)).strftime("%Y-%m")
        )
        clinician = s.scalar(select(User).where(User.email == DEMO_LOGINS["clinician"]))
        assert clinician is not None
        values = _ids_for(s, clinician, report_id=report.id)
        survey_token = _survey_link(s, clinician, now=now)
    return Demo(values=values, survey_token=survey_token)


def _ids_for(s: Session, clinician: User, *, report_id: int) -> dict[str, object]:
    episode = s.scalar(
        select(Episode).where(Episode.clinician_id == clinician.id).join(Alert, Alert.episode_id == Episode.id).limit(1)
    ) or s.scalar(select(Episode).where(Episode.clinician_id == clinician.id).limit(1))
    assert episode is not None
    alert_id = s.scalar(select(Alert.id).where(Alert.episode_id == episode.id).order_by(Alert.id.desc()).limit(1))
    review_id = s.scalar(select(Review.id).order_by(Review.id).limit(1))
    appointment_id = s.scalar(
        select(Appointment.id).where(Appointment.episode_id == episode.id).order_by(Appointment.starts_at.desc())
    )
    values: dict[str, object] = {
        "client_id": episode.client_id,
        "episode_id": episode.id,
        "appointment_id": appointment_id,
        "alert_id": alert_id,
        "review_id": review_id,
        "report_id": report_id,
    }
    return {key: value for key, value in values.items() if value is not None}


def _survey_link(s: Session, clinician: User, *, now: datetime) -> str:
    episode = s.scalar(select(Episode).where(Episode.clinician_id == clinician.id, Episode.ended_on.is_(None)))
    assert episode is not None
    appointment = Appointment(
        episode_id=episode.id, starts_at=now + timedelta(hours=2), ends_at=now + timedelta(hours=3)
    )
    s.add(appointment)
    s.flush()
    invitation = Invitation(
        episode_id=episode.id,
        appointment_id=appointment.id,
        phase="pre",
        instruments=["PHQ-9", "GAD-7", "GOAL-PROGRESS"],
        channel="email",
        status="sent",
        due_at=now,
        sent_at=now,
        expires_at=now + timedelta(days=1),
    )
    s.add(invitation)
    s.flush()
    return issue_token(s, invitation, purpose="email")


def staff_routes(app: Flask) -> list[tuple[str, str, tuple[str, ...]]]:
    """(rule, endpoint, argument names) of every GET page of the app, the survey's token routes aside."""
    routes = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint.startswith(NOT_PAGES):
            continue
        if rule.rule.endswith("/download"):
            continue  # a file
        if "token" in rule.arguments:
            continue  # the survey, walked step by step below
        routes.append((rule.rule, rule.endpoint, tuple(sorted(rule.arguments))))
    return sorted(routes)


def _path(rule: str, values: dict[str, object]) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), rule)


def test_every_staff_page_in_spanish_shows_no_english_message(
    app: Flask, demo: Demo, fragments: dict[str, str]
) -> None:
    routes = staff_routes(app)
    unknown = sorted({name for _r, _e, names in routes for name in names} - set(demo.values))
    assert unknown == [], f"no demo value for route arguments {unknown}: add one in _ids_for"
    reached: set[str] = set()
    english: dict[str, list[str]] = {}
    errors: list[str] = []
    checked: set[str] = set()
    for role, email in DEMO_LOGINS.items():
        client = app.test_client()
        assert login(client, email, DEMO_PASSWORD).status_code == 302, role
        for rule, _endpoint, _names in routes:
            path = _path(rule, demo.values)
            response = client.get(path, headers={"Accept-Language": "en"})
            if response.status_code >= 500:
                errors.append(f"{role} {path}: {response.status_code}")
            if response.status_code in (301, 302, 303, 400, 401, 403, 404, 405, 409, 410):
                reached.add(rule) if response.status_code < 400 else None
                continue
            reached.add(rule)
            if response.mimetype != "text/html":
                continue
            checked.add(f"{role} {rule}")
            found = untranslated(response.get_data(as_text=True), fragments)
            if found:
                english[f"{role} {path}"] = found
    # The kiosk's own pages, on a tablet paired by the front desk (no staff session; the browser's language).
    kiosk = app.test_client()
    login(kiosk, DEMO_LOGINS["front_desk"], DEMO_PASSWORD)
    assert post_form(kiosk, "/kiosk/pair", {"label": "Sala"}, page="/kiosk/pair").status_code == 303
    for rule, _endpoint, _names in routes:
        if rule.startswith("/kiosk") and rule not in reached:
            response = kiosk.get(_path(rule, demo.values), headers={"Accept-Language": "es"})
            if response.status_code < 400:
                reached.add(rule)
            if response.status_code == 200 and (found := untranslated(response.get_data(as_text=True), fragments)):
                english[f"kiosk {rule}"] = found
    assert errors == []
    assert english == {}, "English on Spanish pages (wrap them in _() and translate):\n" + "\n".join(
        f"{page}: {found}" for page, found in english.items()
    )
    assert {f"{role} {HOMES[role]}" for role in DEMO_LOGINS} <= checked, "every role reaches its home in Spanish"
    never = sorted({rule for rule, _e, _n in routes} - reached)
    assert never == [], f"pages no demo role could open (fill their ids from the demo data): {never}"


def _walk(client: FlaskClient, path: str, answers: dict[str, dict[str, str]]) -> list[str]:
    """Every page of a survey in Spanish: each step, a step sent empty, and the thank-you page."""
    pages = []
    html = client.get(path, headers={"Accept-Language": "es"}).get_data(as_text=True)
    pages.append(html)
    for code in ("PHQ-9", "GAD-7", "GOAL-PROGRESS"):
        empty = client.post(path, data={"state": state_of(html), "lang": "es", "action": "next"})
        assert empty.status_code in (200, 400, 422), empty.status_code
        pages.append(empty.get_data(as_text=True))
        response = client.post(path, data={"state": state_of(html), "lang": "es", "action": "next", **answers[code]})
        assert response.status_code == 200, (code, response.status_code)
        html = response.get_data(as_text=True)
        pages.append(html)
    return pages


def test_the_survey_in_spanish_shows_no_english_message(
    app: Flask, demo: Demo, fragments: dict[str, str], session: Session
) -> None:
    answers = {
        "PHQ-9": answers_for("PHQ-9", phq9_9="1"),
        "GAD-7": answers_for("GAD-7"),
        "GOAL-PROGRESS": answers_for("GOAL-PROGRESS", goals=3),
    }
    pages = _walk(app.test_client(), f"/s/{demo.survey_token}", answers)
    english = {index: found for index, html in enumerate(pages) if (found := untranslated(html, fragments))}
    assert english == {}, english
    assert "Gracias" in visible_text(pages[-1])


def test_the_check_finds_english_in_a_page(fragments: dict[str, str]) -> None:
    spanish = "<p>Iniciar sesión</p>"
    assert untranslated(spanish, fragments) == []
    assert untranslated("<main><p>Sign in</p><script>'My caseload'</script></main>", fragments) == ["Sign in"]
    assert untranslated('<img alt="My caseload">', fragments) == ["My caseload"]
