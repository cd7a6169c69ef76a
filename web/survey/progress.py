"""Answers of earlier steps carried in the page itself, encrypted and time-limited (no account, no extra table).

The blob is Fernet (AES-128-CBC with HMAC-SHA256, from the `cryptography` library) under a key derived from the
app's secret with HKDF (services.crypto), so the page source of a later step never shows an earlier answer (PHQ-9
item 9 and free text included) to whoever holds the phone or reads a cached copy. It is bound to one invitation
(a state copied from another link is refused) and good for MAX_AGE_SECONDS after the page was shown; the link's
own expiry and single use are checked before it is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from services.crypto import fernet_for
from web.app import current_settings

KEY_INFO = b"rapport.survey.progress.v2"
MAX_BLOB = 96 * 1024
# A page left open longer than this starts over; the link's expiry (checked first) is usually sooner.
MAX_AGE_SECONDS = 24 * 3600


@dataclass
class Progress:
    """Where the client is: the step shown, answers so far by instrument code, the rotating element asked."""

    invitation_id: int
    step: int = 0
    answers: dict[str, dict[str, float | str]] = field(default_factory=dict)
    rotating: str | None = None


def _fernet() -> Fernet:
    return fernet_for(current_settings().secret_key, KEY_INFO)


def dump_progress(progress: Progress) -> str:
    """The encrypted form field for a page."""
    payload = {"i": progress.invitation_id, "s": progress.step, "a": progress.answers, "r": progress.rotating}
    return _fernet().encrypt(json.dumps(payload, separators=(",", ":")).encode()).decode("ascii")


def load_progress(blob: str | None, invitation_id: int) -> Progress | None:
    """The progress a page carried, or None when missing, tampered or made for another invitation."""
    if not blob or len(blob) > MAX_BLOB:
        return None
    try:
        payload: Any = json.loads(_fernet().decrypt(blob.encode("ascii"), ttl=MAX_AGE_SECONDS))
    except (InvalidToken, UnicodeError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("i") != invitation_id:
        return None
    step, answers, rotating = payload.get("s"), payload.get("a"), payload.get("r")
    if not isinstance(step, int) or step < 0 or not isinstance(answers, dict):
        return None
    if rotating is not None and not isinstance(rotating, str):
        return None
    kept: dict[str, dict[str, float | str]] = {}
    for code, values in answers.items():
        if not isinstance(code, str) or not isinstance(values, dict):
            return None
        kept[code] = {
            str(k): v for k, v in values.items() if isinstance(v, str | int | float) and not isinstance(v, bool)
        }
    return Progress(invitation_id=invitation_id, step=step, answers=kept, rotating=rotating)
