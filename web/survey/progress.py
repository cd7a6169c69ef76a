"""Answers of earlier steps carried in the page itself, signed with the app's secret (no account, no extra table).

The blob is bound to one invitation: a state copied from another link is refused. It is signed, not encrypted:
it holds only the client's own answers, on a page that is never cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from web.app import current_settings

SALT = "rapport.survey.progress.v1"
MAX_BLOB = 64 * 1024


@dataclass
class Progress:
    """Where the client is: the step shown, answers so far by instrument code, the rotating element asked."""

    invitation_id: int
    step: int = 0
    answers: dict[str, dict[str, float | str]] = field(default_factory=dict)
    rotating: str | None = None


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_settings().secret_key, salt=SALT)


def dump_progress(progress: Progress) -> str:
    """The signed form field for a page."""
    payload = {"i": progress.invitation_id, "s": progress.step, "a": progress.answers, "r": progress.rotating}
    return str(_serializer().dumps(payload))


def load_progress(blob: str | None, invitation_id: int) -> Progress | None:
    """The progress a page carried, or None when missing, tampered or made for another invitation."""
    if not blob or len(blob) > MAX_BLOB:
        return None
    try:
        payload: Any = _serializer().loads(blob)
    except BadSignature:
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
