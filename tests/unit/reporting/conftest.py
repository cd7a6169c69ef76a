"""Fixtures for the reporting tests: the fixture practice, report settings, and the PDF tools of tests/unit/reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from services.config import Settings
from tests.conftest import build_settings
from tests.unit.reporting.practice import Practice, build_practice
from tests.unit.reports.conftest import PdfInspector, listener  # noqa: F401 - the shared listener fixture
from tests.unit.web.conftest import _quick_argon2, signed_in, staff  # noqa: F401 - the web tests' fixtures


@pytest.fixture
def report_settings(tmp_path: Path, test_settings: Settings) -> Settings:
    """Settings with a reports folder of the test's own."""
    return build_settings(
        tmp_path / "var",
        database_url=test_settings.database_url,
        practice_name="Riverside Test Practice",
        timezone="Europe/London",
    )


@pytest.fixture
def practice(session: Session) -> Practice:
    """The fixture practice, written in the test's transaction."""
    return build_practice(session)


@pytest.fixture
def pdf_inspector(tmp_path: Path) -> PdfInspector:
    """Poppler-based PDF inspection."""
    return PdfInspector(tmp_path)


@pytest.fixture
def pdftotext(tmp_path: Path) -> Any:
    """A function from PDF bytes to its text layer (pdftotext -layout)."""
    inspector = PdfInspector(tmp_path)
    return lambda pdf, layout=True: inspector.text(pdf, layout=layout)
