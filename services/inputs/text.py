"""Text parameters hold no control characters: NUL breaks PostgreSQL text, the rest have no business in a form.

Tab, line feed and carriage return stay allowed (multi-line notes and comments); single-line values collapse or
refuse them where they are cleaned (names collapse whitespace; email addresses refuse CR/LF).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# C0 controls but tab, LF and CR; DEL; the C1 controls (U+0080 to U+009F).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def control_character(value: str) -> str | None:
    """The first forbidden control character in value, written as U+XXXX, or None."""
    match = _CONTROL.search(value)
    return None if match is None else f"U+{ord(match.group()):04X}"


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield path, str(key)
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def control_character_in(value: object, name: str = "") -> tuple[str, str] | None:
    """(where, U+XXXX) of the first forbidden control character in a string, or in a JSON-like value's keys and
    strings; None when there is none."""
    for where, text in _strings(value, name):
        found = control_character(text)
        if found is not None:
            return where, found
    return None
