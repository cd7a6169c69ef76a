"""Refresh the Spanish catalog: extract every message from web/, keep existing translations, compile.

Usage: .venv/bin/python infra/update_translations.py [extra.po ...]
Extra .po files (for example a feature branch's fragment) contribute translations for messages the catalog lacks.
Exits 1 and lists the messages that still have no Spanish text.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

WEB = Path(__file__).resolve().parent.parent / "web"
CATALOG = WEB / "translations" / "es" / "LC_MESSAGES" / "messages.po"
METHOD_MAP = [("**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def _key(message_id: str | tuple[str, ...] | list[str]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def main(extra: list[str]) -> int:
    """Rebuild the catalog from the code and known translations; compile it."""
    known: dict[str, object] = {}
    for path in [CATALOG, *map(Path, extra)]:
        with path.open("rb") as fh:
            for message in read_po(fh):
                if message.id and message.string and _key(message.id) not in known:
                    known[_key(message.id)] = message.string
    fresh = Catalog(locale="es", project="Rapport", charset="utf-8")
    missing = []
    seen: set[str] = set()
    for _file, _line, message_id, _comments, context in extract_from_dir(
        str(WEB), method_map=METHOD_MAP, keywords=KEYWORDS
    ):
        key = _key(message_id)
        if key in seen:
            continue
        seen.add(key)
        string = known.get(key)
        if string is None:
            missing.append(key)
        elif isinstance(string, tuple | list):
            # Babel 2.19 gives Spanish three plural forms (CLDR's "many"); a missing one reads like the plural.
            forms = [form for form in string if form]
            string = tuple(forms + [forms[-1]] * (fresh.num_plurals - len(forms))) if forms else string
        fresh.add(message_id, string=string or ("" if isinstance(message_id, str) else ("", "")), context=context)
    with CATALOG.open("wb") as fh:
        write_po(fh, fresh, sort_output=True, omit_header=False, width=120)
    with CATALOG.with_suffix(".mo").open("wb") as fh:
        write_mo(fh, fresh)
    for key in missing:
        print(f"no Spanish yet: {key!r}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
