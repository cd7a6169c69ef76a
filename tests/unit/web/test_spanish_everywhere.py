"""Every staff page and the survey, in Spanish on a small demo practice, show no English message from the catalog.

The routes come from the app's url_map (GET routes without arguments, plus id routes filled from the demo data), so
pages added later are covered without touching this test. A page fails when the text a reader sees (tags stripped,
plus alt/title/aria-label/placeholder) contains a msgid of the catalog whose Spanish differs from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.alerts.models import Alert
from services.clients.models import Appointment, Client, Episode
from services.clients.operations import ClientError
from services.db import Database
from services.demo.seed import DEMO_LOGINS, DEMO_PASSWORD, seed_demo
from services.i18n import ENGLISH, N_, Message, Translator, translator_for
from services.reporting.operations import request_report
from services.reporting.periods import ReportScope
from services.reviews.models import Review
from services.reviews.operations import open_due_reviews
from services.reviews.policy import ReviewPolicy
from services.signals import DEFAULT_SETTINGS
from services.surveys.invitations import issue_token
from services.surveys.models import Invitation
from tests.unit.survey.helpers import answers_for, state_of
from tests.unit.web.conftest import HOMES, csrf_from, login, post_form
from web.access import PUBLIC, policy_for

# Messages that read the same in both languages or that appear inside Spanish text; keep this short and explicit.
SAME_IN_SPANISH: frozenset[str] = frozenset()
# Endpoints that serve no page in a language (files, JSON, machine endpoints).
NOT_PAGES = ("api.", "fhir.", "static", "health.")
PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|%[sdif]|\{\w*\}")
WORD = re.compile(r"[A-Za-z]{2,}")
SHOWN_ATTRIBUTES = ("alt", "title", "aria-label", "placeholder")
SPANISH_GOALS = ("Dormir mejor", "Volver a cantar en el coro")
# English words no Spanish sentence uses (lowercase: synthetic names are capitalised), for text that never reached
# the catalog at all; addresses, paths and e-mail addresses are left out first.
ENGLISH_WORD = re.compile(
    r"(?<![\w/@.-])(the|and|of|with|your|you|is|are|this|that|have|was|will|been|not|to|at|by|from|for|or|it|its"
    r"|an|on|in|if|than|can|which|who|when)(?![\w/@.-])"
)
ADDRESS = re.compile(r"\S*[/@]\S*")
# Dates in prose are written the reader's way (Babel), never as ISO 8601 ("2026-11-30", "2026-11-30 14:00"); a
# date-time with its T is a machine format shown as an example (the import page's CSV columns).
ISO_DATE = re.compile(r"(?<![\w-])\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2})?(?![\w:-])")


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


def english_words(html: str) -> list[str]:
    """Snippets of a page's visible text around English words (text never marked) and ISO dates."""
    text = ADDRESS.sub(" ", visible_text(html))
    found = [*ENGLISH_WORD.finditer(text), *ISO_DATE.finditer(text)]
    return sorted({text[max(0, m.start() - 30) : m.end() + 30].strip() for m in found})


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
        s.execute(update(User).values(language_choice="es"))
        s.execute(update(Client).values(language="es"))
        s.execute(update(Episode).values(goals=list(SPANISH_GOALS)))  # the clients' own words, in their language
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
    invitation_id = s.scalar(select(Invitation.id).where(Invitation.episode_id == episode.id).limit(1))
    values: dict[str, object] = {
        "lang": "es",
        "user_id": clinician.id,
        "team_id": clinician.team_id,
        "invitation_id": invitation_id,
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
        if rule.rule.endswith("/download") or "logout" in rule.endpoint:
            continue  # a file; the end of the session
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
        for rule, endpoint, _names in routes:
            path = _path(rule, demo.values)
            # A signed-in page follows the staff member's setting, whatever the browser prefers; a public page
            # (the kiosk's, the login) follows the browser.
            browser = "es" if policy_for(app, endpoint) is PUBLIC else "en"
            response = client.get(path, headers={"Accept-Language": browser})
            if response.status_code >= 500:
                errors.append(f"{role} {path}: {response.status_code}")
            if response.status_code < 400:
                reached.add(rule)
            if response.status_code in (301, 302, 303) or response.mimetype != "text/html":
                continue
            if response.status_code == 200:
                checked.add(f"{role} {rule}")
            html = response.get_data(as_text=True)  # refusals (403, 404...) are pages in Spanish too
            found = untranslated(html, fragments) + english_words(html)
            if found:
                english[f"{role} {path}"] = found
    # Signed out, with a Spanish browser: the login page, the public pages and every refusal.
    visitor = app.test_client()
    for rule, _endpoint, _names in routes:
        response = visitor.get(_path(rule, demo.values), headers={"Accept-Language": "es"})
        if response.status_code >= 500:
            errors.append(f"signed out {rule}: {response.status_code}")
        if response.mimetype == "text/html" and response.status_code not in (301, 302, 303):
            html = response.get_data(as_text=True)
            if found := untranslated(html, fragments) + english_words(html):
                english[f"signed out {rule}"] = found
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
    assert len(checked) >= 35, sorted(checked)  # the pages of the five roles on this demo (more as pages are added)
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
    english = {
        index: found
        for index, html in enumerate(pages)
        if (found := untranslated(html, fragments) + english_words(html))
    }
    assert english == {}, english
    assert "Gracias" in visible_text(pages[-1])
    assert 'class="crisis' in pages[2]  # the page after a risk answer carries the crisis information, checked too


def test_the_check_finds_english_in_a_page(fragments: dict[str, str]) -> None:
    spanish = "<p>Iniciar sesión</p>"
    assert untranslated(spanish, fragments) == []
    assert untranslated("<main><p>Sign in</p><script>'My caseload'</script></main>", fragments) == ["Sign in"]
    assert untranslated('<img alt="My caseload">', fragments) == ["My caseload"]
    assert english_words("<p>Sesión 3 de C-7KQ2M, con Tora Veluth</p><p>/srv/var/of/the/outbox</p>") == []
    assert english_words("<p>Sesión 3: tension reported at the session</p>") == [
        "Sesión 3: tension reported at the session"
    ]


# --- the mechanism: messages built outside web/, translated where they are shown ---------------------------------


def spanish() -> Translator:
    """A Translator into Spanish from the compiled catalog, without Flask (as a worker or a report would use it)."""
    return translator_for("es")


def test_a_message_reads_in_english_and_translates_with_its_values() -> None:
    message = Message("no client with code %(code)s", code="CXYZ")
    assert message == "no client with code CXYZ"  # a str: JSON, logs and the API keep the English
    assert str(ENGLISH(message)) == "no client with code CXYZ"
    assert spanish()(message) == "ningún cliente tiene el código CXYZ"
    assert spanish()(N_("unchanged")) == "sin cambios"
    assert spanish()("not a msgid at all") == "not a msgid at all"
    assert translator_for("en") is ENGLISH
    assert translator_for("fr") is ENGLISH  # no catalog: English
    error = ClientError(N_("An episode has at most %(max)d goals."), max=3)
    assert str(error) == "An episode has at most 3 goals."
    assert spanish()(error.message) == "Un episodio tiene como máximo 3 objetivos."


def test_chart_legends_axis_labels_headers_and_text_in_spanish() -> None:
    from reports.charts import Marker, Series, line_chart, line_chart_table, line_chart_text

    series = [Series("Total", (30, 27, 35))]
    options = {"markers": [Marker(index=1, label="Caída", severity="alert")], "tension": [0, 2, None]}
    svg = line_chart(series, y_min=0, y_max=40, title="Colaboración", cutoff=24, translate=spanish(), **options)
    text = visible_text(str(svg))
    for words in ("Señal (alerta)", "Tensión señalada (más alta = más)", "Punto de corte", "Sesión", "Tensión"):
        assert words in text, words
    assert "Signal" not in text
    assert "Tension" not in text
    table = visible_text(str(line_chart_table(series, title="Colaboración", translate=spanish(), **options)))
    assert "Señales" in table
    assert "2 (algo)" in table
    described = line_chart_text(series, title="Colaboración", translate=spanish(), **options)
    assert described.startswith("Colaboración. 3 sesiones, de la 1 a la 3. Total: 30 en la sesión 1")
    english = line_chart_text(series, title="Partnership", **options)
    assert english.startswith("Partnership. 3 sessions, 1 to 3. Total: 30 at session 1")


def test_form_validator_and_service_errors_in_spanish(
    client: FlaskClient, session: Session, fragments: dict[str, str]
) -> None:
    from tests.factories import make_user

    desk = make_user(session, role="front_desk")
    desk.language = "es"
    session.flush()
    login(client, desk.email)
    empty = post_form(client, "/frontdesk/clients/new", {}, page="/frontdesk/clients/new")
    assert "Este campo es obligatorio" in visible_text(empty.get_data(as_text=True))  # WTForms' own message
    refused = post_form(
        client,
        "/frontdesk/clients/new",
        {"first_name": "Ana", "last_name": "Prueba", "language": "es", "consent_sms": "y"},
        page="/frontdesk/clients/new",
    )
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert "El consentimiento para mensajes de texto necesita un número de teléfono." in visible_text(page)
    assert untranslated(page, fragments) == []


def test_import_report_rows_and_file_errors_in_spanish(
    client: FlaskClient, session: Session, fragments: dict[str, str]
) -> None:
    import io

    from tests.factories import make_user

    desk = make_user(session, role="front_desk")
    desk.language = "es"
    session.flush()
    login(client, desk.email)
    start = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat()
    rows = f"external_id,client_code,starts_at,duration_minutes\nx1,CNOBODY1,{start},50\nx2,,{start},50\n"

    def upload(data: bytes, name: str) -> str:
        token = csrf_from(client.get("/frontdesk/import").get_data(as_text=True))
        response = client.post(
            "/frontdesk/import",
            data={"csrf_token": token, "file": (io.BytesIO(data), name), "fmt": "auto"},
            content_type="multipart/form-data",
        )
        return response.get_data(as_text=True)

    report = upload(rows.encode(), "citas.csv")
    assert "ningún cliente tiene el código CNOBODY1" in visible_text(report)
    assert "no se indicó código de cliente ni correo" in visible_text(report)
    refused = upload(b"just,some\nwords,here\n", "x.csv")
    assert "A la línea de cabecera le faltan estas columnas" in visible_text(refused)
    assert untranslated(report, fragments) == []
    assert untranslated(refused, fragments) == []


def test_times_months_and_weeks_follow_the_reader_language(app: Flask) -> None:
    from flask_babel import force_locale

    from web.i18n import local_date, local_month, local_time

    with app.test_request_context("/"):
        with force_locale("es"):
            assert local_month("2026-10") == "octubre de 2026"
            assert local_time(time(16, 0)) == "16:00"
            assert local_date("2026-11-30") == "30 nov 2026"
        with force_locale("en"):
            assert local_month("2026-10") == "October 2026"
            assert local_time(time(16, 0)) == "4:00\u202fPM"


def test_user_errors_carry_a_msgid_not_an_fstring() -> None:
    """A UserError's message is looked up in the catalog: an f-string could never be found there."""
    import ast
    import importlib.util

    from web.app import WEB_DIR

    spec = importlib.util.spec_from_file_location(
        "update_translations", WEB_DIR.parent / "infra" / "update_translations.py"
    )
    assert spec is not None
    assert spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    classes = tool.user_error_classes()
    assert {"ClientError", "ReviewError", "AlertActionError", "AccountError"} <= classes
    found = []
    for folder, _method_map in tool.SOURCES:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in classes
                    and node.args
                    and isinstance(node.args[0], ast.JoinedStr)
                ):
                    found.append(f"{path.relative_to(WEB_DIR.parent)}:{node.lineno}")
    assert found == [], "write the message as a msgid with %(name)s placeholders and pass the values: " + ", ".join(
        found
    )


def test_messages_and_alert_lines_come_from_the_catalog_in_the_reader_language() -> None:
    from services.alerts.repair import get_suggestion
    from services.alerts.summary import describe_signal
    from services.notifications.templates import render_message

    values = {"first_name": "Ana", "practice": "P", "link": "https://x/s/t", "opt_out_link": "https://x/o/t"}
    subject, body = render_message("invitation", {**values, "minutes": 2}, language="es")
    assert subject == "Una breve consulta de P"
    assert body.startswith("Hola Ana:")
    assert "unos 2 minutos" in body
    assert "Para dejar de recibir estos mensajes: https://x/o/t" in body
    english_subject, _body = render_message("invitation", {**values, "minutes": 2}, language="en")
    assert english_subject == "A quick check-in from P"
    line = describe_signal("RUPTURE_DROP", {"previous": 36, "score": 27}, language="es")
    assert line == "La puntuación de colaboración bajó de 36 a 27"
    suggestion = get_suggestion("general.supervision")
    assert suggestion is not None
    assert suggestion.in_language("es") == "Lleve el caso a supervisión y revisen juntos la sesión con un colega."
