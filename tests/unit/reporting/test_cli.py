"""`rapport report monthly` renders in-process, writes the PDF and records the report row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from services import schema
from services.db import Database, reset_databases
from services.reporting.models import Report
from tests.unit.reporting.practice import build_practice
from web.cli import cli


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A database of its own (the CLI opens its own connections), migrated and holding the fixture practice."""
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    database = Database(url)
    schema.upgrade(database.engine)
    with database.unit_of_work() as session:
        build_practice(session)
    database.dispose()
    yield {
        "RAPPORT_ENV": "test",
        "RAPPORT_DATABASE_URL": url,
        "RAPPORT_VAR_DIR": str(tmp_path / "var"),
        "RAPPORT_SECRET_KEY": "x" * 40,
        "RAPPORT_PRACTICE_NAME": "Riverside Test Practice",
        "RAPPORT_BROKER_URL": "memory://",
    }
    reset_databases()


def test_the_cli_writes_a_pdf_and_records_the_row(
    cli_env: dict[str, str], tmp_path: Path, pdf_inspector: object
) -> None:
    out = tmp_path / "october.pdf"
    result = CliRunner().invoke(cli, ["report", "monthly", "--period", "2026-10", "--out", str(out)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF-")
    text = pdf_inspector.text(out.read_bytes())  # type: ignore[attr-defined]
    assert "Riverside Test Practice" in text
    assert "October 2026" in text
    database = Database(cli_env["RAPPORT_DATABASE_URL"])
    with database.session() as session:
        (row,) = session.scalars(select(Report)).all()
        assert (row.scope, row.period, row.status, row.progress) == ("practice", "2026-10", "done", 100)
        assert Path(row.file_path or "").read_bytes() == out.read_bytes()
    database.dispose()
    # Again, for a team: a second row; the same command twice keeps one row per scope and period.
    for _ in range(2):
        result = CliRunner().invoke(cli, ["report", "monthly", "--period", "2026-10", "--scope", "team:1"], env=cli_env)
        assert result.exit_code == 0, result.output
    database = Database(cli_env["RAPPORT_DATABASE_URL"])
    with database.session() as session:
        assert sorted(r.scope for r in session.scalars(select(Report))) == ["practice", "team:1"]
    database.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "2026-13"], "period"),
        (["--period", "Oct"], "YYYY-MM"),
        (["--period", "2026-10", "--scope", "team:x"], "scope must be"),
        (["--period", "2026-10", "--scope", "team:999"], "no team with id 999"),
    ],
)
def test_the_cli_refuses_bad_input_clearly(cli_env: dict[str, str], args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["report", "monthly", *args], env=cli_env)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
