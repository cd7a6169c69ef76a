"""The one format of pseudonymous client codes: ``C`` and seven characters with no look-alikes, e.g. ``CNXJ4UNV``."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence

# No look-alike characters (0/O, 1/I/L, 2/Z, 5/S, 8/B), so a code read aloud or copied by hand survives.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
CODE_PREFIX = "C"
CODE_LENGTH = 7
CODE_PATTERN = re.compile(rf"\b({CODE_PREFIX}[{CODE_ALPHABET}]{{{CODE_LENGTH}}})\b")


def generate_client_code(choice: Callable[[Sequence[str]], str] = secrets.choice) -> str:
    """A random client code (carries nothing about the person); the demo passes its seeded generator's choice."""
    return CODE_PREFIX + "".join(choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def is_client_code(value: str) -> bool:
    """True when value has the shape of a client code."""
    return CODE_PATTERN.fullmatch(value) is not None
