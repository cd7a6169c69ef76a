"""Hostile text planted through the product's own operations in every free-text field a person can fill.

Shared by the quick-tier page and PDF test (tests/unit/web/test_hostile_everywhere.py) and the browser test
(tests/e2e/test_hostile_input.py). The strings point at a listener on 127.0.0.1 (its port given by the test), so any
page, browser or PDF renderer that treats one as markup and fetches its URL is caught.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.accounts.models import User
from services.accounts.operations import create_user, update_user
from services.alerts.kinds import resolution_reasons
from services.alerts.models import Alert
from services.alerts.operations import add_alert_note, record_repair_step, record_step, resolve_alert
from services.clients.models import Appointment, Episode
from services.clients.operations import add_appointment, create_client, open_episode
from services.db import Database, utcnow
from services.demo.seed import DEMO_LOGINS
from services.i18n import UserError
from services.practice.crisis import CrisisEntry, set_crisis_entry
from services.practice.settings import set_setting
from services.reviews.models import Review
from services.reviews.operations import CHOICES_BY_KIND, OUTCOMES_BY_KIND, ReviewAnswers, complete_review
from services.reviews.policy import ReviewPolicy
from services.reviews.queries import get_review_for
from tests.factories import PASSWORD
from tests.unit.reports.conftest import Listener

# Set by any planted script that runs; the browser test asserts it stays undefined.
FLAG = "__rapport_pwned"
LONG_LENGTH = 100_000


def hostile_strings(port: int) -> dict[str, str]:
    """Label -> hostile text; the URLs point at 127.0.0.1:port. Short ones fit a 100-character name."""
    here = f"http://127.0.0.1:{port}"
    short = {
        "script": f"<script>window.{FLAG}='script';alert('script')</script>",
        "attribute": f'"><svg onload="window.{FLAG}=1;alert(1)">',
        "attribute-single": f'\'><img src=x onerror="window.{FLAG}=2">',
        "template": "{{7*7}}{% if 1 %}jinja{% endif %}${7*7}#{7*7}",
        "css-import": f'<style>@import "{here}/css-import";</style>',
        "css-url": f'<p style="background:url({here}/css-url)">',
        "css-file": '<style>@import url("file:///etc/passwd");</style>',
        "img": f'<img src="{here}/img">',
        "link": f'<link rel="stylesheet" href="{here}/link">',
        "attachment": '<link rel="attachment" href="file:///etc/passwd">',
        "rtl": "\u202eexe.txt\u202c safe",
        "formula-equals": "=cmd|' /C calc'!A0",
        "formula-plus": "+1+cmd|' /C calc'!A0",
        "formula-minus": "-2+3+cmd|' /C calc'!A0",
        "formula-at": "@SUM(1+1)*cmd|' /C calc'!A0",
    }
    long = ("<b>long</b> " + short["script"] + " ") * (LONG_LENGTH // 70 + 1)
    return {**short, "long-100kB": long[:LONG_LENGTH]}


# Pieces that only appear in a page if a hostile string was written into it as markup (never as escaped text).
def raw_markers(port: int) -> tuple[str, ...]:
    """Substrings that, found in HTML, mean a planted string was not escaped."""
    here = f"127.0.0.1:{port}"
    return (
        f"<script>window.{FLAG}",
        "<svg onload=",
        "<img src=x onerror",
        f'<style>@import "http://{here}',
        f'style="background:url(http://{here}',
        f'<img src="http://{here}',
        f'href="http://{here}',
        'href="file:///etc/passwd"',
        'url("file:///etc/passwd")',
    )


@dataclass
class Planted:
    """What was planted where, and what the operations refused (a UserError: a clean refusal)."""

    strings: dict[str, str]
    fields: dict[str, list[str]] = field(default_factory=dict)  # field -> labels planted into it
    refused: dict[str, list[str]] = field(default_factory=dict)  # field -> labels refused by the operation
    client_ids: list[int] = field(default_factory=list)
    staff_ids: list[int] = field(default_factory=list)
    alert_ids: list[int] = field(default_factory=list)
    review_ids: list[int] = field(default_factory=list)
    appointment_ids: list[int] = field(default_factory=list)
    episode_ids: list[int] = field(default_factory=list)
    team_ids: list[int] = field(default_factory=list)
    days: set[str] = field(default_factory=set)
    # Text each field shows as: names collapse whitespace, so the expected escaped form is computed per value.
    shown: dict[str, set[str]] = field(default_factory=dict)

    @property
    def attempts(self) -> int:
        """Hostile values offered to fields."""
        return sum(len(v) for v in self.fields.values()) + sum(len(v) for v in self.refused.values())

    def expect(self, name: str, value: str) -> None:
        """Remember that field `name` holds value, to be found escaped on some page."""
        self.shown.setdefault(name, set()).add(str(escape(" ".join(value.split()))))


def _try(planted: Planted, name: str, label: str, session: Session, action: Callable[[], Any]) -> Any:
    """Run one planting in a savepoint; a UserError is a refusal (recorded), anything else fails the test."""
    try:
        with session.begin_nested():
            result = action()
    except UserError:
        planted.refused.setdefault(name, []).append(label)
        return None
    planted.fields.setdefault(name, []).append(label)
    return result


def _user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email))
    assert user is not None, email
    return user


def _combined(strings: dict[str, str], limit: int = 1900) -> str:
    """Every short hostile string in one text (for fields that take one value per record)."""
    text = " | ".join(value for label, value in strings.items() if label != "long-100kB")
    return text[:limit]


def plant_everywhere(database: Database, port: int) -> Planted:
    """Plant every hostile string in every free-text field of a seeded demo practice, through the operations."""
    strings = hostile_strings(port)
    planted = Planted(strings=strings)
    with database.unit_of_work() as session:
        clinician = _user(session, DEMO_LOGINS["clinician"])
        supervisor = _user(session, DEMO_LOGINS["supervisor"])
        admin = _user(session, DEMO_LOGINS["admin"])
        _plant_people(session, planted, clinician, admin)
        _plant_alerts(session, planted, clinician)
        _plant_review(session, planted, supervisor)
        _plant_resolution(session, planted, clinician)
        _plant_practice(session, planted, admin)
    return planted


def _plant_people(session: Session, planted: Planted, clinician: User, admin: User) -> None:
    start = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    for index, (label, value) in enumerate(planted.strings.items()):
        # A client named with it (first and last name), with the string as a goal and an appointment today.
        person = _try(
            planted,
            "client name",
            label,
            session,
            lambda value=value, index=index: create_client(session, first_name=f"H{index}", last_name=value),
        )
        if person is not None:
            planted.client_ids.append(person.id)
            planted.expect("client name", value)
            _try(
                planted,
                "client first name",
                label,
                session,
                lambda person=person, value=value, index=index: _rename_first(session, person.id, value, index),
            )
            episode = _try(
                planted,
                "goal",
                label,
                session,
                lambda person=person, value=value: open_episode(
                    session,
                    client_id=person.id,
                    clinician_id=clinician.id,
                    started_on=utcnow().date() - timedelta(days=30),
                    goals=[value, "Sleep better"],
                ),
            )
            if episode is None:
                episode = open_episode(
                    session, client_id=person.id, clinician_id=clinician.id, started_on=utcnow().date()
                )
            else:
                planted.expect("goal", value)
            planted.episode_ids.append(episode.id)
            appointment = add_appointment(
                session,
                episode_id=episode.id,
                starts_at=start + timedelta(minutes=index),
                ends_at=start + timedelta(minutes=index + 50),
            )
            planted.appointment_ids.append(appointment.id)
            planted.days.add(appointment.starts_at.date().isoformat())
        # A staff member named with it, in a team named with it.
        staff = _try(
            planted,
            "staff name",
            label,
            session,
            lambda value=value, index=index: create_user(
                session,
                email=f"hostile{index}@example.test",
                password=PASSWORD,
                role="clinician",
                name=value,
                team=f"T{index} {value}",
            ),
        )
        if staff is None:
            # The name was refused; try the team name alone on a plainly named colleague.
            staff = create_user(
                session, email=f"hostile{index}@example.test", password=PASSWORD, role="clinician", name=f"H {index}"
            )
            _try(
                planted,
                "team name",
                label,
                session,
                lambda staff=staff, value=value: update_user(session, staff, actor_id=admin.id, team=value),
            )
        else:
            planted.fields.setdefault("team name", []).append(label)
            planted.expect("staff name", value)
            planted.expect("team name", f"T{index} {value}")
            assert staff.team_id is not None
            planted.team_ids.append(staff.team_id)
        planted.staff_ids.append(staff.id)
    # One hostile clinician holds a hostile client's episode, so the roster and reports show the name.
    if planted.client_ids and planted.staff_ids:
        holder = session.get(User, planted.staff_ids[0])
        assert holder is not None
        open_episode(session, client_id=planted.client_ids[1], clinician_id=holder.id, started_on=utcnow().date())


def _rename_first(session: Session, client_id: int, value: str, index: int) -> Any:
    from services.clients.models import Client
    from services.clients.operations import update_client

    client = session.get(Client, client_id)
    assert client is not None
    return update_client(session, client_id=client_id, first_name=value, last_name=client.last_name)


def _plant_alerts(session: Session, planted: Planted, clinician: User) -> None:
    alerts = list(
        session.scalars(
            select(Alert)
            .join(Episode, Episode.id == Alert.episode_id)
            .where(Episode.clinician_id == clinician.id, Alert.status != "resolved")
            .order_by(Alert.id)
        )
    )
    alliance = [a for a in alerts if a.kind == "alliance"]
    others = [a for a in alerts if a.kind != "alliance"]
    assert alliance, "the demo practice has no open partnership alert for the demo clinician"
    target = alliance[0]
    planted.alert_ids.append(target.id)
    for label, value in planted.strings.items():
        if _try(
            planted,
            "alert note",
            label,
            session,
            lambda v=value: add_alert_note(session, target, actor=clinician, text=v),
        ):
            planted.expect("alert note", value)
        if _try(
            planted,
            "repair step",
            label,
            session,
            lambda v=value: record_repair_step(session, target, actor=clinician, text=v),
        ):
            planted.expect("repair step", value)
    if others:
        other = others[0]
        planted.alert_ids.append(other.id)
        step = "contacted_client" if other.kind == "risk" else None
        from services.alerts.kinds import steps_for

        step = step if step in steps_for(other.kind) else steps_for(other.kind)[0]
        for label, value in planted.strings.items():
            if _try(
                planted,
                "alert step note",
                label,
                session,
                lambda v=value: record_step(session, other, actor=clinician, step=step, text=v),
            ):
                planted.expect("alert step note", value)


def _plant_review(session: Session, planted: Planted, supervisor: User) -> None:
    review = session.scalar(
        select(Review).where(Review.status == "open", Review.reviewer_id == supervisor.id).order_by(Review.id)
    )
    if review is None:
        # The demo seed opens reviews only for some practices; open one the way the scheduler does.
        from zoneinfo import ZoneInfo

        from services.reviews.operations import UNREPAIRED_REASON, open_review, review_key

        alert = session.get(Alert, planted.alert_ids[0])
        assert alert is not None
        review = open_review(
            session,
            reason=UNREPAIRED_REASON,
            key=review_key(UNREPAIRED_REASON, alert.id),
            episode_id=alert.episode_id,
            alert_id=alert.id,
            now=utcnow(),
            policy=ReviewPolicy(),
            tz=ZoneInfo("Europe/London"),
            trigger={"alert_id": alert.id},
            reviewer=supervisor,
        )
    assert review is not None, "no open case review to complete"
    reviewer = session.get(User, review.reviewer_id) if review.reviewer_id else supervisor
    assert reviewer is not None
    detail = get_review_for(session, reviewer, review.id, for_update=True)
    assert detail is not None
    kind = review.alert.kind if review.alert is not None else "alliance"
    note = _combined(planted.strings, limit=1900)
    answers = ReviewAnswers(
        what_happened=note,
        component=CHOICES_BY_KIND.get(kind, CHOICES_BY_KIND["alliance"])[0],
        clinician_tried=note,
        plan=note,
        outcome="plan_agreed" if "plan_agreed" in OUTCOMES_BY_KIND.get(kind, ()) else OUTCOMES_BY_KIND[kind][0],
    )
    from zoneinfo import ZoneInfo

    if _try(
        planted,
        "review notes",
        "all-short",
        session,
        lambda: complete_review(
            session, detail, actor=reviewer, answers=answers, policy=ReviewPolicy(), tz=ZoneInfo("Europe/London")
        ),
    ):
        planted.review_ids.append(review.id)
        planted.expect("review notes", note)
    planted.extra_reviewer = reviewer.email  # type: ignore[attr-defined]


def _plant_resolution(session: Session, planted: Planted, clinician: User) -> None:
    """Resolve the planted partnership alert with a hostile note (after its notes, steps and review)."""
    closing = session.get(Alert, planted.alert_ids[0])
    assert closing is not None
    if closing.status == "resolved":
        return
    note = _combined(planted.strings)
    reason = "other"  # the reason that needs a note
    assert reason in resolution_reasons(closing.kind)
    if _try(
        planted,
        "resolution note",
        "all-short",
        session,
        lambda: resolve_alert(session, closing, actor=clinician, reason=reason, note=note),
    ):
        planted.expect("resolution note", note)


def _plant_practice(session: Session, planted: Planted, admin: User) -> None:
    for label, value in planted.strings.items():
        if _try(
            planted,
            "setting change reason",
            label,
            session,
            lambda v=value: set_setting(session, "survey_link_hours", 24, user_id=admin.id, reason=v),
        ):
            planted.expect("setting change reason", value)
    note = _combined(planted.strings, limit=1000)
    entry = CrisisEntry(region="GB", heading=planted.strings["script"], body=note, phones=())
    if _try(
        planted,
        "crisis information",
        "all-short",
        session,
        lambda: set_crisis_entry(session, "en", entry, user_id=admin.id),
    ):
        planted.expect("crisis information", note)


def practice_name(port: int) -> str:
    """A hostile practice name (a setting: it heads every report and page title)."""
    strings = hostile_strings(port)
    return f"Practice {strings['script']} {strings['css-import']} {strings['attribute']}"


def appointment_ids_of(session: Session, episode_ids: list[int]) -> list[int]:
    """Appointments of the planted episodes."""
    return list(session.scalars(select(Appointment.id).where(Appointment.episode_id.in_(episode_ids))))


@contextmanager
def listening() -> Iterator[Listener]:
    """A real TCP listener on a free 127.0.0.1 port that records every connection (see tests/unit/reports)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    recorder = Listener(sock.getsockname()[1], sock)
    thread = threading.Thread(target=recorder.serve, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        recorder._stop.set()
        thread.join(timeout=2)
        sock.close()


def pages_for(database: Database, planted: Planted) -> dict[str, list[str]]:
    """For each demo role's login: the pages that show what was planted (the crawl adds what they link to)."""
    with database.session() as session:
        reviewer = getattr(planted, "extra_reviewer", DEMO_LOGINS["supervisor"])
        reviews = list(session.scalars(select(Review.id).where(Review.status == "open").order_by(Review.id).limit(3)))
    days = sorted(planted.days)
    desk = ["/frontdesk/", "/frontdesk/?q=H", "/frontdesk/funnel", "/frontdesk/import", "/frontdesk/kiosk"]
    desk += [f"/frontdesk/appointments?day={day}" for day in days]
    for client_id in planted.client_ids:
        desk += [
            f"/frontdesk/clients/{client_id}",
            f"/frontdesk/clients/{client_id}/edit",
            f"/frontdesk/clients/{client_id}/invitations",
        ]
    desk.append(f"/frontdesk/clients/{planted.client_ids[0]}/episodes/new")
    desk += [f"/frontdesk/appointments/{a}/reschedule" for a in planted.appointment_ids[:2]]
    clinician = ["/clinician/", "/clinician/alerts", "/clinician/alerts?status=resolved", "/clinician/settings"]
    for client_id in planted.client_ids:
        clinician += [f"/clinician/clients/{client_id}", f"/clinician/clients/{client_id}/chart"]
    clinician += [f"/clinician/alerts/{a}" for a in planted.alert_ids]
    clinician += [f"/clinician/sessions/{a}/partnership" for a in planted.appointment_ids[:2]]
    supervisor = ["/supervisor/", "/reviews/"] + [f"/supervisor/clients/{c}" for c in planted.client_ids]
    review_pages = [f"/reviews/{r}" for r in planted.review_ids + reviews]
    manager = ["/manager/", "/manager/reports", "/reviews/"]
    admin = ["/admin/", "/admin/crisis", "/admin/crisis/en", "/admin/practice", "/admin/operations"]
    admin += [f"/admin/users/{u}" for u in planted.staff_ids]
    pages = {
        DEMO_LOGINS["front_desk"]: desk,
        DEMO_LOGINS["clinician"]: clinician,
        DEMO_LOGINS["supervisor"]: supervisor + review_pages,
        DEMO_LOGINS["manager"]: manager,
        DEMO_LOGINS["admin"]: admin,
    }
    if reviewer not in pages:
        pages[reviewer] = review_pages
    else:
        pages[reviewer] = [*pages[reviewer], *review_pages]
    return pages
