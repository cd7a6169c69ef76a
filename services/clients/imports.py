"""Appointment imports from a CSV file or an iCalendar file or URL, with a per-row report.

Rows are matched to clients by code or email and to an open episode (by clinician email when a client has
several); appointments are upserted by (source, calendar id). Each row is applied inside its own savepoint, so
a row that fails leaves nothing behind and the others still import; the caller commits the whole import once.

iCalendar support is deliberately small (RFC 5545 subset, standard library only): VEVENTs with UID, DTSTART and
DTEND or DURATION (UTC, TZID with an IANA zone name, or floating in the practice's zone), STATUS:CANCELLED and
METHOD:CANCEL, RECURRENCE-ID overrides. Repeating events (RRULE), all-day events and Windows zone names are
reported as skipped with the reason, not guessed at.
"""

from __future__ import annotations

import csv
import http.client
import io
import re
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.clients.codes import CODE_PATTERN
from services.clients.models import Appointment, Client, Episode
from services.clients.operations import (
    CLINICAL_ROLES,
    MAX_EXTERNAL_ID_LENGTH,
    MAX_SOURCE_LENGTH,
    ClientError,
    add_appointment,
    cancel_appointment,
    reschedule_appointment,
)
from services.i18n import N_, Message
from services.inputs import InputError, check_plausible_date, control_character_in, normalise_email_address
from services.ssrf import is_public_address
from services.surveys.policy import InvitationPolicy

MAX_ROWS = 5000
MAX_REDIRECTS = 3
Outcome = Literal["imported", "updated", "skipped"]


class ImportFileError(ClientError):
    """The file or URL as a whole cannot be imported (unreadable, too large, refused); nothing was written."""


@dataclass
class ParsedRow:
    """One appointment as read from a file, before it is matched to anyone."""

    line: int
    external_id: str | None = None
    client_code: str | None = None
    emails: list[str] = field(default_factory=list)  # the client's and perhaps the clinician's
    clinician_email: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    cancelled: bool = False
    problem: str | None = None  # why the row cannot be read; reported as skipped


@dataclass(frozen=True)
class RowResult:
    """What happened to one row, and why."""

    line: int
    external_id: str | None
    outcome: Outcome
    reason: str
    appointment_id: int | None = None
    client_id: int | None = None
    starts_at: datetime | None = None


@dataclass
class ImportReport:
    """The per-row report of an import."""

    source: str
    rows: list[RowResult] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        """How many rows had this outcome."""
        return sum(1 for row in self.rows if row.outcome == outcome)

    @property
    def imported(self) -> int:
        """Rows that added an appointment."""
        return self.count("imported")

    @property
    def updated(self) -> int:
        """Rows that changed an appointment (moved or cancelled)."""
        return self.count("updated")

    @property
    def skipped(self) -> int:
        """Rows that changed nothing, with their reason."""
        return self.count("skipped")


# --- reading files -------------------------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """File bytes as text: UTF-8 (with or without a byte-order mark), else Windows-1252."""
    if b"\x00" in data[:4096]:
        raise ImportFileError(N_("This is not a text file. Upload a CSV or iCalendar (.ics) file."))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _parse_local(value: str, tz: ZoneInfo) -> datetime:
    """An ISO 8601 date and time; without an offset it is read in the practice's time zone."""
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "T" not in text and " " not in text.strip():
        raise ValueError("a date without a time")
    parsed = datetime.fromisoformat(text)
    check_plausible_date(parsed)  # InputError, with the window in its message
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


CSV_COLUMNS = {
    "external_id": ("external_id", "id", "uid", "appointment_id", "calendar_id"),
    "client_code": ("client_code", "code"),
    "client_email": ("client_email", "email"),
    "clinician_email": ("clinician_email", "therapist_email", "clinician"),
    "starts_at": ("starts_at", "start", "starts", "start_time"),
    "ends_at": ("ends_at", "end", "ends", "end_time"),
    "duration_minutes": ("duration_minutes", "duration", "minutes"),
    "status": ("status",),
}


def parse_csv(text: str, *, tz: ZoneInfo) -> list[ParsedRow]:
    """Rows of a CSV with a header line (see CSV_COLUMNS for the names understood)."""
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(N_("The file is empty.")) from None
    except csv.Error as exc:
        raise ImportFileError(Message("The file is not valid CSV: %(error)s.", error=str(exc))) from None
    names = [h.strip().lower().replace(" ", "_").replace("-", "_") for h in header]
    index: dict[str, int] = {}
    for key, aliases in CSV_COLUMNS.items():
        for alias in aliases:
            if alias in names:
                index[key] = names.index(alias)
                break
    missing = [k for k in ("external_id", "starts_at") if k not in index]
    if "client_code" not in index and "client_email" not in index:
        missing.append("client_code or client_email")
    if "ends_at" not in index and "duration_minutes" not in index:
        missing.append("ends_at or duration_minutes")
    if missing:
        raise ImportFileError(
            Message(
                "The header line lacks these columns: %(missing)s. Expected for example: "
                "external_id,client_code,client_email,clinician_email,starts_at,ends_at,status",
                missing=", ".join(missing),
            )
        )
    rows: list[ParsedRow] = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise ImportFileError(
                    Message("The file has more than %(max)d rows; split it into smaller files.", max=MAX_ROWS)
                )
            rows.append(_csv_row(reader.line_num, cells, index, tz))
    except csv.Error as exc:
        raise ImportFileError(
            Message("The file is not valid CSV near line %(line)d: %(error)s.", line=reader.line_num, error=str(exc))
        ) from None
    return rows


def _csv_row(line: int, cells: list[str], index: dict[str, int], tz: ZoneInfo) -> ParsedRow:
    def cell(key: str) -> str:
        i = index.get(key)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    row = ParsedRow(line=line, external_id=cell("external_id") or None)
    found = control_character_in(cells)
    if found is not None:
        row.problem = Message("the row contains a control character (%(char)s)", char=found[1])
        return row
    row.client_code = cell("client_code").upper() or None
    try:
        email = normalise_email_address(cell("client_email")) if cell("client_email") else ""
        row.clinician_email = normalise_email_address(cell("clinician_email")) if cell("clinician_email") else None
    except InputError as exc:
        row.problem = exc.message
        return row
    if email:
        row.emails.append(email)
    status = cell("status").lower()
    if status and status not in ("scheduled", "confirmed", "booked", "cancelled", "canceled"):
        row.problem = Message("unknown status %(status)r (use scheduled or cancelled)", status=cell("status"))
        return row
    row.cancelled = status in ("cancelled", "canceled")
    try:
        row.starts_at = _parse_local(cell("starts_at"), tz)
    except InputError as exc:
        row.problem = exc.message
        return row
    except ValueError:
        row.problem = Message(
            "start %(value)r is not a date and time such as 2026-03-02T14:00", value=cell("starts_at")
        )
        return row
    if cell("ends_at"):
        try:
            row.ends_at = _parse_local(cell("ends_at"), tz)
        except InputError as exc:
            row.problem = exc.message
            return row
        except ValueError:
            row.problem = Message(
                "end %(value)r is not a date and time such as 2026-03-02T14:50", value=cell("ends_at")
            )
            return row
    else:
        minutes = cell("duration_minutes")
        if not minutes.isdigit() or not 0 < int(minutes) <= 480:
            row.problem = N_("give an end time or a duration in minutes (1 to 480)")
            return row
        row.ends_at = row.starts_at + timedelta(minutes=int(minutes))
    return row


def _unfold(text: str) -> Iterator[tuple[int, str]]:
    """Content lines with their first physical line number (RFC 5545 folding undone)."""
    current: str | None = None
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw[:1] in (" ", "\t") and current is not None:
            current += raw[1:]
            continue
        if current is not None:
            yield start, current
        current, start = raw, number
    if current is not None:
        yield start, current


def _split_property(line: str) -> tuple[str, dict[str, str], str]:
    """NAME;PARAM=VALUE;...:value -> (NAME, params, value), honouring quoted parameter values."""
    in_quotes = False
    for i, ch in enumerate(line):
        if ch == '"':
            in_quotes = not in_quotes
        elif ch == ":" and not in_quotes:
            head, value = line[:i], line[i + 1 :]
            break
    else:
        return line.strip().upper(), {}, ""
    parts = re.findall(r'(?:[^;"]|"[^"]*")+', head)
    name = parts[0].strip().upper() if parts else ""
    params: dict[str, str] = {}
    for part in parts[1:]:
        key, _, val = part.partition("=")
        params[key.strip().upper()] = val.strip().strip('"')
    return name, params, value


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


_DURATION = re.compile(r"^([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def _ics_duration(value: str) -> timedelta:
    match = _DURATION.match(value.strip().upper())
    if not match or value.strip().upper() in ("P", "PT"):
        raise ValueError(value)
    sign, weeks, days, hours, minutes, seconds = match.groups()
    delta = timedelta(
        weeks=int(weeks or 0),
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=int(seconds or 0),
    )
    return -delta if sign == "-" else delta


class _IcsTimeError(ValueError):
    pass


def _ics_datetime(value: str, params: dict[str, str], tz: ZoneInfo) -> datetime:
    if params.get("VALUE", "").upper() == "DATE" or re.fullmatch(r"\d{8}", value.strip()):
        raise _IcsTimeError(N_("an all-day event, not an appointment"))
    text = value.strip()
    try:
        naive = datetime.strptime(text.rstrip("Zz"), "%Y%m%dT%H%M%S")
    except ValueError:
        raise _IcsTimeError(Message("the time %(value)r is not an iCalendar date-time", value=text)) from None
    if text.upper().endswith("Z"):
        return naive.replace(tzinfo=UTC)
    zone_name = params.get("TZID")
    if zone_name:
        try:
            zone = ZoneInfo(zone_name.lstrip("/"))
        except (ZoneInfoNotFoundError, ValueError):
            raise _IcsTimeError(
                Message("unknown time zone %(zone)r (export with IANA names such as Europe/London)", zone=zone_name)
            ) from None
        return naive.replace(tzinfo=zone).astimezone(UTC)
    return naive.replace(tzinfo=tz).astimezone(UTC)


def _mailto(value: str) -> str | None:
    address = value.strip()
    if address.lower().startswith("mailto:"):
        address = address[7:]
    try:
        return normalise_email_address(address)
    except InputError:
        return None


def parse_ics(text: str, *, tz: ZoneInfo) -> list[ParsedRow]:
    """The VEVENTs of an iCalendar text as rows (see the module docstring for what is understood)."""
    lines = list(_unfold(text))
    if not any(line.strip().upper() == "BEGIN:VCALENDAR" for _, line in lines[:50]):
        raise ImportFileError(N_("This is not an iCalendar file (it does not start with BEGIN:VCALENDAR)."))
    method_cancel = False
    rows: list[ParsedRow] = []
    event: list[tuple[str, dict[str, str], str]] | None = None
    event_line = 0
    depth = 0  # nested components inside a VEVENT (VALARM) are ignored
    for number, line in lines:
        if not line.strip():
            continue
        name, params, value = _split_property(line)
        if name == "METHOD" and event is None:
            method_cancel = value.strip().upper() == "CANCEL"
        elif name == "BEGIN" and value.strip().upper() == "VEVENT" and event is None:
            event, event_line, depth = [], number, 0
        elif event is not None and name == "BEGIN":
            depth += 1
        elif event is not None and name == "END" and depth:
            depth -= 1
        elif event is not None and name == "END" and value.strip().upper() == "VEVENT":
            if len(rows) >= MAX_ROWS:
                raise ImportFileError(
                    Message("The calendar has more than %(max)d events; export a shorter period.", max=MAX_ROWS)
                )
            rows.append(_ics_row(event_line, event, tz, method_cancel))
            event = None
        elif event is not None and not depth:
            event.append((name, params, value))
    return rows


def _ics_row(line: int, props: list[tuple[str, dict[str, str], str]], tz: ZoneInfo, cancelled: bool) -> ParsedRow:
    first: dict[str, tuple[dict[str, str], str]] = {}
    for name, params, value in props:
        first.setdefault(name, (params, value))
    row = ParsedRow(line=line, cancelled=cancelled)
    control = control_character_in([value for _name, _params, value in props])
    if control is not None:
        row.problem = Message("the event contains a control character (%(char)s)", char=control[1])
        return row
    uid = _unescape(first.get("UID", ({}, ""))[1]).strip()
    if "RECURRENCE-ID" in first and uid:
        uid = f"{uid}/{first['RECURRENCE-ID'][1].strip()}"
    row.external_id = uid or None
    status = first.get("STATUS", ({}, ""))[1].strip().upper()
    row.cancelled = row.cancelled or status == "CANCELLED"
    if "X-RAPPORT-CLIENT" in first:
        row.client_code = _unescape(first["X-RAPPORT-CLIENT"][1]).strip().upper() or None
    if row.client_code is None:
        for key in ("SUMMARY", "DESCRIPTION"):
            found = CODE_PATTERN.search(_unescape(first.get(key, ({}, ""))[1]))
            if found:
                row.client_code = found.group(1)
                break
    organizer = _mailto(first["ORGANIZER"][1]) if "ORGANIZER" in first else None
    row.clinician_email = organizer
    row.emails = [e for name, _p, value in props if name == "ATTENDEE" and (e := _mailto(value)) and e != organizer]
    if "RRULE" in first or "RDATE" in first:
        row.problem = N_("a repeating event: export the individual appointments instead of the series")
        return row
    if "DTSTART" not in first:
        row.problem = N_("no start time (DTSTART)")
        return row
    try:
        row.starts_at = check_plausible_date(_ics_datetime(first["DTSTART"][1], first["DTSTART"][0], tz))
        if "DTEND" in first:
            row.ends_at = _ics_datetime(first["DTEND"][1], first["DTEND"][0], tz)
        elif "DURATION" in first:
            try:
                row.ends_at = row.starts_at + _ics_duration(first["DURATION"][1])
            except ValueError:
                row.problem = Message(
                    "the duration %(value)r is not an iCalendar duration such as PT50M", value=first["DURATION"][1]
                )
                return row
        else:
            row.problem = N_("no end time (DTEND or DURATION)")
    except _IcsTimeError as exc:
        row.problem = exc.args[0]
    except InputError as exc:
        row.problem = exc.message
    return row


# --- fetching a calendar from a URL --------------------------------------------------------------------------


def _public_address(host: str, port: int, *, allow_private: bool) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise ImportFileError(Message("The calendar's host %(host)r could not be found.", host=host)) from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise ImportFileError(Message("The calendar's host %(host)r could not be found.", host=host))
    if not allow_private:
        for address in addresses:
            if not is_public_address(str(address)):
                raise ImportFileError(
                    N_("That address is inside a private network; calendar imports fetch only public addresses.")
                )
    return str(addresses[0])


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address checked beforehand, verifying the certificate against the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to an address checked beforehand (no second DNS lookup to rebind)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def fetch_calendar(url: str, *, policy: InvitationPolicy) -> bytes:
    """Download a calendar: http(s) only, public addresses only (unless allowed), a time limit and a size cap."""
    deadline = time.monotonic() + policy.import_timeout_seconds
    url = url.strip()
    if url.lower().startswith("webcal://"):
        url = "https://" + url[9:]
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImportFileError(N_("Give an http:// or https:// address of the calendar."))
        if parts.username or parts.password:
            raise ImportFileError(N_("Addresses with a user name or password are not accepted."))
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ImportFileError(N_("The address has an invalid port.")) from None
        address = _public_address(parts.hostname, port, allow_private=policy.import_allow_private_urls)
        remaining = max(0.5, deadline - time.monotonic())
        connection: http.client.HTTPConnection = (
            _PinnedHTTPSConnection(parts.hostname, port, address, remaining)
            if parts.scheme == "https"
            else _PinnedHTTPConnection(parts.hostname, port, address, remaining)
        )
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request(
                "GET", path, headers={"User-Agent": "Rapport calendar import", "Accept": "text/calendar, text/csv"}
            )
            response = connection.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise ImportFileError(N_("The calendar server redirected without saying where."))
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise ImportFileError(
                    Message(
                        "The calendar server answered %(status)s %(reason)s.",
                        status=response.status,
                        reason=response.reason,
                    )
                )
            length = response.getheader("Content-Length")
            if length and length.isdigit() and int(length) > policy.import_max_bytes:
                raise ImportFileError(_too_large(policy))
            return _read_capped(response, policy, deadline)
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, TimeoutError | socket.timeout):
                raise ImportFileError(N_("The calendar server took too long to answer.")) from None
            raise ImportFileError(
                Message("The calendar could not be downloaded (%(error)s).", error=type(exc).__name__)
            ) from None
        finally:
            connection.close()
    raise ImportFileError(N_("The calendar address redirected too many times."))


def _too_large(policy: InvitationPolicy) -> str:
    return Message("The calendar is larger than %(size)d KB.", size=policy.import_max_bytes // 1024)


def _read_capped(response: http.client.HTTPResponse, policy: InvitationPolicy, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise ImportFileError(N_("The calendar server took too long to answer."))
        chunk = response.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > policy.import_max_bytes:
            raise ImportFileError(_too_large(policy))
        chunks.append(chunk)


# --- applying rows -------------------------------------------------------------------------------------------


class _Skip(Exception):
    def __init__(self, reason: str, *, client_id: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.client_id = client_id


def _find_client(session: Session, row: ParsedRow) -> Client:
    if row.client_code:
        client = session.scalar(select(Client).where(Client.code == row.client_code))
        if client is None:
            raise _Skip(Message("no client with code %(code)s", code=row.client_code))
    else:
        found: list[Client] = []
        for email in row.emails:
            found = list(session.scalars(select(Client).where(func.lower(Client.email) == email).limit(2)))
            if found:
                break
        if not found:
            raise _Skip(N_("no client with that email") if row.emails else N_("no client code or email given"))
        if len(found) > 1:
            raise _Skip(N_("several clients share that email: give the client code"))
        client = found[0]
    if client.archived_at is not None:
        raise _Skip(N_("the client is archived"), client_id=client.id)
    return client


def _find_episode(session: Session, client: Client, row: ParsedRow) -> Episode:
    episodes = list(
        session.scalars(
            select(Episode).where(Episode.client_id == client.id, Episode.ended_on.is_(None)).order_by(Episode.id)
        )
    )
    if not episodes:
        raise _Skip(N_("the client has no open episode"), client_id=client.id)
    if len(episodes) == 1:
        return episodes[0]
    wanted = [e for e in [row.clinician_email, *row.emails] if e]
    clinicians = set(
        session.scalars(select(User.id).where(func.lower(User.email).in_(wanted), User.role.in_(CLINICAL_ROLES)))
    )
    matching = [e for e in episodes if e.clinician_id in clinicians]
    if len(matching) != 1:
        raise _Skip(N_("the client has several open episodes: give the clinician's email"), client_id=client.id)
    return matching[0]


def _apply_row(
    session: Session, row: ParsedRow, *, source: str, policy: InvitationPolicy, now: datetime
) -> tuple[Outcome, str, Appointment, int]:
    if row.problem:
        raise _Skip(row.problem)
    if not row.external_id:
        raise _Skip(N_("no calendar id (external_id or UID), so a later import could not update it"))
    if len(row.external_id) > MAX_EXTERNAL_ID_LENGTH:
        raise _Skip(Message("the calendar id is longer than %(max)d characters", max=MAX_EXTERNAL_ID_LENGTH))
    client = _find_client(session, row)
    if row.starts_at is None or row.ends_at is None:
        raise _Skip(N_("no start or end time"), client_id=client.id)
    existing = session.scalar(
        select(Appointment).where(Appointment.source == source, Appointment.external_id == row.external_id)
    )
    if existing is not None:
        if existing.episode.client_id != client.id:
            raise _Skip(N_("this calendar id belongs to another client's appointment"), client_id=client.id)
        if row.cancelled:
            if existing.status == "cancelled":
                return "skipped", N_("already cancelled"), existing, client.id
            cancel_appointment(session, appointment_id=existing.id, reason="cancelled in the calendar", now=now)
            return "updated", N_("cancelled"), existing, client.id
        if (existing.starts_at, existing.ends_at) == (row.starts_at, row.ends_at):
            return "skipped", N_("unchanged"), existing, client.id
        if existing.status == "cancelled":
            raise _Skip(N_("cancelled here earlier; add a new appointment to book it again"), client_id=client.id)
        if existing.status != "scheduled":
            raise _Skip(N_("already took place; it is not moved"), client_id=client.id)
        reschedule_appointment(
            session, appointment_id=existing.id, starts_at=row.starts_at, ends_at=row.ends_at, policy=policy
        )
        return "updated", N_("moved to the new time"), existing, client.id
    if row.cancelled:
        raise _Skip(N_("cancelled in the calendar and not booked here"), client_id=client.id)
    episode = _find_episode(session, client, row)
    appointment = add_appointment(
        session,
        episode_id=episode.id,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        source=source,
        external_id=row.external_id,
    )
    return "imported", N_("new appointment"), appointment, client.id


def import_appointments(
    session: Session,
    rows: Sequence[ParsedRow],
    *,
    source: str,
    policy: InvitationPolicy | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Apply parsed rows (each in its own savepoint) and report every row's outcome; the caller commits."""
    source = source.strip().lower()
    if not source or len(source) > MAX_SOURCE_LENGTH or not re.fullmatch(r"[a-z0-9_.-]+", source):
        raise ImportFileError(
            Message("The source is 1 to %(max)d letters, digits, dots, dashes or underscores.", max=MAX_SOURCE_LENGTH)
        )
    policy = policy or InvitationPolicy()
    now = now or datetime.now(UTC)
    report = ImportReport(source=source)
    seen: set[str] = set()
    for row in rows:
        if row.external_id and row.external_id in seen and not row.problem:
            report.rows.append(
                RowResult(row.line, row.external_id, "skipped", N_("the same calendar id appears earlier"))
            )
            continue
        if row.external_id:
            seen.add(row.external_id)
        try:
            with session.begin_nested():
                outcome, reason, appointment, client_id = _apply_row(
                    session, row, source=source, policy=policy, now=now
                )
        except _Skip as skip:
            report.rows.append(RowResult(row.line, row.external_id, "skipped", skip.reason, client_id=skip.client_id))
            continue
        except ClientError as exc:
            report.rows.append(RowResult(row.line, row.external_id, "skipped", exc.message))
            continue
        report.rows.append(
            RowResult(
                row.line,
                row.external_id,
                outcome,
                reason,
                appointment_id=appointment.id,
                client_id=client_id,
                starts_at=appointment.starts_at,
            )
        )
    return report


def detect_format(filename: str, text: str) -> str:
    """ "ical" or "csv", from the file name or, failing that, the content."""
    name = filename.lower()
    if name.endswith((".ics", ".ical", ".ifb")):
        return "ical"
    if name.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    return "ical" if text.lstrip().upper().startswith("BEGIN:VCALENDAR") else "csv"


def parse_calendar(data: bytes, *, fmt: str, tz: ZoneInfo) -> list[ParsedRow]:
    """Parse uploaded or downloaded bytes as CSV or iCalendar."""
    text = decode_text(data)
    if not text.strip():
        raise ImportFileError(N_("The file is empty."))
    if fmt == "ical":
        return parse_ics(text, tz=tz)
    if fmt == "csv":
        return parse_csv(text, tz=tz)
    raise ImportFileError(Message("Unknown format %(format)r; use csv or ical.", format=fmt))
