"""Bad input gets a clear 4xx, never a 500: control characters, ids and pages beyond 64 bits, dates outside the
practice's window, malformed email addresses (pages, the JSON API and the CSV import)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.accounts.operations import AccountError, create_api_token, create_user
from services.clients.models import Appointment, Client
from services.clients.operations import ClientError, clean_contact_details
from services.db import utcnow
from services.inputs import InputError, check_plausible_date, normalise_email_address
from tests.factories import PASSWORD, make_appointment, make_client, make_episode
from tests.unit.web.conftest import csrf_token, post_form

BEYOND_64_BITS = str(2**64 + 7)
HUGE = "9" * 30
CONTROLS = ["\x00", "\x07", "\x1b", "\x7f", "\x85"]


@pytest.fixture
def api(client: FlaskClient, staff: Callable[..., User], session: Session) -> Callable[..., Any]:
    """api(method, path, json=..., role="front_desk") with a bearer token of a fresh user of that role."""
    tokens: dict[str, str] = {}

    def call(method: str, path: str, *, role: str = "front_desk", **kw: Any) -> Any:
        if role not in tokens:
            tokens[role] = create_api_token(session, user=staff(role), name="test")
        headers = {"Authorization": f"Bearer {tokens[role]}", **kw.pop("headers", {})}
        return client.open(f"/api/v1{path}", method=method, headers=headers, **kw)

    return call


def _clients(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Client)) or 0


# --- control characters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", CONTROLS)
def test_a_control_character_in_the_login_email_is_a_400_with_a_reason(client: FlaskClient, char: str) -> None:
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"email": f"a{char}@example.test", "password": "x", "csrf_token": token})
    assert response.status_code == 400
    assert "control character" in response.get_data(as_text=True)


@pytest.mark.parametrize("char", CONTROLS)
def test_a_control_character_in_an_api_body_is_a_json_400(api: Callable[..., Any], session: Session, char: str) -> None:
    before = _clients(session)
    response = api("POST", "/clients", json={"first_name": f"A{char}b", "last_name": "Person"})
    assert response.status_code == 400
    assert "control character" in response.json["error"]["detail"]
    assert "first_name" in response.json["error"]["detail"]
    assert _clients(session) == before
    # Nested members and keys are read too.
    nested = api("POST", "/clients", json={"first_name": "A", "last_name": "B", f"x{char}": ["ok", {"y": char}]})
    assert nested.status_code == 400


@pytest.mark.parametrize("path", ["/frontdesk/?q=a%00b", "/frontdesk/appointments?day=2026-01-01%00"])
def test_a_nul_in_a_search_box_is_a_400(client: FlaskClient, signed_in: Callable[..., User], path: str) -> None:
    signed_in("front_desk")
    response = client.get(path)
    assert response.status_code == 400
    assert "control character" in response.get_data(as_text=True)


def test_a_nul_in_the_api_search_and_in_a_path_is_a_400(api: Callable[..., Any], client: FlaskClient) -> None:
    assert api("GET", "/clients?q=a%00b").status_code == 400
    assert client.get("/s/abc%00def").status_code == 404  # a path with a control character names nothing
    assert client.get("/admin/crisis/e%00n").status_code in (302, 404)


def test_tab_and_newline_pass_in_a_multi_line_note(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    signed_in("front_desk")
    response = post_form(
        client,
        "/frontdesk/clients/new",
        {"first_name": "Tab\tby", "last_name": "Line\nson", "language": "en"},
        page="/frontdesk/clients/new",
    )
    assert response.status_code in (302, 303), response.get_data(as_text=True)
    created = session.scalar(select(Client).where(Client.first_name == "Tab by"))
    assert created is not None  # single-line names collapse their whitespace; nothing was refused


# --- ids and pages ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/frontdesk/clients/{BEYOND_64_BITS}",
        f"/frontdesk/clients/{HUGE}/edit",
        f"/clinician/clients/{BEYOND_64_BITS}",
        f"/clinician/alerts/{HUGE}",
        f"/manager/reports/{HUGE}",
        f"/reviews/{HUGE}",
    ],
)
def test_ids_beyond_64_bits_in_page_urls_are_404(
    client: FlaskClient, signed_in: Callable[..., User], path: str
) -> None:
    role = path.split("/")[1]
    signed_in({"frontdesk": "front_desk", "reviews": "supervisor"}.get(role, role))
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("path", [f"/clients/{BEYOND_64_BITS}", f"/appointments/{HUGE}", f"/alerts/{HUGE}"])
def test_ids_beyond_64_bits_in_api_urls_are_json_404(api: Callable[..., Any], path: str) -> None:
    role = "clinician" if path.startswith("/alerts") else "front_desk"
    response = api("GET", path, role=role)
    assert response.status_code == 404
    assert response.json["error"]["status"] == 404


def test_the_largest_64_bit_id_is_still_an_ordinary_404(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("front_desk")
    assert client.get(f"/frontdesk/clients/{2**63 - 1}").status_code == 404


@pytest.mark.parametrize(
    ("role", "path"),
    [
        ("front_desk", "/frontdesk/?page="),
        ("front_desk", "/frontdesk/appointments?page="),
        ("clinician", "/clinician/?page="),
        ("clinician", "/clinician/alerts?page="),
        ("supervisor", "/supervisor/?page="),
        ("supervisor", "/supervisor/?alerts_page="),
    ],
)
@pytest.mark.parametrize("number", [BEYOND_64_BITS, HUGE, str(2**62)])
def test_huge_page_numbers_on_pages_are_a_clean_answer(
    client: FlaskClient, signed_in: Callable[..., User], role: str, path: str, number: str
) -> None:
    signed_in(role)
    response = client.get(path + number)
    assert response.status_code in (200, 400), response.status_code
    if response.status_code == 400:
        assert "page" in response.get_data(as_text=True).lower()


@pytest.mark.parametrize("path", ["/clients?page=", "/appointments?page=", "/invitations?page="])
@pytest.mark.parametrize("number", [BEYOND_64_BITS, HUGE])
def test_huge_page_numbers_on_the_api_are_a_json_400(api: Callable[..., Any], path: str, number: str) -> None:
    response = api("GET", path + number)
    assert response.status_code == 400
    assert "page" in response.json["error"]["detail"]


def test_huge_ids_in_query_strings_and_json_bodies_are_a_400(
    api: Callable[..., Any], client: FlaskClient, signed_in: Callable[..., User]
) -> None:
    response = api("POST", "/episodes", json={"client_id": 2**64, "clinician_id": 1, "protocol_code": "standard"})
    assert response.status_code == 400
    assert "whole number" in response.json["error"]["detail"]
    signed_in("supervisor")
    assert client.get(f"/supervisor/?clinician={BEYOND_64_BITS}").status_code == 400


def test_a_huge_episode_argument_on_the_chart_is_a_400(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    clinician = signed_in("clinician")
    episode = make_episode(session, client=make_client(session), clinician=clinician)
    response = client.get(f"/clinician/clients/{episode.client_id}/chart?episode={BEYOND_64_BITS}")
    assert response.status_code == 400


# --- dates ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1800-06-01"])
def test_appointment_dates_outside_the_window_are_refused_on_the_page(
    client: FlaskClient, signed_in: Callable[..., User], session: Session, day: str
) -> None:
    signed_in("front_desk")
    episode = make_episode(session, client=make_client(session), clinician=make_user_clinician(session))
    url = f"/frontdesk/episodes/{episode.id}/appointments/new"
    response = post_form(client, url, {"day": day, "at": "10:00", "duration_minutes": "50"}, page=url)
    assert response.status_code == 400
    assert "between" in response.get_data(as_text=True)
    assert (
        session.scalar(select(func.count()).select_from(Appointment).where(Appointment.episode_id == episode.id)) == 0
    )


def make_user_clinician(session: Session) -> User:
    """A clinician for an episode."""
    from tests.factories import make_user

    return make_user(session, role="clinician")


@pytest.mark.parametrize("starts_at", ["0001-01-01T10:00:00+00:00", "9999-12-31T23:00:00+00:00"])
def test_appointment_dates_outside_the_window_are_refused_by_the_api(
    api: Callable[..., Any], session: Session, starts_at: str
) -> None:
    episode = make_episode(session, client=make_client(session), clinician=make_user_clinician(session))
    response = api(
        "POST", "/appointments", json={"episode_id": episode.id, "starts_at": starts_at, "duration_minutes": 50}
    )
    assert response.status_code == 400
    assert "between" in response.json["error"]["detail"]


def test_rescheduling_to_year_9999_is_refused(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    signed_in("front_desk")
    episode = make_episode(session, client=make_client(session), clinician=make_user_clinician(session))
    appointment = make_appointment(session, episode=episode, starts_at=utcnow() + timedelta(days=2))
    url = f"/frontdesk/appointments/{appointment.id}/reschedule"
    response = post_form(client, url, {"day": "9999-12-31", "at": "23:30", "duration_minutes": "50"}, page=url)
    assert response.status_code == 400


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_the_appointments_day_outside_the_window_is_a_400(
    client: FlaskClient, signed_in: Callable[..., User], day: str
) -> None:
    signed_in("front_desk")
    response = client.get(f"/frontdesk/appointments?day={day}")
    assert response.status_code == 400
    assert "between" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "query", ["?from=9999-12-01&to=9999-12-31", "?from=0001-01-01&to=0001-02-01", "?to=9999-12-31&from=9999-01-01"]
)
def test_funnel_ranges_outside_the_window_are_a_json_400(api: Callable[..., Any], query: str) -> None:
    response = api("GET", "/funnel" + query)
    assert response.status_code == 400
    assert "between" in response.json["error"]["detail"]


@pytest.mark.parametrize("query", ["?from=9999-12-30T00:00:00Z", "?to=0001-01-01T00:00:00Z"])
def test_appointment_list_ranges_outside_the_window_are_a_json_400(api: Callable[..., Any], query: str) -> None:
    response = api("GET", "/appointments" + query)
    assert response.status_code == 400


def test_report_periods_outside_the_window_are_a_json_400(api: Callable[..., Any]) -> None:
    for period in ("9999-12", "0001-01"):
        response = api("POST", "/reports", role="manager", json={"period": period, "scope": "practice"})
        assert response.status_code == 400, (period, response.json)
        listed = api("GET", f"/reports?period={period}", role="manager")
        assert listed.status_code == 400, (period, listed.json)


def test_manager_report_request_outside_the_window_is_a_400(
    client: FlaskClient, signed_in: Callable[..., User]
) -> None:
    signed_in("manager")
    response = post_form(
        client, "/manager/reports", {"period": "9999-12", "scope": "practice"}, page="/manager/reports"
    )
    assert response.status_code == 400


def test_the_window_is_named_in_the_refusal() -> None:
    today = utcnow().date()
    check_plausible_date(today)
    with pytest.raises(InputError, match="between"):
        check_plausible_date(today.replace(year=1))
    with pytest.raises(InputError, match="between"):
        check_plausible_date(today + timedelta(days=366 * 11))


# --- email addresses --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "a@example.test\r\nBcc: x@example.test",
        "a@example.test\nX: y",
        "a\r@example.test",
        "a@@example.test",
        "a@example..test",
        "a b@example.test",
        "a@-example.test",
        "<a@example.test>",
        "Someone <a@example.test>",
        "a@example",
    ],
)
def test_malformed_addresses_are_refused_by_the_one_validator(address: str) -> None:
    with pytest.raises(InputError):
        normalise_email_address(address)
    with pytest.raises(ClientError):
        clean_contact_details(first_name="A", last_name="B", email=address)


def test_a_valid_address_is_normalised() -> None:
    assert normalise_email_address("  Someone.Else@Example.TEST ") == "someone.else@example.test"


def test_staff_accounts_refuse_cr_lf_in_the_email(session: Session) -> None:
    with pytest.raises(AccountError):
        create_user(session, email="a@example.test\r\nBcc: b@example.test", password=PASSWORD, role="clinician")


def test_the_enrolment_page_refuses_a_cr_lf_email(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    signed_in("front_desk")
    before = _clients(session)
    response = post_form(
        client,
        "/frontdesk/clients/new",
        {"first_name": "A", "last_name": "B", "email": "a@example.test\r\nBcc: b@example.test", "language": "en"},
        page="/frontdesk/clients/new",
    )
    assert response.status_code == 400
    assert _clients(session) == before


def test_the_admin_page_refuses_a_malformed_staff_email(
    client: FlaskClient, signed_in: Callable[..., User], session: Session
) -> None:
    signed_in("admin", team=None)
    response = post_form(
        client,
        "/admin/users/new",
        {
            "email": "new@example.test\r\nBcc: b@example.test",
            "name": "New",
            "role": "clinician",
            "password": PASSWORD * 2,
        },
        page="/admin/users/new",
    )
    assert response.status_code == 400
    assert session.scalar(select(func.count()).select_from(User).where(User.email.like("new@%"))) == 0


def test_the_api_refuses_a_cr_lf_email(api: Callable[..., Any], session: Session) -> None:
    response = api("POST", "/clients", json={"first_name": "A", "last_name": "B", "email": "a@example.test\r\nX: y"})
    assert response.status_code == 400
    assert "email" in response.json["error"]["detail"]


def test_the_csv_import_refuses_malformed_emails_control_characters_and_implausible_dates(session: Session) -> None:
    from zoneinfo import ZoneInfo

    from services.clients.imports import import_appointments, parse_calendar

    clinician = make_user_clinician(session)
    client = make_client(session, email="csv.person@example.test")
    make_episode(session, client=client, clinician=clinician)
    start = (utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    data = (
        "external_id,client_email,clinician_email,starts_at,duration_minutes\n"
        f"x1,csv.person@@example.test,{clinician.email},{start},50\n"
        f'x2,"csv.person@example.test\r\nBcc: b@example.test",{clinician.email},{start},50\n'
        f"x3,csv.person@example.test,{clinician.email},9999-12-31T23:30,50\n"
        f"x4,csv.person@example.test,{clinician.email},0001-01-01T10:00,50\n"
        f"x5\x07,csv.person@example.test,{clinician.email},{start},50\n"
        f"x6,csv.person@example.test,{clinician.email},{start},50\n"
    ).encode()
    rows = parse_calendar(data, fmt="csv", tz=ZoneInfo("Europe/London"))
    report = import_appointments(session, rows, source="calendar")
    reasons = {row.external_id: str(row.reason) for row in report.rows}
    assert report.imported == 1, reasons
    assert "not a valid email address" in reasons["x1"]
    assert "line break" in reasons["x2"] or "not a valid" in reasons["x2"], reasons
    assert "between" in reasons["x3"]
    assert "between" in reasons["x4"]
    assert "control character" in reasons["x5\x07"]
