"""Role names as people read them, and the navigation each role gets."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from services.accounts.models import Role

ROLE_LABELS: dict[Role, LazyString] = {
    Role.FRONT_DESK: _l("Front desk"),
    Role.CLINICIAN: _l("Clinician"),
    Role.SUPERVISOR: _l("Supervisor"),
    Role.MANAGER: _l("Manager"),
    Role.ADMIN: _l("Administrator"),
}


@dataclass(frozen=True)
class NavItem:
    """One link in the main navigation."""

    endpoint: str
    label: LazyString


# Each link goes to a page whose access policy admits the role (a test checks it).
CASE_REVIEWS = NavItem("reviews.agenda", _l("Case reviews"))
CRISIS_INFO = NavItem("admin.crisis", _l("Crisis information"))
PRACTICE_SETTINGS = NavItem("admin.practice_settings", _l("Settings"))
KIOSKS = NavItem("admin.kiosks", _l("Kiosks"))
ALERT_RULES = NavItem("admin.alert_rules", _l("Alert rules"))
NAVIGATION: dict[Role, list[NavItem]] = {
    Role.FRONT_DESK: [NavItem("frontdesk.home", _l("Clients"))],
    Role.CLINICIAN: [NavItem("clinician.home", _l("My caseload"))],
    Role.SUPERVISOR: [NavItem("supervisor.home", _l("Team")), CASE_REVIEWS],
    Role.MANAGER: [
        NavItem("manager.home", _l("Practice")),
        CASE_REVIEWS,
        CRISIS_INFO,
        PRACTICE_SETTINGS,
        ALERT_RULES,
    ],
    Role.ADMIN: [
        NavItem("admin.home", _l("Users")),
        NavItem("admin.operations", _l("Operations")),
        NavItem("admin.audit_trail", _l("Audit trail")),
        NavItem("admin.api_tokens", _l("API tokens")),
        KIOSKS,
        NavItem("admin.outbox", _l("Messages")),
        CRISIS_INFO,
        PRACTICE_SETTINGS,
        ALERT_RULES,
    ],
}
