"""The practice's crisis information: per language a heading, a text and phone numbers, shown on the survey.

Stored as the practice setting "crisis_info": {lang: {"region", "heading", "body", "phones": [{"label", "number"}]}}.
Numbers are stored as E.164 (or the digits of a short number such as 999 or 116 123, valid in the entry's region)
and validated with phonenumbers; each is shown as a tel: link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberFormat, shortnumberinfo
from sqlalchemy.orm import Session

from services.practice.settings import DEFAULTS, get_setting, set_setting

KEY = "crisis_info"
LANGUAGES = ("en", "es")
DEFAULT_REGION = str(DEFAULTS[KEY]["en"]["region"])
MAX_PHONES = 4
MAX_HEADING = 120
MAX_BODY = 1000
MAX_LABEL = 80

# The demo practice's crisis information: synthetic numbers only (the NANP 555-01xx range is reserved for fiction).
DEMO_CRISIS_INFO: dict[str, Any] = {
    "en": {
        "region": DEFAULT_REGION,
        "heading": "If you need help now",
        "body": "If you are in danger or thinking about harming yourself, call the emergency number now. "
        "You can also call the practice's crisis line, day or night.",
        "phones": [
            {"label": "Emergency (demo number)", "number": "+12025550101"},
            {"label": "Crisis line, 24 hours (demo number)", "number": "+12025550143"},
        ],
    },
    "es": {
        "region": DEFAULT_REGION,
        "heading": "Si necesita ayuda ahora",
        "body": "Si está en peligro o piensa en hacerse daño, llame ahora al número de emergencias. "
        "También puede llamar a la línea de crisis de la consulta, de día o de noche.",
        "phones": [
            {"label": "Emergencias (número de demostración)", "number": "+12025550101"},
            {"label": "Línea de crisis en español, 24 horas (número de demostración)", "number": "+12025550188"},
        ],
    },
}


@dataclass(frozen=True, slots=True)
class CrisisPhone:
    """One number as the client sees it: its label, the number written for reading, and its tel: link."""

    label: str
    display: str
    tel: str


@dataclass(frozen=True, slots=True)
class CrisisInfo:
    """The crisis information in one language, ready to show."""

    heading: str
    paragraphs: tuple[str, ...]
    phones: tuple[CrisisPhone, ...]


@dataclass(frozen=True, slots=True)
class CrisisEntry:
    """One language's crisis information as stored (what the admin page edits)."""

    region: str
    heading: str
    body: str
    phones: tuple[tuple[str, str], ...]  # (label, stored number)


class InvalidNumber(ValueError):
    """A phone number that is neither a valid full number nor a valid short number for the region."""


def parse_number(text: str, region: str) -> str:
    """A number as stored: E.164 for a full number, digits for a short number valid in region; else InvalidNumber."""
    cleaned = text.strip()
    if not cleaned:
        raise InvalidNumber("empty")
    try:
        number = phonenumbers.parse(cleaned, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(str(exc)) from exc
    if phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if not cleaned.startswith("+") and shortnumberinfo.is_valid_short_number_for_region(number, region):
        return str(phonenumbers.national_significant_number(number))
    raise InvalidNumber(cleaned)


def phone_for_display(label: str, stored: str, region: str) -> CrisisPhone:
    """A stored number as shown: national form when it is the region's own, international otherwise."""
    if not stored.startswith("+"):
        return CrisisPhone(label=label, display=stored, tel=f"tel:{stored}")
    number = phonenumbers.parse(stored, None)
    own = phonenumbers.region_code_for_number(number) == region
    display = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL if own else PhoneNumberFormat.INTERNATIONAL)
    return CrisisPhone(label=label, display=display, tel=f"tel:{stored}")


def regions() -> list[str]:
    """The region codes a crisis entry may name (those phonenumbers knows)."""
    return sorted(phonenumbers.SUPPORTED_REGIONS)


def _entry(raw: Any, fallback: dict[str, Any]) -> CrisisEntry:
    value = raw if isinstance(raw, dict) else fallback
    phones = tuple(
        (str(phone.get("label", "")), str(phone.get("number", "")))
        for phone in value.get("phones") or ()
        if isinstance(phone, dict) and phone.get("number")
    )
    return CrisisEntry(
        region=str(value.get("region") or DEFAULT_REGION),
        heading=str(value.get("heading") or fallback["heading"]),
        body=str(value.get("body") or fallback["body"]),
        phones=phones,
    )


def crisis_entry(session: Session, lang: str) -> CrisisEntry:
    """One language's stored crisis information (the default text while the practice has set none)."""
    language = lang if lang in LANGUAGES else "en"
    stored = get_setting(session, KEY)
    stored = stored if isinstance(stored, dict) else {}
    return _entry(stored.get(language), DEFAULTS[KEY][language])


def crisis_info_for(session: Session, lang: str) -> CrisisInfo:
    """The crisis information a client reading lang sees."""
    entry = crisis_entry(session, lang)
    paragraphs = tuple(part.strip() for part in entry.body.split("\n") if part.strip())
    # A language given no numbers of its own still shows the English entry's: a number matters more than its label.
    numbered = entry if entry.phones or lang == "en" else crisis_entry(session, "en")
    phones = []
    for label, stored in numbered.phones:
        try:
            phones.append(phone_for_display(label, stored, numbered.region))
        except phonenumbers.NumberParseException:
            continue  # stored before validation changed: never a broken link on the client's page
    return CrisisInfo(heading=entry.heading, paragraphs=paragraphs, phones=tuple(phones))


def set_crisis_entry(session: Session, lang: str, entry: CrisisEntry, *, user_id: int | None) -> None:
    """Store one language's crisis information as a new version of the setting (flushes, audited)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}")
    value = get_setting(session, KEY)
    value = dict(value) if isinstance(value, dict) else {}
    value[lang] = {
        "region": entry.region,
        "heading": entry.heading,
        "body": entry.body,
        "phones": [{"label": label, "number": number} for label, number in entry.phones],
    }
    set_setting(session, KEY, value, user_id=user_id, reason=f"crisis information ({lang})")


def seed_demo_crisis_info(session: Session) -> None:
    """Give the demo practice synthetic crisis numbers in every language (flushes)."""
    set_setting(session, KEY, DEMO_CRISIS_INFO, user_id=None, reason="demo practice")
