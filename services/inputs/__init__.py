"""The ranges every parameter is checked against, in one place: text without control characters, whole numbers
within 64 bits, page numbers, dates within the practice's plausible window, and email addresses (email-validator).

The web layer applies them to every request (web.inputs); operations apply the ones that guard what they store.
"""

from services.inputs.dates import (
    EARLIEST_DATE,
    YEARS_AHEAD,
    check_plausible_date,
    parse_plausible_date,
    plausible_window,
)
from services.inputs.emails import MAX_EMAIL_LENGTH, normalise_email_address
from services.inputs.errors import InputError
from services.inputs.numbers import MAX_ID, MAX_PAGE, check_whole_number, page_offset
from services.inputs.text import control_character, control_character_in

__all__ = [
    "EARLIEST_DATE",
    "MAX_EMAIL_LENGTH",
    "MAX_ID",
    "MAX_PAGE",
    "YEARS_AHEAD",
    "InputError",
    "check_plausible_date",
    "check_whole_number",
    "control_character",
    "control_character_in",
    "normalise_email_address",
    "page_offset",
    "parse_plausible_date",
    "plausible_window",
]
