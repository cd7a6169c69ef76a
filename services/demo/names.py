"""Synthetic names built from syllables, so the demo never contains a real person's name."""

from __future__ import annotations

import random

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
    """A pseudonymous client code like C-7KQ2M, unique within taken."""
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    while True:
        code = "C-" + "".join(rng.choice(alphabet) for _ in range(5))
        if code not in taken:
            taken.add(code)
            return code
