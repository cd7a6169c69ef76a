"""Helpers for htmx requests (pages still work in full without JavaScript)."""

from __future__ import annotations

from flask import request


def wants_fragment(target_id: str) -> bool:
    """True when htmx asked to swap just the element with target_id (not a history restore)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Target") == target_id
        and request.headers.get("HX-History-Restore-Request") != "true"
    )
