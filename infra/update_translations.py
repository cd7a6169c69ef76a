"""Refresh the Spanish catalog: extract every message from web/, services/, reports/ and workers/; keep translations.

web/ marks messages with _(), gettext(), ngettext() and their lazy forms; services/, reports/ and workers/ (which do not
import Flask-Babel) mark them with N_() or Message() from services.i18n, a Translator's .gettext()/.ngettext(), or
as the first argument of a UserError subclass (ClientError("No such client.") is extracted as it stands).

Usage: .venv/bin/python infra/update_translations.py [extra.po ...]
Extra .po files (for example a feature branch's fragment) contribute translations for messages the catalog lacks.
Exits 1 and lists the messages that still have no Spanish text.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
CATALOG = WEB / "translations" / "es" / "LC_MESSAGES" / "messages.po"
# (folder, what to read in it)
SOURCES = (
    (WEB, [("**.py", "python"), ("templates/**.html", "jinja2")]),
    (ROOT / "services", [("**.py", "python")]),
    (ROOT / "reports", [("**.py", "python")]),
    (ROOT / "workers", [("**.py", "python")]),
)
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "_l": None,
    "lazy_gettext": None,
    "N_": None,
    "Message": None,
}
# "class ClientError(UserError):" -> ("ClientError", "UserError"); raising one of them marks its literal msgid too
CLASS = re.compile(r"^class (\w+)\(([\w., ]+)\):", re.MULTILINE)


def _key(message_id: str | tuple[str, ...] | list[str]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def user_error_classes() -> set[str]:
    """Names of every services.i18n.UserError subclass in the code: their first argument is a msgid too."""
    bases: dict[str, set[str]] = {}
    for folder, _method_map in SOURCES:
        for path in folder.rglob("*.py"):
            for name, parents in CLASS.findall(path.read_text(encoding="utf-8")):
                bases.setdefault(name, set()).update(part.strip().split(".")[-1] for part in parents.split(","))
    found = {"UserError"}
    while True:
        more = {name for name, parents in bases.items() if parents & found} - found
        if not more:
            return found - {"UserError"}
        found |= more


def extract_messages() -> Iterator[tuple[str | tuple[str, ...], str | None]]:
    """(message id, context) of every marked message in the code, in file order (duplicates included)."""
    keywords = {**KEYWORDS, **dict.fromkeys(user_error_classes())}
    for folder, method_map in SOURCES:
        for _file, _line, message_id, _comments, context in extract_from_dir(
            str(folder), method_map=method_map, keywords=keywords
        ):
            yield message_id, context


def main(extra: list[str]) -> int:
    """Rebuild the catalog from the code and known translations; compile it."""
    known: dict[str, object] = {}
    for path in [CATALOG, *map(Path, extra)]:
        with path.open("rb") as fh:
            for message in read_po(fh):
                string = message.string
                if isinstance(string, tuple | list):
                    # a plural needs its singular and plural (an empty third form is filled below)
                    string = tuple(string) if len(string) >= 2 and all(string[:2]) else None
                if message.id and string and _key(message.id) not in known:
                    known[_key(message.id)] = string
    fresh = Catalog(locale="es", project="Rapport", charset="utf-8")
    missing = []
    seen: set[str] = set()
    for message_id, context in extract_messages():
        key = _key(message_id)
        if key in seen:
            continue
        seen.add(key)
        string = known.get(key)
        if string is None:
            missing.append(key)
        if isinstance(string, tuple | list) and len(string) >= 2 and all(string[:2]):
            # Babel 2.19's CLDR gives Spanish a third plural form ("many", n = 1 000 000...): it reads as the plural.
            forms = [*string[:2], *(form or string[1] for form in string[2:])]
            string = tuple(forms + [string[1]] * (fresh.num_plurals - len(forms)))
        if string is None and not isinstance(message_id, str):
            string = ("",) * fresh.num_plurals
        fresh.add(message_id, string=string or "", context=context)
    with CATALOG.open("wb") as fh:
        write_po(fh, fresh, sort_output=True, omit_header=False, width=120)
    with CATALOG.with_suffix(".mo").open("wb") as fh:
        write_mo(fh, fresh)
    for key in missing:
        print(f"no Spanish yet: {key!r}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
