"""A report rendered from the fixture practice: its text layer shows the independently computed numbers."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from reports.assemble import RenderedReport, render_monthly_report
from services.config import Settings
from services.reporting.periods import ReportScope
from tests.unit.reporting.practice import NOW, PERIOD, Expected, Practice, expected


@pytest.fixture
def rendered(session: Session, practice: Practice, report_settings: Settings) -> RenderedReport:
    return render_monthly_report(session, report_settings, ReportScope("practice"), PERIOD, now=NOW)


def row_numbers(text: str, label: str, after: str = "") -> list[str]:
    section = text[text.index(after) :] if after else text
    match = re.search(rf"^\s*{re.escape(label)}\s+(.*)$", section, re.M)
    assert match, label
    return match.group(1).split()


def pct(k: int, n: int) -> str:
    return f"{round(100 * k / n)}%"


def test_outcome_rows_in_the_text_layer(
    rendered: RenderedReport, practice: Practice, pdftotext: Callable[..., str]
) -> None:
    text = pdftotext(rendered.pdf)
    exp: Expected = expected(practice, PERIOD)
    rows = {
        "Reliable improvement": (exp.reliable_improvement, exp.assessed),
        "Reliable deterioration": (exp.reliable_deterioration, exp.assessed),
        "Recovery": (exp.recovered, exp.recovery_eligible),
        "Reliable recovery": (exp.reliable_recovery, exp.recovery_eligible),
    }
    for label, (k, n) in rows.items():
        values = row_numbers(text, label, after="NHS Talking Therapies definitions")
        assert values[:3] == [str(k), str(n), pct(k, n)], label
    assert f"{exp.closed} episodes closed in October 2026" in text


def test_engagement_and_workflow_numbers_in_the_text_layer(
    rendered: RenderedReport, practice: Practice, pdftotext: Callable[..., str]
) -> None:
    text = pdftotext(rendered.pdf)
    exp = expected(practice, PERIOD)
    for channel, label in (("email", "Email"), ("sms", "SMS"), ("kiosk", "Kiosk")):
        sent, opened, completed = exp.channels[channel]
        values = row_numbers(text, label, after="Engagement")
        assert values == [str(sent), str(opened), pct(opened, sent), str(completed), pct(completed, sent)], label
    total_sent = sum(v[0] for v in exp.channels.values())
    assert row_numbers(text, "All channels", after="Engagement")[0] == str(total_sent)
    for label, kind in (("Alliance", "alliance"), ("Outcome", "outcome"), ("Risk", "risk")):
        values = row_numbers(text, label, after="Workflow")
        assert values[0] == str(exp.raised.get(kind, 0)), label
        assert values[2] == str(exp.resolved.get(kind, 0)), label
    reviews = text[text.index("Case reviews") :]
    for label, n in (
        ("Opened", exp.reviews_opened),
        ("Completed on time", exp.reviews_on_time),
        ("Completed late", exp.reviews_late),
        ("Overdue at month end", exp.reviews_overdue),
    ):
        assert re.search(rf"  {label}\s+{n}\n", reviews), label
    flagged = text[text.index("Clients flagged  ") :]
    assert f"{exp.clients_flagged} of {exp.active_clients}" in flagged
    assert row_numbers(text, "Sessions", after="Key figures")[0] == str(exp.sessions)
    assert row_numbers(text, "Active clients", after="Key figures")[0] == str(exp.active_clients)


def test_clinicians_and_not_on_track_counts_in_the_text_layer(
    rendered: RenderedReport, practice: Practice, pdftotext: Callable[..., str]
) -> None:
    text = pdftotext(rendered.pdf)
    exp = expected(practice, PERIOD)
    table = text[text.index("By team and clinician") : re.search(r"^\S+-month trends$", text, re.M).start()]  # type: ignore[union-attr]
    clinicians = table[table.index("Clinicians") :]
    names = {u.id: u.name for u in practice.clinicians}
    positions = []
    for clinician_id, figures in exp.per_clinician.items():
        values = row_numbers(clinicians, names[clinician_id])
        assert values[0] == str(figures["caseload"])
        positions.append((clinicians.index(names[clinician_id]), names[clinician_id]))
        if figures.get("sent", 0) >= 5:
            assert values[1] == pct(figures["completed"], figures["sent"])
        else:
            assert values[1] == "\u2013*"  # suppressed: fewer than 5 invitations
        flagged = exp.not_on_track_by_clinician.get(clinician_id, 0)
        if figures["caseload"] >= 5:
            assert values[-2:] == [str(flagged), f"({pct(flagged, figures['caseload'])})"], names[clinician_id]
        else:
            assert values[-1] == "\u2013*"
    # by team, then by name within a team: never ranked
    by_team = sorted(exp.per_clinician, key=lambda c: (practice.team_of[c], names[c].casefold()))
    assert [n for _, n in sorted(positions)] == [names[c] for c in by_team]
    teams = sorted(t.name for t in practice.teams.values())
    for team in teams:
        assert re.search(rf"^\s*{team}\s+\d", table[: table.index("Clinicians")], re.M), team  # the teams table
    # The practice report names no client; it says where they are listed.
    assert exp.not_on_track_codes
    assert not any(c.code in text for c in practice.clients)
    assert f"listed by pseudonymous code in the team reports ({', '.join(teams)})" in " ".join(text.split())
    assert not any(c.first_name in text or c.last_name in text for c in practice.clients)


def test_team_reports_list_the_not_on_track_codes(
    session: Session, practice: Practice, report_settings: Settings, pdftotext: Callable[..., str]
) -> None:
    exp = expected(practice, PERIOD)
    listed: list[str] = []
    for team in practice.teams.values():
        report = render_monthly_report(session, report_settings, ReportScope("team", team.id), PERIOD, now=NOW)
        text = pdftotext(report.pdf)
        listed += [c.code for c in practice.clients for _ in range(text.count(c.code))]
        assert not any(c.first_name in text or c.last_name in text for c in practice.clients)
    assert sorted(listed) == sorted(exp.not_on_track_codes)  # each once, in its own team's report


def test_every_page_carries_the_practice_name_and_page_numbers(
    rendered: RenderedReport, report_settings: Settings, pdftotext: Callable[..., Any]
) -> None:
    pages = [p for p in pdftotext(rendered.pdf).split("\f") if p.strip()]
    assert len(pages) >= 5
    for i, page in enumerate(pages, start=1):
        assert report_settings.practice_name in page
        assert f"Page {i} of {len(pages)}" in page
