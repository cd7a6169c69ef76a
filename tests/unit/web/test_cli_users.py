"""`rapport user set|deactivate|reactivate|reset-password` on a database of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from services import schema
from services.accounts.models import LoginSession, PasswordReset, User
from services.accounts.operations import authenticate, create_user, get_or_create_team
from services.accounts.passwords import verify_password
from services.audit.models import AuditEvent
from services.db import Database, reset_databases
from services.notifications.models import Notification
from tests.factories import PASSWORD
from web.cli import cli

EMAIL = "pat.clinician@example.test"


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A migrated database with an admin, a clinician (signed in once) and two teams."""
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    database = Database(url)
    schema.upgrade(database.engine)
    with database.unit_of_work() as session:
        create_user(session, email="admin@example.test", password=PASSWORD, role="admin")
        create_user(session, email=EMAIL, password=PASSWORD, role="clinician", name="Pat Clinician", team="North")
        get_or_create_team(session, "South")
        assert authenticate(session, email=EMAIL, password=PASSWORD) is not None
    database.dispose()
    yield {
        "RAPPORT_ENV": "test",
        "RAPPORT_DATABASE_URL": url,
        "RAPPORT_VAR_DIR": str(tmp_path / "var"),
        "RAPPORT_SECRET_KEY": "x" * 40,
        "RAPPORT_BROKER_URL": "memory://",
    }
    reset_databases()


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["user", *args], env=env, input=stdin)


def _read(env: dict[str, str]) -> tuple[User, list[LoginSession], list[AuditEvent], list[Notification]]:
    database = Database(env["RAPPORT_DATABASE_URL"])
    with database.session() as session:
        user = session.scalars(select(User).where(User.email == EMAIL)).one()
        _ = user.team
        sessions = list(session.scalars(select(LoginSession).where(LoginSession.user_id == user.id)))
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.subject_id == user.id)))
        notes = list(session.scalars(select(Notification).where(Notification.recipient_user_id == user.id)))
        session.expunge_all()
    database.dispose()
    return user, sessions, events, notes


def test_user_set_changes_role_team_language_and_name_and_audits(cli_env: dict[str, str]) -> None:
    result = _run(
        cli_env,
        "set",
        "--email",
        EMAIL.upper(),
        "--role",
        "supervisor",
        "--team",
        "South",
        "--language",
        "es",
        "--name",
        "Pat Supervisor",
    )
    assert result.exit_code == 0, result.output
    assert "role clinician -> supervisor" in result.output
    user, _, events, _ = _read(cli_env)
    assert (user.role, user.language_choice, user.name) == ("supervisor", "es", "Pat Supervisor")
    assert user.team is not None
    assert user.team.name == "South"
    (event,) = [e for e in events if e.action == "user_updated"]
    assert (event.actor_id, event.actor_label) == (None, "cli")
    # "" clears the team and the language choice.
    assert _run(cli_env, "set", "--email", EMAIL, "--team", "", "--language", "").exit_code == 0
    user, *_ = _read(cli_env)
    assert (user.team_id, user.language_choice) == (None, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "--email", "nobody@example.test", "--role", "admin"], "no user with email nobody@example.test"),
        (["set", "--email", EMAIL, "--role", "wizard"], "Unknown role 'wizard'"),
        (["set", "--email", EMAIL, "--team", "Atlantis"], "There is no team called 'Atlantis' (teams: North, South)"),
        (["set", "--email", EMAIL, "--language", "fr"], "Unknown language 'fr'; choose one of: en, es"),
        (["set", "--email", EMAIL], "nothing to change"),
        (["set", "--email", "admin@example.test", "--role", "manager"], "only active administrator"),
        (["deactivate", "--email", "admin@example.test"], "only active administrator"),
        (["deactivate", "--email", "nobody@example.test"], "no user with email"),
        (["reactivate", "--email", "nobody@example.test"], "no user with email"),
        (["reset-password", "--email", "nobody@example.test"], "no user with email"),
    ],
)
def test_bad_input_is_refused_clearly_with_a_non_zero_exit(
    cli_env: dict[str, str], args: list[str], message: str
) -> None:
    result = _run(cli_env, *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    user, _, events, _ = _read(cli_env)
    assert user.role == "clinician"
    assert [e for e in events if e.action == "user_updated"] == []


def test_deactivate_ends_sessions_and_reactivate_restores_sign_in(cli_env: dict[str, str]) -> None:
    result = _run(cli_env, "deactivate", "--email", EMAIL)
    assert result.exit_code == 0, result.output
    assert "deactivated" in result.output
    user, sessions, events, _ = _read(cli_env)
    assert user.active is False
    assert [s.end_reason for s in sessions] == ["deactivated"]
    assert [e.action for e in events][-1] == "user_deactivated"
    assert "already deactivated" in _run(cli_env, "deactivate", "--email", EMAIL).output
    assert _run(cli_env, "reactivate", "--email", EMAIL).exit_code == 0
    user, _, events, _ = _read(cli_env)
    assert user.active is True
    assert events[-1].action == "user_reactivated"


def test_reset_password_sends_a_link_or_sets_the_password_from_stdin(cli_env: dict[str, str]) -> None:
    result = _run(cli_env, "reset-password", "--email", EMAIL)
    assert result.exit_code == 0, result.output
    assert "reset link is queued" in result.output
    _, _, events, notes = _read(cli_env)
    assert [(n.template, n.to_address, n.status) for n in notes] == [("password_reset", EMAIL, "pending")]
    assert (events[-1].action, events[-1].actor_label, events[-1].detail) == (
        "password_reset_requested",
        "cli",
        {"result": "queued"},
    )

    weak = _run(cli_env, "reset-password", "--email", EMAIL, "--password-stdin", stdin="short\n")
    assert weak.exit_code != 0
    assert "at least 12 characters" in weak.output
    result = _run(cli_env, "reset-password", "--email", EMAIL, "--password-stdin", stdin="a new long password\n")
    assert result.exit_code == 0, result.output
    user, sessions, events, _ = _read(cli_env)
    assert verify_password(user.password_hash, "a new long password")
    assert [s.end_reason for s in sessions] == ["password_changed"]
    assert events[-1].action == "password_set"
    database = Database(cli_env["RAPPORT_DATABASE_URL"])
    with database.session() as session:
        (reset,) = session.scalars(select(PasswordReset)).all()
        assert reset.revoked_at is not None  # the emailed link died with the new password
    database.dispose()


def test_reset_two_step_removes_the_authenticator_and_is_audited(cli_env: dict[str, str]) -> None:
    from datetime import UTC, datetime, timedelta

    import pyotp

    from services.accounts.models import TwoFactor
    from services.accounts.two_factor import confirm_enrolment, decrypt_secret, is_enrolled, start_enrolment

    key = cli_env["RAPPORT_SECRET_KEY"]
    database = Database(cli_env["RAPPORT_DATABASE_URL"])
    with database.unit_of_work() as session:
        user = session.scalars(select(User).where(User.email == EMAIL)).one()
        start_enrolment(session, user, secret_key=key)
        row = session.get(TwoFactor, user.id)
        assert row is not None
        totp = pyotp.TOTP(decrypt_secret(key, row.secret_encrypted) or "")
        now = datetime.now(UTC)
        confirm_enrolment(session, user, totp.at(now - timedelta(seconds=30)), secret_key=key, now=now)
    database.dispose()

    result = _run(cli_env, "reset-two-step", "--email", EMAIL)
    assert result.exit_code == 0, result.output
    assert "two-step sign-in reset" in result.output
    user, sessions, events, _ = _read(cli_env)
    assert events[-1].action == "two_factor_reset"
    assert events[-1].actor_label == "cli"
    assert events[-1].detail == {"was_enrolled": True, "sessions_ended": 1}
    assert [s.end_reason for s in sessions] == ["two_factor_reset"]
    database = Database(cli_env["RAPPORT_DATABASE_URL"])
    with database.session() as session:
        assert not is_enrolled(session, user.id)
    database.dispose()
    again = _run(cli_env, "reset-two-step", "--email", EMAIL)
    assert again.exit_code == 0
    assert "no two-step sign-in to reset" in again.output
