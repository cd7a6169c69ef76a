"""The web test fixtures (staff, signed_in, quick argon2) for the operations page tests."""

from tests.unit.web.conftest import _quick_argon2, signed_in, staff  # noqa: F401  (fixtures, used by name)
