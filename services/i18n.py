"""User-facing text built outside the web layer, in the reader's language, without Flask.

One mechanism for every message that services/ or reports/ build for people:
- wrap the English text in `N_()` where it is written (it returns the text unchanged; infra/update_translations.py
  extracts it into the catalog), with `%(name)s` placeholders for values;
- text with values: `Message("No client with code %(code)s.", code=code)` (also extracted), a str that reads in
  English and remembers its msgid and values; or raise a `UserError` subclass with the msgid and values (the first
  argument of any UserError subclass is extracted too, so `raise ClientError("No such client.")` is enough);
- whoever shows it translates it with a `Translator`: the web layer's comes from Flask-Babel (web.i18n.translator),
  and `ENGLISH` (the default everywhere) gives the English text, as `str()` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from babel.support import NullTranslations, Translations

Gettext = Callable[[str], str]
NGettext = Callable[[str, str, int], str]


def N_(text: str) -> str:
    """Mark text for the catalog; it is translated where it is shown."""
    return text


def _format(text: str, params: Mapping[str, Any]) -> str:
    return text % params if params else text


class Message(str):
    """A message for people: the English text itself (a str), remembering its msgid and values to translate it.

    Message("No client with code %(code)s.", code="C4KXHM7") == "No client with code C4KXHM7." wherever a str is
    expected (JSON, logs, tests); a Translator turns it into the reader's language.
    """

    msgid: str
    params: Mapping[str, Any]

    def __new__(cls, msgid: str, **params: Any) -> Message:
        """The English text of msgid with params filled in."""
        self = super().__new__(cls, _format(msgid, params))
        self.msgid = msgid
        self.params = params
        return self

    def __getnewargs_ex__(self) -> tuple[tuple[str], dict[str, Any]]:
        return (self.msgid,), dict(self.params)


def _english_plural(singular: str, plural: str, num: int) -> str:
    return singular if num == 1 else plural


class Translator:
    """Turns msgids (and Messages) into text in one language; the default is English."""

    def __init__(self, gettext: Gettext | None = None, ngettext: NGettext | None = None) -> None:
        self._gettext: Gettext = gettext or (lambda text: text)
        self._ngettext: NGettext = ngettext or _english_plural

    def gettext(self, msgid: str, **params: Any) -> str:
        """The msgid in this language, with its placeholders filled."""
        return _format(self._gettext(msgid), params)

    def ngettext(self, singular: str, plural: str, num: int, **params: Any) -> str:
        """The singular or plural form for num in this language; %(num)d is filled too."""
        return _format(self._ngettext(singular, plural, num), {"num": num, **params})

    def __call__(self, message: str) -> str:
        """A Message, or a plain msgid, in this language (text the catalog does not know stays as it is)."""
        if isinstance(message, Message):
            translated = self._gettext(message.msgid)
            params = {key: self(v) if isinstance(v, Message) else v for key, v in message.params.items()}
            return _format(translated, params)
        return self._gettext(message)


ENGLISH = Translator()
# The compiled catalogs (infra/update_translations.py writes them; Flask-Babel reads the same files for pages).
CATALOGS = Path(__file__).resolve().parent.parent / "web" / "translations"


@cache
def translator_for(language: str) -> Translator:
    """A Translator into language from the compiled catalog, where no request says the language (workers, lines
    written for a given reader); English, or a language without a catalog, gives the English text."""
    if language == "en":
        return ENGLISH
    catalog = Translations.load(str(CATALOGS), [language])
    if type(catalog) is NullTranslations:
        return ENGLISH
    return Translator(catalog.gettext, catalog.ngettext)


class UserError(ValueError):
    """An error whose message is fit to show a person: str() is English, `message` translates where it is shown."""

    def __init__(self, msgid: str, **params: Any) -> None:
        self.message = msgid if isinstance(msgid, Message) and not params else Message(msgid, **params)
        super().__init__(str(self.message))

    @property
    def template(self) -> str:
        """The English msgid, placeholders unfilled."""
        return self.message.msgid

    @property
    def params(self) -> Mapping[str, Any]:
        """The placeholders' values."""
        return self.message.params
