"""What every page's layout needs: practice name, the viewer, their navigation, the language and time zone."""

from __future__ import annotations

from typing import Any

from flask import Flask, request, url_for
from flask_babel import get_locale

from services.accounts.models import Role
from web.app import current_settings
from web.login import loaded_staff
from web.roles import NAVIGATION, ROLE_LABELS


def layout_context() -> dict[str, Any]:
    """Template globals for base.html (never queries the database, so error pages can use it)."""
    settings = current_settings()
    staff = loaded_staff()
    nav: list[dict[str, Any]] = []
    role_label = None
    if staff is not None:
        role = Role(staff.role)
        role_label = ROLE_LABELS[role]
        for item in NAVIGATION[role]:
            nav.append(
                {"url": url_for(item.endpoint), "label": item.label, "current": request.endpoint == item.endpoint}
            )
    return {
        "viewer": staff,
        "viewer_role": role_label,
        "nav": nav,
        "practice_name": settings.practice_name,
        "timezone_name": settings.timezone,
        "lang": str(get_locale() or "en"),
        "role_labels": {role.value: label for role, label in ROLE_LABELS.items()},
    }


def init_app(app: Flask) -> None:
    """Register the context processor."""
    app.context_processor(layout_context)
