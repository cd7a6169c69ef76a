"""Settings come from the environment once, with clear errors and safe production rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.config import ConfigError, load_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import os

    for key in list(os.environ):
        if key.startswith("RAPPORT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAPPORT_VAR_DIR", str(tmp_path))
    return tmp_path


def test_defaults_are_embedded_and_local(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.database_url == f"sqlite:///{clean_env / 'rapport.sqlite3'}"
    assert settings.broker_url == "filesystem://"
    assert settings.outbox_dir == clean_env / "outbox"
    assert settings.smtp_host is None


def test_secret_key_is_generated_once_into_var(clean_env: Path) -> None:
    first = load_settings().secret_key
    second = load_settings().secret_key
    assert first == second
    assert len(first) >= 32
    assert (clean_env / "secret_key").stat().st_mode & 0o077 == 0


def test_production_refuses_to_start_without_a_real_secret_key(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAPPORT_ENV", "production")
    monkeypatch.setenv("RAPPORT_DATABASE_URL", "postgresql+psycopg://db/rapport")
    with pytest.raises(ConfigError, match="RAPPORT_SECRET_KEY is required"):
        load_settings()
    monkeypatch.setenv("RAPPORT_SECRET_KEY", "short")
    with pytest.raises(ConfigError, match="at least 32"):
        load_settings()
    monkeypatch.setenv("RAPPORT_SECRET_KEY", "x" * 40)
    assert load_settings().is_production


def test_production_refuses_sqlite(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPPORT_ENV", "production")
    monkeypatch.setenv("RAPPORT_SECRET_KEY", "x" * 40)
    with pytest.raises(ConfigError, match="PostgreSQL"):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RAPPORT_SMTP_PORT", "twenty-five", "RAPPORT_SMTP_PORT must be a whole number"),
        ("RAPPORT_TIMEZONE", "Mars/Olympus", "not a known time zone"),
        ("RAPPORT_SMTP_STARTTLS", "maybe", "true or false"),
        ("RAPPORT_SMS_BACKEND", "pigeon", "outbox or webhook"),
    ],
)
def test_malformed_values_name_the_variable(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_redis_broker_also_backs_the_rate_limiter(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPPORT_BROKER_URL", "redis://127.0.0.1:6379/0")
    assert load_settings().ratelimit_storage_url == "redis://127.0.0.1:6379/0"
