"""Phone numbers: parsed with `phonenumbers` in the practice's region, stored as E.164 (``+447700900123``)."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

DEFAULT_REGION = "GB"  # matches the default practice time zone, Europe/London
MAX_INPUT_LENGTH = 40
# Ranges regulators set aside for drama and tests (never a real person's phone); phonenumbers calls them invalid,
# and the demo and tests need synthetic numbers that pass. Ofcom: 07700 900000 to 07700 900999.
FICTIONAL = re.compile(r"^\+447700900\d{3}$")


class PhoneNumberError(ValueError):
    """A phone number that cannot be stored, with a message fit to show."""


def is_region(region: str) -> bool:
    """True when region is a two-letter region code phonenumbers knows (GB, ES, US...)."""
    return region in phonenumbers.SUPPORTED_REGIONS


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def normalise_phone(raw: str, *, region: str = DEFAULT_REGION, for_sms: bool = False) -> str:
    """The E.164 form of raw, read in region when it has no country code; raises PhoneNumberError."""
    text = " ".join(raw.split())
    if len(text) > MAX_INPUT_LENGTH:
        raise PhoneNumberError(f"The phone number is longer than {MAX_INPUT_LENGTH} characters.")
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        raise PhoneNumberError(
            f"{text!r} is not a phone number; give the digits, with the country code for a number from abroad."
        ) from None
    e164 = _e164(number)
    if not (phonenumbers.is_valid_number(number) or FICTIONAL.match(e164)):
        raise PhoneNumberError(
            f"{text!r} is not a valid phone number; check the digits, and give the country code "
            f"(+{phonenumbers.country_code_for_region(region)} here) for a number from abroad."
        )
    if for_sms and phonenumbers.number_type(number) == PhoneNumberType.FIXED_LINE:
        raise PhoneNumberError(f"{text!r} is a landline; text messages need a mobile number.")
    return e164


def example_number(region: str = DEFAULT_REGION) -> str:
    """A mobile number of region written with its country code, for hints (+44 7400 123456)."""
    example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    if example is None:
        return "+44 7700 900123"
    return phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL)


def display_phone(e164: str) -> str:
    """A stored number written for people, with spaces (+44 7700 900123); unparseable text is shown as it is."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return e164
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
