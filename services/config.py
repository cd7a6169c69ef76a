"""One typed Settings object, read once from the environment."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.clients.phones import is_region

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _str(name: str, default: str) -> str:
    return _env(name) or default


def _int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _float(name: str, default: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


# Policy values owned by a domain package (which parses and validates them), passed through as text.
# Environment variable RAPPORT_<KEY upper-cased> fills Settings.extra[key].
EXTRA_KEYS = (
    "invite_lead_hours",
    "reminder_after_hours",
    "invite_expiry_hours",
    "kiosk_expiry_minutes",
    "import_timeout_seconds",
    "import_max_bytes",
    "import_allow_private_urls",
    "review_due_policy",
    "review_due_time",
    "review_reminder_hours",
    "review_slot_lead_hours",
    "practice_holidays",
    "partnership_rotating_element",
)


@dataclass(frozen=True)
class Settings:
    """Every setting Rapport reads, with local-friendly defaults."""

    env: str = "development"
    var_dir: Path = PROJECT_ROOT / "var"
    database_url: str = ""
    broker_url: str = ""
    result_backend: str | None = None
    secret_key: str = ""
    base_url: str = "http://127.0.0.1:5000"
    practice_name: str = "Rapport demo practice"
    timezone: str = "Europe/London"
    # Region (ISO 3166 code) a phone number without a country code is read in; GB matches Europe/London.
    phone_region: str = "GB"
    # mail
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "Rapport <no-reply@rapport.invalid>"
    # sms
    sms_backend: str = "outbox"  # outbox | webhook
    sms_webhook_url: str | None = None
    sms_webhook_secret: str | None = None
    # security and sessions
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12  # a login session ends this long after sign-in, however active
    login_rate_limit: str = "10 per minute;50 per hour"
    token_rate_limit: str = "30 per minute"  # noqa: S105 - a rate, not a secret
    ratelimit_storage_url: str = "memory://"
    # How many reverse proxies in front of the web server set X-Forwarded-For/-Proto (0: none, trust no header).
    trusted_proxies: int = 0
    # workflow policy
    risk_window_minutes: int = 60
    ack_window_hours: int = 48
    review_due_business_days: int = 5
    reconcile_grace_seconds: int = 30
    max_attempts: int = 5
    # celery
    broker_polling_interval: float = 0.2
    task_soft_time_limit: int = 60
    task_time_limit: int = 90
    report_soft_time_limit: int = 600
    report_time_limit: int = 900
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        """True when running as a real deployment."""
        return self.env == "production"

    @property
    def tz(self) -> ZoneInfo:
        """The practice's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def broker_dir(self) -> Path:
        """Folder of the embedded filesystem broker."""
        return self.var_dir / "broker"

    @property
    def outbox_dir(self) -> Path:
        """Folder where messages land when no SMTP or SMS gateway is configured."""
        return self.var_dir / "outbox"

    @property
    def reports_dir(self) -> Path:
        """Folder where rendered PDF reports are stored."""
        return self.var_dir / "reports"

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some values replaced (tests and tools)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def _secret_key(env: str, var_dir: Path) -> str:
    key = _env("RAPPORT_SECRET_KEY")
    if key:
        if env == "production" and len(key) < 32:
            raise ConfigError("RAPPORT_SECRET_KEY must be at least 32 characters in production")
        return key
    if env == "production":
        raise ConfigError("RAPPORT_SECRET_KEY is required in production (at least 32 random characters)")
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def load_settings() -> Settings:
    """Read the environment once into Settings, failing with a clear message."""
    env = _env("RAPPORT_ENV", "development") or "development"
    if env not in {"development", "production", "test"}:
        raise ConfigError(f"RAPPORT_ENV must be development, production or test, got {env!r}")
    var_dir = Path(_env("RAPPORT_VAR_DIR", str(PROJECT_ROOT / "var")) or "var").resolve()
    database_url = _env("RAPPORT_DATABASE_URL") or f"sqlite:///{var_dir / 'rapport.sqlite3'}"
    broker_url = _env("RAPPORT_BROKER_URL") or "filesystem://"
    if env == "production" and database_url.startswith("sqlite"):
        raise ConfigError("RAPPORT_DATABASE_URL must point at PostgreSQL in production")
    timezone = _env("RAPPORT_TIMEZONE", "Europe/London") or "Europe/London"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"RAPPORT_TIMEZONE is not a known time zone: {timezone!r}") from None
    phone_region = (_env("RAPPORT_PHONE_REGION", "GB") or "GB").upper()
    if not is_region(phone_region):
        raise ConfigError(f"RAPPORT_PHONE_REGION is not a region code such as GB, ES or US: {phone_region!r}")
    defaults = Settings()
    settings = Settings(
        env=env,
        var_dir=var_dir,
        database_url=database_url,
        broker_url=broker_url,
        result_backend=_env("RAPPORT_RESULT_BACKEND"),
        secret_key=_secret_key(env, var_dir),
        base_url=(_env("RAPPORT_BASE_URL", defaults.base_url) or defaults.base_url).rstrip("/"),
        practice_name=_env("RAPPORT_PRACTICE_NAME", defaults.practice_name) or defaults.practice_name,
        timezone=timezone,
        phone_region=phone_region,
        smtp_host=_env("RAPPORT_SMTP_HOST"),
        smtp_port=_int("RAPPORT_SMTP_PORT", defaults.smtp_port),
        smtp_user=_env("RAPPORT_SMTP_USER"),
        smtp_password=_env("RAPPORT_SMTP_PASSWORD"),
        smtp_starttls=_bool("RAPPORT_SMTP_STARTTLS", defaults.smtp_starttls),
        mail_from=_env("RAPPORT_MAIL_FROM", defaults.mail_from) or defaults.mail_from,
        sms_backend=_env("RAPPORT_SMS_BACKEND", defaults.sms_backend) or defaults.sms_backend,
        sms_webhook_url=_env("RAPPORT_SMS_WEBHOOK_URL"),
        sms_webhook_secret=_env("RAPPORT_SMS_WEBHOOK_SECRET"),
        session_idle_minutes=_int("RAPPORT_SESSION_IDLE_MINUTES", defaults.session_idle_minutes),
        session_absolute_hours=_int("RAPPORT_SESSION_ABSOLUTE_HOURS", defaults.session_absolute_hours),
        login_rate_limit=_env("RAPPORT_LOGIN_RATE_LIMIT", defaults.login_rate_limit) or defaults.login_rate_limit,
        token_rate_limit=_env("RAPPORT_TOKEN_RATE_LIMIT", defaults.token_rate_limit) or defaults.token_rate_limit,
        ratelimit_storage_url=_env("RAPPORT_RATELIMIT_STORAGE_URL")
        or (broker_url if broker_url.startswith("redis") else "memory://"),
        trusted_proxies=_int("RAPPORT_TRUSTED_PROXIES", defaults.trusted_proxies),
        risk_window_minutes=_int("RAPPORT_RISK_WINDOW_MINUTES", defaults.risk_window_minutes),
        ack_window_hours=_int("RAPPORT_ACK_WINDOW_HOURS", defaults.ack_window_hours),
        review_due_business_days=_int("RAPPORT_REVIEW_DUE_BUSINESS_DAYS", defaults.review_due_business_days),
        reconcile_grace_seconds=_int("RAPPORT_RECONCILE_GRACE_SECONDS", defaults.reconcile_grace_seconds),
        max_attempts=_int("RAPPORT_MAX_ATTEMPTS", defaults.max_attempts),
        broker_polling_interval=_float("RAPPORT_BROKER_POLLING_INTERVAL", defaults.broker_polling_interval),
        extra={key: value for key in EXTRA_KEYS if (value := _env(f"RAPPORT_{key.upper()}")) is not None},
    )
    if not 0 <= settings.trusted_proxies <= 5:
        raise ConfigError(
            f"RAPPORT_TRUSTED_PROXIES must be 0 to 5 (proxies in front of Rapport), got {settings.trusted_proxies}"
        )
    if settings.sms_backend not in {"outbox", "webhook"}:
        raise ConfigError(f"RAPPORT_SMS_BACKEND must be outbox or webhook, got {settings.sms_backend!r}")
    if settings.sms_backend == "webhook" and not (settings.sms_webhook_url and settings.sms_webhook_secret):
        raise ConfigError("RAPPORT_SMS_WEBHOOK_URL and RAPPORT_SMS_WEBHOOK_SECRET are required for the webhook backend")
    return settings


def settings_fields() -> list[str]:
    """Names of all settings (for documentation and diagnostics)."""
    return [f.name for f in fields(Settings)]
