"""Translations (English, Spanish) and dates shown in the practice's time zone."""

from __future__ import annotations

from datetime import date, datetime

from babel import dates as babel_dates
from flask import Flask, request
from flask_babel import Babel, get_locale

from web.app import current_settings
from web.login import loaded_staff

LANGUAGES = ("en", "es")
DASH = "\u2013"


def select_locale() -> str:
    """The language the signed-in user chose, else the browser's preference, else English."""
    staff = loaded_staff()
    chosen = staff.account.language_choice if staff is not None else None
    if chosen is not None and chosen in LANGUAGES:
        return chosen
    return browser_language()


def browser_language() -> str:
    """The best of our languages for the browser's Accept-Language, else English."""
    return request.accept_languages.best_match(LANGUAGES) or "en"


def select_timezone() -> str:
    """Every page shows times in the practice's time zone."""
    return current_settings().timezone


def local_datetime(value: datetime | None, time_format: str = "short") -> str:
    """A UTC timestamp as a date and time in the practice's zone, formatted for the current language."""
    if value is None:
        return DASH
    local = value.astimezone(current_settings().tz)
    locale = get_locale()
    day = babel_dates.format_date(local.date(), "medium", locale=locale)
    clock = babel_dates.format_time(local.time(), time_format, locale=locale)
    return f"{day}, {clock}"


def local_date(value: date | datetime | None) -> str:
    """A date (or the practice-local date of a timestamp), formatted for the current language."""
    if value is None:
        return DASH
    if isinstance(value, datetime):
        value = value.astimezone(current_settings().tz).date()
    return babel_dates.format_date(value, "medium", locale=get_locale())


def init_app(app: Flask) -> None:
    """Attach Flask-Babel and the date filters."""
    Babel(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.filters["local_datetime"] = local_datetime
    app.jinja_env.filters["local_date"] = local_date
