"""Hostile text in every free-text field of the data model: the PDF shows it as text, fetches nothing, leaks nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from markupsafe import escape
from sqlalchemy.orm import Session

from reports.assemble import render_monthly_report
from reports.pdf import SafeURLFetcher
from services.config import Settings
from services.reporting.periods import ReportScope
from tests.unit.reporting.practice import NOW, PERIOD, Texts, build_practice

HOSTILE = (
    '<script>alert(1)</script><img src="file:///etc/passwd"> '
    "url(http://127.0.0.1:{port}/x) @import url(http://127.0.0.1:{port}/y); "
    '<link rel=attachment href="file:///etc/passwd"><style>@import "http://127.0.0.1:{port}/z";</style>'
)


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.sockets
def test_hostile_text_in_every_free_text_field_is_inert(
    session: Session, report_settings: Settings, listener: Any, pdf_inspector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = HOSTILE.format(port=listener.port)
    texts = Texts(
        practice=f"F-PRACTICE {payload}",
        team=f" F-TEAM {payload}",
        clinician=f" F-CLIN {payload}",
        client_name=f" F-NAME {payload}",
        client_code=f" F-CODE {payload}",
        goal=f" F-GOAL {payload}",
        free_text=f" F-FREE {payload}",
        action=f" F-ACTION {payload}",
        review_note=f" F-REVIEW {payload}",
        component=f" F-COMP {payload}",
    )
    practice = build_practice(session, texts=texts)
    settings = report_settings.with_overrides(practice_name=texts.practice)
    fetchers: list[SafeURLFetcher] = []
    original = SafeURLFetcher.__init__

    def recording(self: SafeURLFetcher, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        fetchers.append(self)

    monkeypatch.setattr(SafeURLFetcher, "__init__", recording)
    scopes = [
        ReportScope("practice"),
        ReportScope("team", practice.teams["North"].id),
        ReportScope("clinician", practice.clinicians[0].id),
    ]
    for scope in scopes:
        rendered = render_monthly_report(session, settings, scope, PERIOD, now=NOW)
        html = rendered.html
        assert "<script" not in html
        assert "<img" not in html
        assert "<link rel=attachment" not in html
        assert html.count("<link") == 1
        assert "<style>@import" not in html
        pdf = rendered.pdf
        assert pdf_inspector.attachments(pdf) == 0
        assert b"root:x:0:0" not in pdf_inspector.all_bytes(pdf)
        text = pdf_inspector.text(pdf, layout=False)
        assert "root:x:0:0" not in text
        flat = squash(text)
        # Headings and titles hold the whole payload on their own lines; table cells wrap it around their
        # neighbours in the text layer, so for those the tag and the literal markup are looked for separately.
        for tag in ["F-PRACTICE"] + (["F-TEAM"] if scope.kind == "team" else []):
            assert squash(f"{tag} {payload}") in flat, (scope, tag)
        # The practice report names teams (in its table and where the client lists are) and lists no client code.
        shown = ["F-CLIN", "F-TEAM"] if scope.kind == "practice" else ["F-CLIN", "F-CODE"]
        for tag in shown:
            assert f"{tag} {escape(payload)}" in html, (scope, tag)  # escaped in the HTML
            assert tag in text, (scope, tag)
        if scope.kind == "practice":
            assert "F-CODE" not in text
        assert "<script>alert(1)</script>" in text
        for tag in ("F-NAME", "F-GOAL", "F-FREE", "F-ACTION", "F-REVIEW"):
            assert tag not in text, (scope, tag)  # never in a report at all
    assert listener.count() == 0
    assert fetchers, "the renderer did not go through the safe fetcher"
    for fetcher in fetchers:
        assert fetcher.refused == []
        assert all(name == "report.css" or name.startswith("fonts/") for name in fetcher.served)
