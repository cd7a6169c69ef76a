"""The monthly report: numbers in the PDF text layer against an independent computation, hostile text, structure."""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from reports import monthly
from reports.monthly import (
    SUPPRESSED,
    ClinicianFigures,
    MonthlyReportData,
    check_report_data,
    render_monthly_html,
    render_monthly_pdf,
    sample_monthly_data,
    suppress_small,
    wilson_interval,
)
from reports.pdf import SafeURLFetcher, render_pdf
from reports.templating import format_hours, format_number, format_signed, get_environment

SEED = 7
DASH = "\u2013"
HOSTILE = (
    '<script>alert(1)</script><img src="file:///etc/passwd"> '
    "url(http://127.0.0.1:{port}/x) @import url(http://127.0.0.1:{port}/y); "
    '<link rel=attachment href="file:///etc/passwd">'
)
ALLOWED_ASSETS = {
    "report.css",
    "fonts/DejaVuSans.ttf",
    "fonts/DejaVuSans-Bold.ttf",
    "fonts/DejaVuSans-Oblique.ttf",
    "fonts/DejaVuSansCondensed.ttf",
    "fonts/DejaVuSansCondensed-Bold.ttf",
}


def independent_wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson bounds as the roots of (p_hat - p)^2 = z^2 p (1 - p) / n, solved numerically."""
    p_hat = k / n
    a = 1 + z * z / n
    b = -(2 * p_hat + z * z / n)
    c = p_hat * p_hat
    roots = sorted(float(r.real) for r in np.roots([a, b, c]))
    return max(roots[0], 0.0), min(roots[1], 1.0)


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def number(token: str) -> float:
    return float(token.replace("\u2212", "-").replace(",", "").rstrip("%"))


def close(shown: str, exact: float, digits: int) -> bool:
    """Whether a rounded figure in the text is the exact value rounded to the digits shown."""
    return abs(number(shown) - exact) <= 0.5 * 10**-digits + 1e-9


def interval_close(token: str, k: int, n: int, *, scale: float, digits: int) -> bool:
    match = re.fullmatch(r"\(([\d.]+)\u2013([\d.]+)%?\)", token)
    assert match, token
    lo, hi = independent_wilson(k, n)
    return close(match.group(1), lo * scale, digits) and close(match.group(2), hi * scale, digits)


@pytest.fixture(scope="module")
def sample() -> MonthlyReportData:
    return sample_monthly_data(SEED)


@pytest.fixture(scope="module")
def sample_text(sample: MonthlyReportData, tmp_path_factory: pytest.TempPathFactory) -> str:
    pdf = render_monthly_pdf(sample)
    path = tmp_path_factory.mktemp("monthly") / "monthly.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def lines_after(text: str, label: str) -> list[str]:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(label):
            return [line, *[ln for ln in lines[i + 1 :] if ln.strip()]]
    raise AssertionError(f"{label!r} not found in the text layer")


# ---------------------------------------------------------------------------------------------------------------
# statistics


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(min_value=1, max_value=5000))
def test_wilson_interval_matches_an_independent_solution(data: st.DataObject, n: int) -> None:
    k = data.draw(st.integers(min_value=0, max_value=n))
    interval = wilson_interval(k, n)
    lo, hi = independent_wilson(k, n)
    assert interval.lo == pytest.approx(lo, abs=1e-9)
    assert interval.hi == pytest.approx(hi, abs=1e-9)
    assert interval.lo <= k / n <= interval.hi


def test_wilson_interval_reference_values() -> None:
    assert wilson_interval(0, 10).lo == 0
    assert wilson_interval(0, 10).hi == pytest.approx(0.2775, abs=5e-5)
    assert wilson_interval(5, 10).lo == pytest.approx(0.2366, abs=5e-5)
    assert wilson_interval(5, 10).hi == pytest.approx(0.7634, abs=5e-5)
    assert wilson_interval(10, 10).hi == 1
    wider = wilson_interval(5, 10, z=2.576)
    assert wider.lo < 0.2366
    with pytest.raises(ValueError, match="n > 0"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="between 0 and n"):
        wilson_interval(11, 10)


def test_suppress_small_withholds_below_the_minimum() -> None:
    assert suppress_small(4, 0.5) is SUPPRESSED
    assert suppress_small(5, 0.5) == 0.5
    assert suppress_small(2, "x", min_n=3) is SUPPRESSED
    assert not SUPPRESSED
    with pytest.raises(ValueError, match="negative"):
        suppress_small(-1, 1)
    cell = monthly.rate_cell(3, 4)
    assert cell.suppressed
    assert cell.text == DASH
    assert cell.interval == ""


def test_formatting_filters() -> None:
    assert format_number(1234.5, 1) == "1,234.5"
    assert format_number(-2) == "\u22122"
    assert format_number(-0.2) == "0"
    assert format_number(None) == DASH
    assert format_signed(3) == "+3"
    assert format_signed(-2.5, 1, " h") == "\u22122.5 h"
    assert format_signed(0) == "0"
    assert format_hours(0.5) == "30 min"
    assert format_hours(5.25) == "5.2 h"
    assert format_hours(72) == "3.0 d"


def test_templates_autoescape_html_svg_and_strings() -> None:
    env = get_environment()
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    assert callable(env.autoescape)
    for name in ("monthly/report.html", "charts/scene.svg", "feed.xml", "anything.txt", None):
        assert env.autoescape(name) is True, name
    rendered = env.get_template("charts/table.html").render(caption="<i>", headers=["<b>"], rows=[["<u>"]])
    assert "<i>" not in rendered
    assert "&lt;i&gt;" in rendered


# ---------------------------------------------------------------------------------------------------------------
# data checks


def test_inconsistent_data_is_refused(sample: MonthlyReportData) -> None:
    last = dataclasses.replace(sample.trend[-1], ruptures=sample.trend[-1].ruptures + 1)
    with pytest.raises(ValueError, match=r"ruptures: .* in the trend's last month"):
        dataclasses.replace(sample, trend=(*sample.trend[:-1], last))
    with pytest.raises(ValueError, match="not consecutive"):
        dataclasses.replace(sample, trend=(sample.trend[0], *sample.trend[2:]))
    with pytest.raises(ValueError, match="period month out of range"):
        dataclasses.replace(sample, period="2026-13")
    with pytest.raises(ValueError, match="YYYY-MM"):
        dataclasses.replace(sample, period="26-10")
    bad = dataclasses.replace(sample.clinicians[0], recovered=sample.clinicians[0].recovery_eligible + 1)
    with pytest.raises(ValueError, match="recovered"):
        dataclasses.replace(sample, clinicians=(bad, *sample.clinicians[1:]))
    negative = dataclasses.replace(sample.workflow, escalations=-1)
    with pytest.raises(ValueError, match=r"workflow\.escalations is negative"):
        dataclasses.replace(sample, workflow=negative)
    assert check_report_data(sample) == []


def test_sample_data_is_deterministic_and_synthetic() -> None:
    assert sample_monthly_data(3) == sample_monthly_data(3)
    assert sample_monthly_data(3) != sample_monthly_data(4)
    data = sample_monthly_data(3, clinicians=30)
    assert len({c.name for c in data.clinicians}) == 30
    assert all(re.fullmatch(r"C-[2-9A-HJ-NP-Z]{5}", c.client_code) for c in data.not_on_track)


# ---------------------------------------------------------------------------------------------------------------
# numbers in the PDF's text layer


def test_outcome_rates_and_intervals_in_the_pdf(sample: MonthlyReportData, sample_text: str) -> None:
    o = sample.outcomes
    rows = {
        "Reliable improvement": (o.reliable_improvement, o.episodes_assessed),
        "Reliable deterioration": (o.reliable_deterioration, o.episodes_assessed),
        "Recovery": (o.recovered, o.recovery_eligible),
        "Reliable recovery": (o.reliable_recovery, o.recovery_eligible),
    }
    outcomes = sample_text[sample_text.index("NHS Talking Therapies definitions") :]
    for label, (k, n) in rows.items():
        assert n >= sample.min_cell
        match = re.search(rf"^\s*{label}\s+(\d+)\s+(\d+)\s+(\d+%)\s+\S.*\n\s*(\(\S+\))", outcomes, re.M)
        assert match, label
        assert (int(match.group(1)), int(match.group(2))) == (k, n)
        assert close(match.group(3), 100 * k / n, 0), (label, match.group(3))
        assert interval_close(match.group(4), k, n, scale=100, digits=0), (label, match.group(4))


def shown_column(c: ClinicianFigures, column: int, min_cell: int) -> bool:
    """Whether clinician c has enough cases for the by-clinician column (Completion first, Not on track last)."""
    denominators = (
        c.invitations_sent,
        c.episodes_assessed,
        c.recovery_eligible,
        c.episodes_assessed,
        c.partnership_sessions,
        c.alliance_alerts_closed,
        c.caseload,
        c.caseload,
    )
    return denominators[column] >= min_cell


def test_per_clinician_rows_in_the_pdf(sample: MonthlyReportData, sample_text: str) -> None:
    table = sample_text[sample_text.index("By clinician") : sample_text.index("Twelve-month trends")]
    positions = []
    for c in sample.clinicians:
        lines = lines_after(table, c.name)
        positions.append(table.index(c.name))
        values = lines[0].split()[len(c.name.split()) :]
        intervals = lines[1].split()
        assert int(values[0]) == c.caseload
        expected: list[tuple[int, int, float, int]] = [
            (c.invitations_completed, c.invitations_sent, 100, 0),
            (c.reliable_improvement, c.episodes_assessed, 100, 0),
            (c.recovered, c.recovery_eligible, 100, 0),
            (c.reliable_deterioration, c.episodes_assessed, 100, 0),
            (c.ruptures, c.partnership_sessions, 100, 1),
            (c.repaired, c.alliance_alerts_closed, 100, 0),
            (c.clients_flagged, c.caseload, 100, 0),
            (c.not_on_track, c.caseload, 100, 0),
        ]
        # A column suppressed for every clinician is left out (a sentence under the table names it).
        kept = [j for j in range(len(expected)) if any(shown_column(d, j, sample.min_cell) for d in sample.clinicians)]
        shown = iter(intervals)
        tokens = iter(values[1:])
        for j in kept:
            k, n, scale, digits = expected[j]
            token = next(tokens)
            if n < sample.min_cell:
                assert token == f"{DASH}*", (c.name, token, k, n)
                continue
            if j == len(expected) - 1:  # not on track: the count, then its share
                assert token == str(k), (c.name, token, k)
                token = next(tokens).strip("()")
            assert close(token, scale * k / n, digits), (c.name, token, k, n)
            assert interval_close(next(shown), k, n, scale=scale, digits=digits), (c.name, k, n)
        assert next(tokens, None) is None, f"{c.name}: more cells than columns shown"
        assert next(shown, None) is None, f"{c.name}: more intervals than unsuppressed cells"
    # listed by name, never ranked
    by_position = [c.name for _, c in sorted(zip(positions, sample.clinicians, strict=True), key=lambda p: p[0])]
    assert by_position == sorted(by_position, key=str.casefold)
    assert "Fewer than 5 cases: not shown" in table
    assert any(
        n < 5 for c in sample.clinicians for n in (c.episodes_assessed, c.alliance_alerts_closed, c.recovery_eligible)
    ), "the fixture should exercise suppression"


def test_key_figures_compare_this_month_with_the_previous(sample: MonthlyReportData, sample_text: str) -> None:
    now, before = sample.trend[-1], sample.trend[-2]
    lines = lines_after(sample_text, "Questionnaires completed")
    values = lines[0].split()[2:]
    change = lines[1].split()
    intervals = lines[2].split()[-2:]
    assert close(values[0], 100 * now.invitations_completed / now.invitations_sent, 0)
    assert close(values[1], 100 * before.invitations_completed / before.invitations_sent, 0)
    assert interval_close(intervals[0], now.invitations_completed, now.invitations_sent, scale=100, digits=0)
    assert interval_close(intervals[1], before.invitations_completed, before.invitations_sent, scale=100, digits=0)
    exact_change = 100 * (
        now.invitations_completed / now.invitations_sent - before.invitations_completed / before.invitations_sent
    )
    assert change[1] == "pts"
    assert close(change[0].lstrip("+"), exact_change, 0)
    sessions = lines_after(sample_text, "Sessions")[0].split()
    assert sessions[1:3] == [format_number(now.sessions), format_number(before.sessions)]


def test_engagement_by_channel_in_the_pdf(sample: MonthlyReportData, sample_text: str) -> None:
    section = sample_text[sample_text.index("Engagement") :]
    for ch in sample.engagement:
        lines = lines_after(section, ch.channel)
        sent, opened, open_rate, completed, completion = lines[0].split()[1:]
        assert (int(sent), int(opened), int(completed)) == (ch.sent, ch.opened, ch.completed)
        assert close(open_rate, 100 * ch.opened / ch.sent, 0)
        assert close(completion, 100 * ch.completed / ch.sent, 0)
        open_iv, completion_iv = lines[1].split()
        assert interval_close(open_iv, ch.opened, ch.sent, scale=100, digits=0)
        assert interval_close(completion_iv, ch.completed, ch.sent, scale=100, digits=0)


def test_report_structure_and_margins(sample: MonthlyReportData, sample_text: str) -> None:
    order = [
        "Key figures",
        "Needs attention at month end",
        "Engagement",
        "Outcomes",
        "Not on track now",
        "Alliance",
        "Workflow",
        "By clinician",
        "Twelve-month trends",
        "Methods",
        "What the evidence says",
    ]
    positions = []
    for heading in order:
        match = re.search(rf"^\s*{re.escape(heading)}\s*$", sample_text, re.M)  # a heading is a line of its own
        assert match, heading
        positions.append(match.start())
    assert positions == sorted(positions)
    pages = sample_text.split("\f")
    pages = [p for p in pages if p.strip()]
    assert all(f"Page {i} of {len(pages)}" in page for i, page in enumerate(pages, start=1))
    assert all(sample.practice_name in page for page in pages)  # title on page 1, running header after
    assert "Eubanks, Muran & Safran (2018)" in sample_text
    for client in sample.not_on_track:
        assert sample_text.count(client.client_code) == 1  # clients only in the not-on-track list


def test_a_new_small_practice_renders(sample: MonthlyReportData, tmp_path: Path) -> None:
    small = sample_monthly_data(2, clinicians=1, not_on_track=0)
    new = dataclasses.replace(small, trend=small.trend[-1:])
    html = render_monthly_html(new)
    assert "no earlier month" in html
    assert "No client is flagged not on track" in html
    pdf = render_monthly_pdf(new)
    path = tmp_path / "small.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    assert new.clinicians[0].name in text


def test_a_large_practice_shows_a_distribution_not_200_bars() -> None:
    data = sample_monthly_data(5, clinicians=200)
    html = render_monthly_html(data)
    assert "Clinicians by completion rate" in html
    assert "Completion rate by clinician" not in html
    assert html == render_monthly_html(data)  # deterministic


# ---------------------------------------------------------------------------------------------------------------
# hostile text in every free-text field


def hostile_copy(obj: Any, payload: str, tags: list[str]) -> Any:
    """Replace every str field (except validated periods) by a tagged payload, recursively."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name == "period":
                continue
            if isinstance(value, str):
                tags.append(f"F{len(tags):03d}")
                changes[f.name] = f"{tags[-1]} {payload}"
            elif isinstance(value, tuple) or dataclasses.is_dataclass(value):
                changes[f.name] = hostile_copy(value, payload, tags)
        return dataclasses.replace(obj, **changes)
    if isinstance(obj, tuple):
        return tuple(hostile_copy(item, payload, tags) for item in obj)
    return obj


@pytest.mark.sockets
def test_hostile_text_everywhere_is_shown_literally_and_fetches_nothing(listener: Any, pdf_inspector: Any) -> None:
    payload = HOSTILE.format(port=listener.port)
    tags: list[str] = []
    data = hostile_copy(sample_monthly_data(SEED), payload, tags)
    names = {c.name for c in data.clinicians}
    assert len(tags) > 100
    assert all(isinstance(c, ClinicianFigures) and c.name.endswith(payload) for c in data.clinicians)
    assert len(names) == len(data.clinicians)

    # The team reports list clients by code; the practice report shows teams instead: between them, every field.
    practice = dataclasses.replace(
        data, list_clients=False, client_lists_in=tuple(sorted({c.team for c in data.clinicians}))
    )
    htmls = [render_monthly_html(data), render_monthly_html(practice)]
    for html in htmls:
        assert "<script" not in html
        assert "<img" not in html
        assert "<link rel=attachment" not in html
        assert html.count("<link") == 1  # our own stylesheet only
        assert 'href="report.css"' in html
    escaped = str(escape(payload))
    for tag in tags:
        assert any(f"{tag} {escaped}" in html for html in htmls), f"{tag} is not in the HTML, escaped"

    texts = []
    for html in htmls:
        fetcher = SafeURLFetcher()
        pdf = render_pdf(html, fetcher=fetcher)
        assert fetcher.refused == []
        assert set(fetcher.served) <= ALLOWED_ASSETS
        assert listener.count() == 0
        assert pdf_inspector.attachments(pdf) == 0
        assert b"root:x:0:0" not in pdf_inspector.all_bytes(pdf)
        text = squash(pdf_inspector.text(pdf, layout=False))
        assert "root:x:0:0" not in text
        assert squash(payload) in text  # the markup is shown as text, literally
        texts.append(text)
    missing = [tag for tag in tags if not any(tag in text for text in texts)]
    assert missing == [], f"free-text fields missing from the PDF: {missing}"
    assert math.isfinite(pdf_inspector.pages(pdf))
