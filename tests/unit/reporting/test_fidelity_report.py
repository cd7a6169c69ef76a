"""The monthly PDF's "Was the feedback used?" section, from the hand-counted fixture of test_fidelity."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy.orm import Session

from reports.assemble import render_monthly_report
from reports.monthly import wilson_interval
from services.config import Settings
from services.reporting.periods import ReportScope
from tests.unit.reporting.test_fidelity import NOW, build_world


def test_the_pdf_has_the_fidelity_section_with_intervals_suppression_and_methods(
    session: Session, report_settings: Settings, pdftotext: Callable[..., str]
) -> None:
    world = build_world(session)
    rendered = render_monthly_report(session, report_settings, ReportScope("practice"), "2026-10", now=NOW)
    figures = rendered.data.fidelity
    assert figures is not None
    assert (figures.total.administrations, figures.total.viewed) == (6, 4)
    text = re.sub(r"[ \t]+", " ", pdftotext(rendered.pdf))
    start = text.index("Was the feedback used?")  # the section (the Methods page defines it again later)
    section = text[start : text.index("By team and clinician", start)]
    # The scope's figure: 4 of 6 answers opened before the next session, 67% with its 95% Wilson interval.
    interval = wilson_interval(4, 6)
    assert "67%" in section
    assert f"{round(interval.lo * 100)}" in section
    assert f"{round(interval.hi * 100)}%" in section
    assert "of 6 answers with a next session" in section
    # By clinician: A's 3 of 5 is shown; B's 1 answer is fewer than 5 cases (withheld, marked *). The briefs, alert
    # and risk columns are withheld for both (4, 4 and 2 cases at most), so they are left out with a sentence.
    rows = {line.split()[0] + " " + line.split()[1]: line for line in section.splitlines() if line.count(" ") > 1}
    a_row = next(line for key, line in rows.items() if line.strip().startswith(world["a"].name))
    b_row = next(line for key, line in rows.items() if line.strip().startswith(world["b"].name))
    assert "60%" in a_row
    assert "\u2013*" in b_row.replace(" ", "")  # a dash marked *
    note = " ".join(section.split())
    assert "Not shown by clinician this month" in note
    assert "Briefs discussed, Alerts acted on, Risk alerts in the window" in note
    assert "Fewer than 5 cases" in note
    # Every figure is defined on the Methods page (read from the HTML: the PDF's two columns interleave in text).
    methods_html = rendered.html[rendered.html.index('id="methods"') :]
    for term in (
        "Feedback viewed before the next session",
        "Briefs discussed",
        "Alerts acted on",
        "Risk alerts in the window",
    ):
        assert f"{term}:" in methods_html, term
    assert "audit trail" in methods_html
    assert text.count("Was the feedback used?") == 2  # the section and its definition
