"""Admin and manager: the practice's settings (link lifetime, escalation digest, two-step sign-in) with who changed
them and why."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from werkzeug.wrappers import Response

from services.accounts.models import Role, User
from services.accounts.two_factor import REQUIRED_SETTING
from services.practice.models import PracticeSetting
from services.practice.settings import DEFAULTS, NUMBER_RANGES, NumberRange, current_version, set_setting
from web.access import allow
from web.admin.views import bp
from web.login import current_account
from web.request_db import commit, db_session

MAX_REASON = 500


@dataclass(frozen=True)
class NumberSettingText:
    """How a numeric setting reads on the page."""

    label: LazyString
    unit: LazyString
    hint: LazyString


TEXTS: dict[str, NumberSettingText] = {
    "survey_link_hours": NumberSettingText(
        _l("How long a handed-out survey link stays open"),
        _l("hours"),
        _l(
            "Links the front desk copies, shows as a QR code or sends at once. A longer time is kinder to clients "
            "who answer at home; a shorter one leaves less time for a forwarded link to be misused."
        ),
    ),
    "escalation_digest_minutes": NumberSettingText(
        _l("Shortest time between two escalation messages to one person"),
        _l("minutes"),
        _l(
            "When several alerts are overdue at once, each person gets one message listing them rather than "
            "one per alert."
        ),
    ),
    "measures_overdue_sessions": NumberSettingText(
        _l("Sessions without an answer before a client's measures are overdue"),
        _l("sessions"),
        _l(
            "The front desk's list of who has not answered shows clients with no completed questionnaire in this "
            "many of their latest sessions."
        ),
    ),
    "completion_goal_percent": NumberSettingText(
        _l("The practice's goal for completed measures"),
        _l("percent"),
        _l("The survey completion page compares each clinician's and each week's completion with this goal."),
    ),
}


@dataclass(frozen=True)
class NumberSettingRow:
    """One setting on the page: its text, value in force and where that value came from."""

    key: str
    text: NumberSettingText
    limits: NumberRange
    value: object
    default: object
    version: PracticeSetting | None
    changed_by: str | None


def _rows() -> list[NumberSettingRow]:
    session = db_session()
    rows = []
    for key, limits in NUMBER_RANGES.items():
        version = current_version(session, key)
        who = session.get(User, version.changed_by_id) if version and version.changed_by_id else None
        rows.append(
            NumberSettingRow(
                key=key,
                text=TEXTS[key],
                limits=limits,
                value=version.value if version else DEFAULTS[key],
                default=DEFAULTS[key],
                version=version,
                changed_by=who.name if who else None,
            )
        )
    return rows


@dataclass(frozen=True)
class SwitchRow:
    """An on/off setting on the page: whether it is on, and who changed it when."""

    key: str
    on: bool
    version: PracticeSetting | None
    changed_by: str | None


def _two_step_row() -> SwitchRow:
    session = db_session()
    version = current_version(session, REQUIRED_SETTING)
    who = session.get(User, version.changed_by_id) if version and version.changed_by_id else None
    on = (version.value if version else DEFAULTS[REQUIRED_SETTING]) is True
    return SwitchRow(key=REQUIRED_SETTING, on=on, version=version, changed_by=who.name if who else None)


def _page(errors: dict[str, str], values: dict[str, str]) -> str:
    return render_template(
        "admin/practice_settings.html", rows=_rows(), two_step=_two_step_row(), errors=errors, values=values
    )


@bp.get("/practice", endpoint="practice_settings")
@allow(Role.ADMIN, Role.MANAGER)
def practice_settings() -> str:
    """The practice settings in force, each with its source and a form to change it."""
    return _page({}, {})


@bp.post("/practice/two-step", endpoint="two_step_setting")
@allow(Role.ADMIN, Role.MANAGER)
def two_step_setting() -> Response | tuple[str, int]:
    """Require two-step sign-in of every staff member, or stop requiring it (a new version, with the reason)."""
    choice = request.form.get("value", "")
    reason = request.form.get("reason", "").strip()
    error = None
    if choice not in ("on", "off"):
        error = _("Choose whether two-step sign-in is required.")
    elif not reason:
        error = _("Say in a few words why it changes: the reason is kept with the setting's history.")
    elif len(reason) > MAX_REASON:
        error = _("Please keep the reason under %(n)d characters.", n=MAX_REASON)
    if error is not None:
        return _page({REQUIRED_SETTING: error}, {"reason": reason}), 400
    set_setting(db_session(), REQUIRED_SETTING, choice == "on", user_id=current_account().id, reason=reason)
    commit()
    if choice == "on":
        flash(_("Saved: two-step sign-in is required. Anyone without it sets it up at their next page."), "success")
    else:
        flash(_("Saved: two-step sign-in is no longer required (those who use it keep it)."), "success")
    return redirect(url_for("admin.practice_settings"), code=303)


@bp.post("/practice/<key>", endpoint="practice_setting_change")
@allow(Role.ADMIN, Role.MANAGER)
def practice_setting_change(key: str) -> Response | tuple[str, int]:
    """Store a new version of one numeric setting, with the reason given (audited)."""
    limits = NUMBER_RANGES.get(key)
    if limits is None or key not in TEXTS:
        abort(404)
    raw = request.form.get("value", "").strip()
    reason = request.form.get("reason", "").strip()
    error = None
    value = int(raw) if raw.isdigit() and len(raw) <= 6 else None
    if value is None or not limits.accepts(value):
        error = _("Give a whole number from %(low)d to %(high)d.", low=limits.low, high=limits.high)
    elif not reason:
        error = _("Say in a few words why it changes: the reason is kept with the setting's history.")
    elif len(reason) > MAX_REASON:
        error = _("Please keep the reason under %(n)d characters.", n=MAX_REASON)
    if error is not None:
        return _page({key: error}, {key: raw, "reason": reason}), 400
    set_setting(db_session(), key, value, user_id=current_account().id, reason=reason)
    commit()
    flash(_("Saved: %(label)s is now %(value)d %(unit)s.", label=TEXTS[key].label, value=value, unit=TEXTS[key].unit))
    return redirect(url_for("admin.practice_settings"), code=303)
