"""Translations (English, Spanish) and dates shown in the practice's time zone."""

from __future__ import annotations

from datetime import date, datetime, time

from babel import dates as babel_dates
from flask import Flask, request
from flask_babel import Babel, format_decimal, get_locale, get_translations

from services.i18n import Message, Translator
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


def local_date(value: date | datetime | str | None) -> str:
    """A date (or the practice-local date of a timestamp, or an ISO date), formatted for the current language."""
    if value is None:
        return DASH
    if isinstance(value, str):
        value = date.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.astimezone(current_settings().tz).date()
    return babel_dates.format_date(value, "medium", locale=get_locale())


def local_month(period: str) -> str:
    """A "YYYY-MM" period as the current language names it ("October 2026", "octubre de 2026")."""
    try:
        year, month = (int(part) for part in period.split("-", 1))
        first = date(year, month, 1)
    except ValueError:
        return period
    return babel_dates.format_skeleton("yMMMM", first, locale=get_locale())


def local_time(value: time) -> str:
    """A practice-local time of day (such as a digest's 08:00) on the current language's clock."""
    return babel_dates.format_time(value, "short", locale=get_locale())


def local_clock(value: datetime | None) -> str:
    """A UTC timestamp as the practice-local time of day only (today's sessions)."""
    if value is None:
        return DASH
    return babel_dates.format_time(value.astimezone(current_settings().tz).time(), "short", locale=get_locale())


def _gettext(msgid: str) -> str:
    return str(get_translations().ugettext(msgid))


def _ngettext(singular: str, plural: str, num: int) -> str:
    # the catalog's form only: flask_babel.ngettext would fill %(num)d itself and fail on the other placeholders
    return str(get_translations().ungettext(singular, plural, num))


_TRANSLATOR = Translator(_gettext, _ngettext)


def translator() -> Translator:
    """A Translator into the current request's language (for reports.charts and services' Messages)."""
    return _TRANSLATOR


def translate(message: Message | str | Exception) -> str:
    """A service's message (a Message, a UserError, or a marked msgid) in the reader's language."""
    found = getattr(message, "message", None) if isinstance(message, Exception) else message
    if isinstance(found, Message | str):
        return _TRANSLATOR(found)
    return _TRANSLATOR(str(message))


def local_number(value: float) -> str:
    """A setting's number in the reader's locale (2.5 reads "2,5" in Spanish), without a trailing ".0"."""
    return str(format_decimal(value, format="#,##0.##"))


def init_app(app: Flask) -> None:
    """Attach Flask-Babel and the date filters."""
    Babel(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.filters["local_datetime"] = local_datetime
    app.jinja_env.filters["local_date"] = local_date
    app.jinja_env.filters["local_month"] = local_month
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["local_clock"] = local_clock
    app.jinja_env.filters["translate"] = translate
    app.jinja_env.filters["number"] = local_number
