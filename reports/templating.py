"""The Jinja environment for report and chart templates (autoescaped) and the number filters they use."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

DASH = "\u2013"  # en dash: ranges and "no value"
MINUS = "\u2212"
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _check_finite(value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"cannot format a non-finite number: {value!r}")


def format_number(value: float | None, digits: int = 0) -> str:
    """Format a number with thousands separators and a true minus sign; None becomes a dash."""
    if value is None:
        return DASH
    _check_finite(value)
    text = f"{value:,.{digits}f}"
    if text.startswith("-"):
        # "-0" after rounding is zero, not a negative number
        text = text[1:] if float(text[1:].replace(",", "")) == 0 else MINUS + text[1:]
    return text


def format_percent(fraction: float | None, digits: int = 0) -> str:
    """Format a fraction (0.25) as a percentage ("25%"); None becomes a dash."""
    if fraction is None:
        return DASH
    return format_number(fraction * 100, digits) + "%"


def format_interval(bounds: Sequence[float] | None, digits: int = 0, *, percent: bool = True) -> str:
    """Format an interval (lo, hi) as "48-74%" (fractions, percent=True) or "2.1-3.4", with an en dash."""
    if bounds is None:
        return ""
    lo, hi = bounds
    if percent:
        return f"{format_number(lo * 100, digits)}{DASH}{format_number(hi * 100, digits)}%"
    return f"{format_number(lo, digits)}{DASH}{format_number(hi, digits)}"


def format_signed(value: float | None, digits: int = 0, unit: str = "") -> str:
    """Format a change with its sign ("+3", "-2.5" with a true minus, "0"); None becomes a dash."""
    if value is None:
        return DASH
    text = format_number(value, digits)
    if text.replace("0", "").replace(".", "").replace(",", "") and not text.startswith(MINUS):
        text = "+" + text
    return f"{text}{unit}"


def format_hours(hours: float | None) -> str:
    """Format a duration given in hours: minutes under one hour, hours under two days, else days."""
    if hours is None:
        return DASH
    _check_finite(hours)
    if hours < 0:
        raise ValueError("a duration cannot be negative")
    if hours < 1:
        return f"{format_number(hours * 60)} min"
    if hours < 48:
        return f"{format_number(hours, 1)} h"
    return f"{format_number(hours / 24, 1)} d"


def parse_period(period: str) -> tuple[int, int]:
    """Split "YYYY-MM" into (year, month), refusing anything else."""
    year_text, sep, month_text = period.partition("-")
    if sep != "-" or len(year_text) != 4 or len(month_text) != 2 or not (year_text + month_text).isdigit():
        raise ValueError(f"period must look like YYYY-MM, got {period!r}")
    year, month = int(year_text), int(month_text)
    if not 1 <= month <= 12:
        raise ValueError(f"period month out of range: {period!r}")
    return year, month


def format_month(period: str, *, short: bool = False) -> str:
    """Format "2026-10" as "October 2026" (or "Oct 2026" when short)."""
    year, month = parse_period(period)
    name = MONTH_NAMES[month - 1]
    return f"{name[:3] if short else name} {year}"


@functools.cache
def get_environment() -> Environment:
    """Return the shared Jinja environment: templates from reports/templates, autoescape on, strict undefined."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "svg", "xml"),
            default_for_string=True,
            default=True,
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        number=format_number,
        percent=format_percent,
        interval=format_interval,
        signed=format_signed,
        hours=format_hours,
        month=format_month,
    )
    return env
