"""Account errors from services.accounts in the reader's language: by code where the form has a message of its own,
else the service's msgid through the catalog (services.i18n)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from services.accounts.operations import AccountError
from services.accounts.passwords import MIN_PASSWORD_LENGTH, TOO_SHORT, WeakPasswordError
from web.i18n import translate

ACCOUNT_ERRORS: dict[str, LazyString] = {
    "bad_role": _l("Choose one of the roles in the list."),
    "bad_team": _l("There is no team called %(team)s."),
    "bad_language": _l("Choose English, Spanish or your browser's language."),
    "bad_name": _l("A name needs 1 to 200 characters."),
    "last_admin": _l(
        "This is the only active administrator. Make someone else an administrator first, then try again."
    ),
    "self_deactivation": _l("You cannot deactivate your own account."),
    "reset_link_dead": _l("This link has expired or has already been used."),
}


def account_error_text(exc: AccountError | WeakPasswordError) -> str:
    """The message of an account error, translated when its code is known (else the service's English)."""
    if isinstance(exc, WeakPasswordError):
        if exc.template == TOO_SHORT:
            return str(_("A password needs at least %(n)d characters.", n=MIN_PASSWORD_LENGTH))
        return translate(exc)
    message = ACCOUNT_ERRORS.get(exc.code)
    if message is None:
        return translate(exc)
    return str(message) % {key: str(value) for key, value in exc.params.items()} if exc.params else str(message)
