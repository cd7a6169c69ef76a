"""API tokens expire, carry a read or write scope, can be revoked (page and command line), and note their last use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from services import schema
from services.accounts.models import ApiToken, User
from services.accounts.operations import AccountError, authenticate_api_token, create_api_token, token_digest
from services.audit.models import AuditEvent
from services.db import Database, reset_databases, utcnow
from tests.factories import make_user
from tests.unit.web.conftest import post_form
from web.cli import cli


def _row(session: Session, raw: str) -> ApiToken:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(raw)))
    assert token is not None
    return token


def _bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def test_a_token_expires_after_its_days(client: FlaskClient, staff: Callable[..., User], session: Session) -> None:
    user = staff("front_desk")
    raw = create_api_token(session, user=user, expires_days=30)
    token = _row(session, raw)
    assert timedelta(days=29, hours=23) < token.expires_at - token.created_at <= timedelta(days=30)
    assert client.get("/api/v1/me", headers=_bearer(raw)).status_code == 200
    token.expires_at = utcnow() - timedelta(seconds=1)
    session.flush()
    response = client.get("/api/v1/me", headers=_bearer(raw))
    assert response.status_code == 401
    assert response.is_json
    assert response.json["error"]["status"] == 401
    assert "expired" in response.json["error"]["detail"]


def test_the_default_lifetime_is_ninety_days(session: Session) -> None:
    token = _row(session, create_api_token(session, user=make_user(session)))
    assert token.expires_at - token.created_at == timedelta(days=90)
    with pytest.raises(AccountError):
        create_api_token(session, user=make_user(session), expires_days=0)
    with pytest.raises(AccountError):
        create_api_token(session, user=make_user(session), scope="admin")


def test_a_read_token_cannot_write(client: FlaskClient, staff: Callable[..., User], session: Session) -> None:
    user = staff("front_desk")
    reader = create_api_token(session, user=user, scope="read")
    writer = create_api_token(session, user=user, scope="write")
    body = {"first_name": "Rea", "last_name": "Donly", "email": "rea@example.test", "consent_email": True}
    assert client.get("/api/v1/me", headers=_bearer(reader)).status_code == 200
    refused = client.post("/api/v1/clients", json=body, headers=_bearer(reader))
    assert refused.status_code == 403
    assert refused.is_json
    assert "only read" in refused.json["error"]["detail"]
    assert client.post("/api/v1/clients", json=body, headers=_bearer(writer)).status_code == 201


def test_last_use_is_written_at_most_once_a_minute(session: Session) -> None:
    raw = create_api_token(session, user=make_user(session))
    token = _row(session, raw)
    now = utcnow()
    authenticate_api_token(session, raw, now=now)
    assert token.last_used_at == now
    authenticate_api_token(session, raw, now=now + timedelta(seconds=30))
    assert token.last_used_at == now  # not rewritten within the minute
    later = now + timedelta(seconds=61)
    authenticate_api_token(session, raw, now=later)
    assert token.last_used_at == later


def test_the_admin_page_lists_and_revokes_tokens(
    client: FlaskClient, signed_in: Callable[..., User], staff: Callable[..., User], session: Session
) -> None:
    admin = signed_in("admin")
    owner = staff("clinician", name="Toke Nowner")
    raw = create_api_token(session, user=owner, name="scheduler sync", scope="read")
    token = _row(session, raw)
    page = client.get("/admin/api-tokens").get_data(as_text=True)
    assert "scheduler sync" in page
    assert "Toke Nowner" in page
    assert token.prefix in page
    assert raw not in page  # never the token itself
    response = post_form(client, f"/admin/api-tokens/{token.id}/revoke", page="/admin/api-tokens")
    assert response.status_code == 303
    session.expire_all()
    assert _row(session, raw).revoked_at is not None
    assert _row(session, raw).revoked_by_id == admin.id
    revoked = client.get("/api/v1/me", headers=_bearer(raw))
    assert revoked.status_code == 401
    assert "revoked" in revoked.json["error"]["detail"]
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "api_token_revoked"))


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    database = Database(url)
    schema.upgrade(database.engine)
    database.dispose()
    yield {
        "RAPPORT_ENV": "test",
        "RAPPORT_DATABASE_URL": url,
        "RAPPORT_VAR_DIR": str(tmp_path / "var"),
        "RAPPORT_SECRET_KEY": "x" * 40,
        "RAPPORT_BROKER_URL": "memory://",
    }
    reset_databases()


def test_the_command_line_creates_and_revokes_tokens(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    database = Database(cli_env["RAPPORT_DATABASE_URL"])
    with database.unit_of_work() as session:
        make_user(session, role="front_desk", email="desk@example.test")
    made = runner.invoke(
        cli,
        ["api-token", "create", "--email", "desk@example.test", "--scope", "write", "--expires-days", "7"],
        env=cli_env,
    )
    assert made.exit_code == 0, made.output
    raw = made.stdout.strip().splitlines()[-1]
    assert raw.startswith("rpt_")
    default = runner.invoke(cli, ["api-token", "create", "--email", "desk@example.test"], env=cli_env)
    default_raw = default.stdout.strip().splitlines()[-1]
    with database.unit_of_work() as session:
        token = _row(session, raw)
        assert token.scope == "write"
        assert token.expires_at - token.created_at == timedelta(days=7)
        assert _row(session, default_raw).scope == "read"  # least privilege unless asked
        token_id = token.id
    assert runner.invoke(cli, ["api-token", "revoke", raw[:14]], env=cli_env).exit_code == 0
    again = runner.invoke(cli, ["api-token", "revoke", str(token_id)], env=cli_env)
    assert "already revoked" in again.output
    unknown = runner.invoke(cli, ["api-token", "revoke", "rpt_nothing-like-it"], env=cli_env)
    assert unknown.exit_code != 0
    with database.unit_of_work() as session:
        assert _row(session, raw).revoked_at is not None
        assert _row(session, default_raw).revoked_at is None
        assert isinstance(authenticate_api_token(session, raw), str)
    database.dispose()
