"""Synthetic names built from syllables, so the demo never contains a real person's name."""

from __future__ import annotations

import random

from services.clients.codes import generate_client_code

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kl", "st", "tr"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou"]
_CODAS = ["", "", "n", "l", "r", "s", "th", "m", "x"]


def _word(rng: random.Random, syllables: int) -> str:
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(_CODAS)).capitalize()


def synthetic_name(rng: random.Random) -> tuple[str, str]:
    """A made-up first and last name."""
    return _word(rng, rng.choice([2, 2, 3])), _word(rng, rng.choice([2, 3, 3]))


def client_code(rng: random.Random, taken: set[str]) -> str:
    """A pseudonymous client code in the practice's one format (see services.clients.codes), unique within taken."""
    while True:
        code = generate_client_code(rng.choice)
        if code not in taken:
            taken.add(code)
            return code
