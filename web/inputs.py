"""Every request's parameters checked to their type's range in one place, before any view runs.

- Ids in URLs are 64-bit: the app's ``int`` converter has a maximum, so a longer number matches no route (404).
- No text parameter (query string, form field, JSON member or key) holds a control character other than tab,
  line feed and carriage return (services.inputs.text): 400 naming the parameter.
- No whole number in the query string or a JSON body exceeds 64 bits: 400 naming the parameter.
- An InputError that an operation or query raises (a page number beyond the last possible one, a date outside
  the practice's window) that the view did not catch becomes a 400 with its message, rolled back, never a 500.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Flask, request
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter
from werkzeug.routing.map import Map
from werkzeug.wrappers import Response
from wtforms import DateField
from wtforms.validators import StopValidation

from services.inputs import MAX_ID, InputError, check_plausible_date, control_character_in
from web.i18n import translate
from web.request_db import rollback

_DIGITS = frozenset("0123456789")


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` limited to what the database stores: a 20-digit id matches no route (404), never a 500."""

    def __init__(self, url_map: Map, fixed_digits: int = 0, min: int | None = 0, max: int | None = MAX_ID) -> None:
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max)


class BadParameter(BadRequest):
    """A 400 whose description is the message shown to the person (web.errors shows it)."""


def _where(name: str) -> str:
    return name or _("the request body")


def _check_text() -> None:
    # Path arguments are ids (the bounded converter), tokens (hashed, then looked up) or names from a fixed list,
    # so a control character there finds nothing (404 from the view); the other parameters are checked here.
    sources: list[tuple[str, Any]] = [("query", request.args.to_dict(flat=False))]
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        if request.is_json:
            sources.append(("", request.get_json(silent=True)))
        else:
            sources.append(("form", request.form.to_dict(flat=False)))
    for _source, values in sources:
        found = control_character_in(values)
        if found is not None:
            where, char = found
            name = where.split("[", 1)[0]
            raise BadParameter(
                _(
                    "%(name)s contains a control character (%(char)s). Remove it and try again.",
                    name=_where(name),
                    char=char,
                )
            )


def _too_big(value: object) -> str | None:
    """The path of the first whole number beyond 64 bits in a JSON-like value, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "" if not -MAX_ID - 1 <= value <= MAX_ID else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = _too_big(item)
            if inner is not None:
                return f"{key}.{inner}" if inner else str(key)
    if isinstance(value, list):
        for item in value:
            inner = _too_big(item)
            if inner is not None:
                return inner
    return None


def _check_numbers() -> None:
    for name, values in request.args.lists():
        for raw in values:
            digits = raw.strip().lstrip("+-")
            if digits and set(digits) <= _DIGITS and len(digits) > 18 and abs(int(digits)) > MAX_ID:
                raise BadParameter(_("%(name)s must be a whole number that fits in 64 bits.", name=name))
    if request.method not in ("GET", "HEAD", "OPTIONS") and request.is_json:
        where = _too_big(request.get_json(silent=True))
        if where is not None:
            raise BadParameter(_("%(name)s must be a whole number that fits in 64 bits.", name=_where(where)))


def check_request_parameters() -> None:
    """before_request: refuse control characters and numbers beyond 64 bits in any parameter (400)."""
    if request.endpoint == "static":
        return
    _check_text()
    _check_numbers()


def handle_input_error(exc: InputError) -> Response:
    """An InputError no view caught: 400 with its message (rolled back)."""
    from web.errors import error_response

    rollback()
    return error_response(400, message=translate(exc))


def register_converters(app: Flask) -> None:
    """Install the bounded ``int`` converter; call before any blueprint is registered."""
    app.url_map.converters["int"] = BoundedIntConverter


def init_app(app: Flask) -> None:
    """Install the request check and the InputError handler."""
    app.before_request(check_request_parameters)
    app.register_error_handler(InputError, handle_input_error)


class PlausibleDateField(DateField):  # type: ignore[misc]  # wtforms ships no types
    """A date field that refuses dates outside the practice's window (services.inputs.dates) with its reason."""

    data: date | None

    def pre_validate(self, form: Any) -> None:
        """Check the window before the form's other validators (and before anyone adds days to it)."""
        super().pre_validate(form)
        if self.data is not None:
            try:
                check_plausible_date(self.data)
            except InputError as exc:
                self.data = None
                raise StopValidation(translate(exc)) from None
