"""Email addresses, checked by email-validator: syntax only (no DNS), CR/LF and display names refused."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from services.i18n import N_
from services.inputs.errors import InputError

MAX_EMAIL_LENGTH = 254


def normalise_email_address(raw: str) -> str:
    """The address trimmed and lower-cased; InputError for anything email-validator refuses.

    Line breaks are refused before trimming, so "a@b.test\\r\\nBcc: ..." can never become a header. The reserved
    `.test` domain is allowed (the demo and the tests use it; it is never a real inbox).
    """
    if "\r" in raw or "\n" in raw:
        raise InputError(N_("An email address cannot contain a line break."))
    address = raw.strip()
    try:
        result = validate_email(address, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise InputError(
            N_("%(email)r is not a valid email address: %(reason)s"), email=address, reason=str(exc)
        ) from None
    normalised = result.normalized.lower()
    if len(normalised) > MAX_EMAIL_LENGTH:
        raise InputError(N_("An email address is at most %(max)d characters."), max=MAX_EMAIL_LENGTH)
    return normalised
