"""Appointment imports: CSV and iCalendar parsing, per-row reports with bad rows, upserts, URL fetching rules."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.clients.imports import (
    ImportFileError,
    detect_format,
    fetch_calendar,
    import_appointments,
    parse_calendar,
    parse_csv,
    parse_ics,
)
from services.clients.models import Appointment
from services.db import utcnow
from services.surveys.invitations import dispatch_invitations
from services.surveys.models import Invitation
from services.surveys.policy import InvitationPolicy
from tests.factories import make_client, make_episode, make_user
from tests.unit.frontdesk.conftest import POLICY, Booking

LONDON = ZoneInfo("Europe/London")


def at(days: int, hour: int = 10) -> datetime:
    """A UTC time some days from now at a whole hour (well in the future, so nothing is due)."""
    base = (utcnow() + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return base


def test_csv_rows_are_read_with_aliases_and_local_times() -> None:
    text = (
        "ID;Client Code;Email;Start;Duration;Status\n"
        "a-1;c4kxhm7q;;2026-03-02 14:00;50;scheduled\n"
        "a-2;;Someone@Example.test;2026-07-02T14:00+02:00;30;cancelled\n"
        "\n"
        "a-3;X;;not a time;50;\n"
        "a-4;X;;2026-03-02T14:00;;\n"
        "a-5;X;;2026-03-02T14:00;50;maybe\n"
    )
    rows = parse_csv(text, tz=LONDON)
    assert [r.line for r in rows] == [2, 3, 5, 6, 7]
    first, second, bad_time, no_end, bad_status = rows
    assert (first.external_id, first.client_code, first.cancelled) == ("a-1", "C4KXHM7Q", False)
    assert first.starts_at == datetime(2026, 3, 2, 14, tzinfo=UTC)  # London is on GMT in March
    assert first.ends_at == datetime(2026, 3, 2, 14, 50, tzinfo=UTC)
    assert (second.emails, second.cancelled) == (["someone@example.test"], True)
    assert second.starts_at == datetime(2026, 7, 2, 12, tzinfo=UTC)
    assert bad_time.problem is not None
    assert "not a date and time" in bad_time.problem
    assert no_end.problem is not None
    assert "duration" in no_end.problem
    assert bad_status.problem is not None
    assert "unknown status" in bad_status.problem


def test_csv_without_the_needed_columns_is_refused_as_a_whole() -> None:
    with pytest.raises(ImportFileError, match="lacks these columns: external_id, client_code or client_email"):
        parse_csv("starts_at,ends_at\n2026-03-02T14:00,2026-03-02T15:00\n", tz=LONDON)
    with pytest.raises(ImportFileError, match="empty"):
        parse_calendar(b"   ", fmt="csv", tz=LONDON)
    with pytest.raises(ImportFileError, match="not a text file"):
        parse_calendar(b"\x00\x01PK\x03\x04", fmt="csv", tz=LONDON)


ICS = "\r\n".join(
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Example//Scheduler//EN",
        "BEGIN:VEVENT",
        "UID:evt-1@example.test",
        "DTSTART;TZID=Europe/London:20260706T140000",
        "DTEND;TZID=Europe/London:20260706T145000",
        "SUMMARY:Session [C4KXHM7Q]",
        "ORGANIZER;CN=Therapist:mailto:Therapist@example.test",
        "BEGIN:VALARM",
        "TRIGGER:-PT15M",
        "ACTION:DISPLAY",
        "END:VALARM",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:evt-2@example.test",
        "DTSTART:20260706T090000Z",
        "DURATION:PT1H",
        "STATUS:CANCELLED",
        'ATTENDEE;CN="Client, A";ROLE=REQ-PARTICIPANT:mailto:client@',
        " example.test",
        "X-RAPPORT-CLIENT:t00001",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:evt-3",
        "DTSTART;VALUE=DATE:20260706",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:evt-4",
        "DTSTART:20260706T090000",
        "RRULE:FREQ=WEEKLY",
        "DTEND:20260706T095000",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:evt-5",
        "DTSTART;TZID=GMT Standard Time:20260706T090000",
        "DTEND;TZID=GMT Standard Time:20260706T095000",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:evt-6",
        "DTSTART:20260706T090000",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:evt-1@example.test",
        "RECURRENCE-ID:20260713T130000Z",
        "DTSTART:20260713T130000",
        "DTEND:20260713T135000",
        "DESCRIPTION:Moved\\, see notes\\nline two",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
)


def test_ics_events_are_read_and_the_unsupported_ones_explained() -> None:
    rows = parse_ics(ICS, tz=LONDON)
    assert [r.external_id for r in rows] == [
        "evt-1@example.test",
        "evt-2@example.test",
        "evt-3",
        "evt-4",
        "evt-5",
        "evt-6",
        "evt-1@example.test/20260713T130000Z",
    ]
    one, two, all_day, repeating, windows_zone, no_end, override = rows
    assert one.line == 4
    assert (one.client_code, one.clinician_email) == ("C4KXHM7Q", "therapist@example.test")
    assert one.starts_at == datetime(2026, 7, 6, 13, tzinfo=UTC)  # BST
    assert one.ends_at == datetime(2026, 7, 6, 13, 50, tzinfo=UTC)
    assert (two.cancelled, two.client_code, two.emails) == (True, "T00001", ["client@example.test"])
    assert two.ends_at == datetime(2026, 7, 6, 10, tzinfo=UTC)
    assert all_day.problem == "an all-day event, not an appointment"
    assert repeating.problem is not None
    assert "repeating event" in repeating.problem
    assert windows_zone.problem is not None
    assert "unknown time zone 'GMT Standard Time'" in windows_zone.problem
    assert no_end.problem == "no end time (DTEND or DURATION)"
    assert override.starts_at == datetime(2026, 7, 13, 12, tzinfo=UTC)  # floating: the practice's zone
    assert override.problem is None


def test_a_cancel_method_cancels_every_event_and_non_calendars_are_refused() -> None:
    text = (
        "BEGIN:VCALENDAR\nMETHOD:CANCEL\nBEGIN:VEVENT\nUID:x\nDTSTART:20260706T090000Z\nDURATION:PT50M\n"
        "END:VEVENT\nEND:VCALENDAR\n"
    )
    [row] = parse_ics(text, tz=LONDON)
    assert row.cancelled
    with pytest.raises(ImportFileError, match="not an iCalendar file"):
        parse_ics("hello,world\n", tz=LONDON)
    assert detect_format("cal.ICS", "") == "ical"
    assert detect_format("export", "BEGIN:VCALENDAR") == "ical"
    assert detect_format("export.csv", "BEGIN:VCALENDAR") == "csv"


def csv_for(rows: list[tuple[str, str, str, datetime, int, str]]) -> bytes:
    """A CSV file from (id, code, email, start, minutes, status) tuples."""
    lines = ["external_id,client_code,client_email,starts_at,duration_minutes,status"]
    for ext, code, email, start, minutes, status in rows:
        lines.append(f"{ext},{code},{email},{start.isoformat()},{minutes},{status}")
    return ("\n".join(lines) + "\n").encode()


def test_import_report_says_what_was_imported_updated_and_skipped_and_why(
    session: Session, book: Callable[..., Booking]
) -> None:
    clinician = make_user(session, role="clinician")
    known = make_client(session, code="CIMPORT1", email="known@example.test")
    episode = make_episode(session, client=known, clinician=clinician)
    no_episode = make_client(session, code="CIMPORT2")
    twice = make_client(session, code="CIMPORT3")
    make_episode(session, client=twice, clinician=clinician)
    make_episode(session, client=twice, clinician=make_user(session, role="clinician"))
    make_client(session, code="CIMPORT4", email="shared@example.test")
    make_client(session, code="CIMPORT5", email="shared@example.test")
    start = at(5)
    data = csv_for(
        [
            ("e1", "CIMPORT1", "", start, 50, ""),
            ("e2", "", "known@example.test", start + timedelta(days=7), 50, "scheduled"),
            ("e3", "NOSUCH", "", start, 50, ""),
            ("e4", "CIMPORT2", "", start, 50, ""),
            ("e5", "CIMPORT3", "", start, 50, ""),
            ("e6", "", "shared@example.test", start, 50, ""),
            ("e7", "CIMPORT1", "", start, 50, "cancelled"),
            ("", "CIMPORT1", "", start, 50, ""),
            ("e1", "CIMPORT1", "", start, 50, ""),
            ("e8", "CIMPORT1", "", start, 900, ""),
        ]
    )
    report = import_appointments(session, parse_calendar(data, fmt="csv", tz=LONDON), source="clinic-cal")
    outcomes = [(r.line, r.external_id, r.outcome, r.reason) for r in report.rows]
    assert outcomes == [
        (2, "e1", "imported", "new appointment"),
        (3, "e2", "imported", "new appointment"),
        (4, "e3", "skipped", "no client with code NOSUCH"),
        (5, "e4", "skipped", "the client has no open episode"),
        (6, "e5", "skipped", "the client has several open episodes: give the clinician's email"),
        (7, "e6", "skipped", "several clients share that email: give the client code"),
        (8, "e7", "skipped", "cancelled in the calendar and not booked here"),
        (9, None, "skipped", "no calendar id (external_id or UID), so a later import could not update it"),
        (10, "e1", "skipped", "the same calendar id appears earlier"),
        (11, "e8", "skipped", "give an end time or a duration in minutes (1 to 480)"),
    ]
    assert (report.imported, report.updated, report.skipped) == (2, 0, 8)
    stored = list(session.scalars(select(Appointment).where(Appointment.source == "clinic-cal")))
    assert sorted(a.external_id or "" for a in stored) == ["e1", "e2"]
    assert all(a.episode_id == episode.id for a in stored)
    assert no_episode.id not in {r.client_id for r in report.rows if r.outcome != "skipped"}

    # The same calendar again, one moved and one cancelled: updates, no duplicates.
    again = csv_for(
        [
            ("e1", "CIMPORT1", "", start + timedelta(hours=2), 50, ""),
            ("e2", "CIMPORT1", "", start + timedelta(days=7), 50, "cancelled"),
            ("e2", "CIMPORT1", "", start + timedelta(days=7), 50, "cancelled"),
        ]
    )
    second = import_appointments(session, parse_calendar(again, fmt="csv", tz=LONDON), source="clinic-cal")
    assert [(r.outcome, r.reason) for r in second.rows] == [
        ("updated", "moved to the new time"),
        ("updated", "cancelled"),
        ("skipped", "the same calendar id appears earlier"),
    ]
    session.expire_all()
    by_id = {a.external_id: a for a in session.scalars(select(Appointment).where(Appointment.source == "clinic-cal"))}
    assert by_id["e1"].starts_at == start + timedelta(hours=2)
    assert by_id["e2"].status == "cancelled"
    third = import_appointments(session, parse_calendar(again, fmt="csv", tz=LONDON), source="clinic-cal")
    assert [r.reason for r in third.rows][:2] == ["unchanged", "already cancelled"]


def test_a_calendar_id_of_another_client_is_not_taken_over(session: Session, book: Callable[..., Booking]) -> None:
    first = book(starts_in=timedelta(days=3))
    second = book(starts_in=timedelta(days=3))
    first.appointment.source, first.appointment.external_id = "cal", "shared-id"
    session.flush()
    data = csv_for([("shared-id", second.client.code, "", at(4), 50, "")])
    [row] = import_appointments(session, parse_calendar(data, fmt="csv", tz=LONDON), source="cal").rows
    assert (row.outcome, row.reason) == ("skipped", "this calendar id belongs to another client's appointment")
    session.refresh(first.appointment)
    assert first.appointment.starts_at != at(4)


def test_clinician_email_picks_the_episode(session: Session) -> None:
    client = make_client(session, code="CPICK001")
    mine = make_user(session, role="clinician", email="pick-me@example.test")
    make_episode(session, client=client, clinician=make_user(session, role="clinician"))
    chosen = make_episode(session, client=client, clinician=mine)
    text = "external_id,client_code,clinician_email,starts_at,duration_minutes\n"
    text += f"p1,CPICK001,Pick-Me@example.test,{at(6).isoformat()},50\n"
    [row] = import_appointments(session, parse_csv(text, tz=LONDON), source="csv").rows
    assert row.outcome == "imported"
    appointment = session.get(Appointment, row.appointment_id)
    assert appointment is not None
    assert appointment.episode_id == chosen.id


def test_an_imported_cancellation_cancels_invitations(session: Session, book: Callable[..., Booking]) -> None:
    booking = book(starts_in=timedelta(hours=20))
    booking.appointment.source, booking.appointment.external_id = "ical", "uid-77"
    session.flush()
    dispatch_invitations(session, policy=POLICY, now=utcnow())
    start = booking.appointment.starts_at.strftime("%Y%m%dT%H%M%SZ")
    text = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:uid-77\r\nSTATUS:CANCELLED\r\n"
        f"DTSTART:{start}\r\nDURATION:PT50M\r\nX-RAPPORT-CLIENT:{booking.client.code}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    report = import_appointments(session, parse_ics(text, tz=LONDON), source="ical")
    assert [(r.outcome, r.reason) for r in report.rows] == [("updated", "cancelled")]
    session.expire_all()
    invitation = session.scalar(select(Invitation).where(Invitation.appointment_id == booking.appointment.id))
    assert invitation is not None
    assert invitation.status == "cancelled"


def test_a_bad_source_name_is_refused(session: Session) -> None:
    with pytest.raises(ImportFileError, match="source"):
        import_appointments(session, [], source="has spaces!")


# --- fetching from a URL ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.test/cal.ics", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("https://user:pw@example.test/cal.ics", "user name or password"),
        ("http://127.0.0.1/cal.ics", "private network"),
        ("http://localhost:8080/cal.ics", "private network"),
        ("http://10.1.2.3/cal.ics", "private network"),
        ("http://169.254.169.254/latest/meta-data", "private network"),
        ("http://[::1]/cal.ics", "private network"),
        ("http://0.0.0.0/", "private network"),
        # IPv6 forms that carry a loopback or private IPv4 address inside them
        ("http://[::ffff:127.0.0.1]/cal.ics", "private network"),
        ("http://[::127.0.0.1]/cal.ics", "private network"),
        ("http://[64:ff9b::7f00:1]/cal.ics", "private network"),
        ("http://[64:ff9b::a01:203]/cal.ics", "private network"),
        ("http://[2002:7f00:1::]/cal.ics", "private network"),
        ("http://[2002:a9fe:a9fe::1]/latest/meta-data", "private network"),
        ("https://example.test:99999/", "invalid port"),
    ],
)
def test_calendar_urls_are_limited_to_public_http(url: str, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        fetch_calendar(url, policy=POLICY)


class _CalendarHandler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self) -> None:
        status, headers, payload = self.routes.get(self.path, (404, {}, b"no"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def calendar_server() -> Iterator[tuple[str, dict[str, tuple[int, dict[str, str], bytes]]]]:
    """A local HTTP server for calendar feeds (the quick tier allows its socket by the marker)."""
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
    handler = type("Handler", (_CalendarHandler,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", routes
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


LOCAL = InvitationPolicy(import_allow_private_urls=True, import_max_bytes=2048, import_timeout_seconds=5)


@pytest.mark.sockets
def test_fetch_follows_redirects_caps_size_and_reports_errors(
    calendar_server: tuple[str, dict[str, tuple[int, dict[str, str], bytes]]],
) -> None:
    base, routes = calendar_server
    calendar = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    routes["/cal.ics"] = (200, {"Content-Type": "text/calendar"}, calendar)
    routes["/old"] = (302, {"Location": "/cal.ics"}, b"")
    routes["/loop"] = (302, {"Location": "/loop"}, b"")
    routes["/big"] = (200, {}, b"x" * 4096)
    assert fetch_calendar(f"{base}/cal.ics", policy=LOCAL) == calendar
    assert fetch_calendar(f"{base}/old", policy=LOCAL) == calendar
    with pytest.raises(ImportFileError, match="redirected too many times"):
        fetch_calendar(f"{base}/loop", policy=LOCAL)
    with pytest.raises(ImportFileError, match="larger than 2 KB"):
        fetch_calendar(f"{base}/big", policy=LOCAL)
    with pytest.raises(ImportFileError, match="answered 404"):
        fetch_calendar(f"{base}/missing", policy=LOCAL)
    # Without the setting, the same local server is refused before any connection.
    with pytest.raises(ImportFileError, match="private network"):
        fetch_calendar(f"{base}/cal.ics", policy=POLICY)


@pytest.mark.sockets
def test_a_redirect_to_a_private_address_is_refused(
    calendar_server: tuple[str, dict[str, tuple[int, dict[str, str], bytes]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, routes = calendar_server
    routes["/away"] = (302, {"Location": "http://10.0.0.7/cal.ics"}, b"")
    from services.clients import imports

    real = imports._public_address

    def only_first_is_allowed(host: str, port: int, *, allow_private: bool) -> str:
        # The first hop is our local server (allowed); every later hop is checked as in production.
        return real(host, port, allow_private=host == "127.0.0.1")

    monkeypatch.setattr(imports, "_public_address", only_first_is_allowed)
    with pytest.raises(ImportFileError, match="private network"):
        fetch_calendar(f"{base}/away", policy=POLICY)
