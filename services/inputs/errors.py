"""The error every input check raises."""

from services.i18n import UserError


class InputError(UserError):
    """A parameter outside its type's range, with a message naming the range (shown with a 400)."""
