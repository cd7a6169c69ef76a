"""Whole numbers stay within what the databases store (64-bit signed), and page numbers within reason."""

from __future__ import annotations

from services.i18n import N_
from services.inputs.errors import InputError

MAX_ID = 2**63 - 1  # PostgreSQL bigint and SQLite INTEGER
MAX_PAGE = 1_000_000


def check_whole_number(value: int, name: str) -> int:
    """value when it fits in 64 bits (signed); InputError naming the parameter otherwise."""
    if not -MAX_ID - 1 <= value <= MAX_ID:
        raise InputError(N_("%(name)s must be a whole number that fits in 64 bits."), name=name)
    return value


def page_offset(page: int, per_page: int) -> int:
    """The row offset of a page (page 1 is the first); InputError beyond MAX_PAGE."""
    if page > MAX_PAGE:
        raise InputError(N_("The page number must be between 1 and %(max)d."), max=MAX_PAGE)
    return (max(page, 1) - 1) * per_page
