"""Admin and manager: the alert rules' thresholds in force, where each came from, and changing one (audited)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from werkzeug.wrappers import Response

from services.accounts.models import Role, User
from services.practice.rules import NothingChanged, RuleValue, change_rules, rules_in_force
from services.practice.settings import FIELD_RANGES, RULE_SPEC_VALUES, InvalidSetting, NumberRange
from web.access import allow
from web.admin.views import bp
from web.app import current_settings
from web.i18n import local_number, translate
from web.login import current_account
from web.request_db import commit, db_session

MAX_REASON = 500
LIMITS = FIELD_RANGES["alert_rules"]


@dataclass(frozen=True)
class RuleText:
    """How one threshold reads on the page: what it is, its unit, and the trade-off of moving it."""

    label: LazyString
    unit: LazyString
    hint: LazyString


TEXTS: dict[str, RuleText] = {
    "k": RuleText(
        _l("Deviation rule: how many SDs below the client's own mean (k)"),
        _l("SDs"),
        _l(
            "RUPTURE_DEV fires when a total is at or below the mean of the earlier totals minus k times their SD "
            "(Stiles et al. 2004 used 2, Strauss et al. 2006 used 1). A smaller k catches shallower dips and "
            "flags more stable clients: on the simulation, k 1.5 (floor 3) flags 17% of stable clients "
            "instead of 14%."
        ),
    ),
    "sd_floor": RuleText(
        _l("Smallest SD the deviation rule uses (SD floor)"),
        _l("points"),
        _l(
            "Ceiling-bunched scores have tiny SDs, so without a floor a one-point dip would look like a rupture "
            "(after Gumz et al. 2012). A lower floor catches smaller dips on steady clients at the cost of more "
            "false alerts: on the simulation, floor 2 with k 2 gives 1.9 false alerts per 100 stable sessions "
            "instead of 1.3 and flags 20% of stable clients."
        ),
    ),
    "repair_window": RuleText(
        _l("Sessions an alliance alert may stay open before it counts as unrepaired"),
        _l("sessions"),
        _l("After this many further sessions without a return to the baseline, a case review is opened (design)."),
    ),
    "silence_days": RuleText(
        _l("Days without an answer after a rupture before a review"),
        _l("days"),
        _l("A rupture followed by silence is the classic drop-out path; a review opens after this long (design)."),
    ),
    "component_threshold": RuleText(
        _l("Points one component must fall below its own mean"),
        _l("points"),
        _l(
            "COMPONENT_DROP names the component that fell (design). At 3 points it adds most to the detection "
            "of 4-6 point dips (69% of 4.5-point dips with totals and components, 32% with totals alone); at 4, "
            "detection of 6-point dips falls from 94% to 86% on the simulation."
        ),
    ),
    "perspective_gap": RuleText(
        _l("Points the therapist's rating may exceed the client's"),
        _l("points"),
        _l(
            "PERSPECTIVE_GAP fires when the therapist sees a better partnership than the client (design). A "
            "larger gap opens fewer alerts: at 8 points 12% of stable simulated clients are flagged instead of "
            "14%, with detection within a point."
        ),
    ),
    "tension_threshold": RuleText(
        _l("Tension answer that opens an alert (0 none, 1 a little, 2 somewhat, 3 a lot)"),
        _l("or more"),
        _l(
            "CLINICAL.md opens an alert from 'somewhat' (2). With every rule on, that flags 18% of stable "
            "simulated clients, above the 15% target; from 'a lot' (3) it flags 14% and still detects 97% of "
            "8-point and 94% of 6-point dips, at the cost of catching fewer small dips (3 points: 31% instead "
            "of 47%; 4.5 points: 74% instead of 81%). 'Somewhat' still shows in the session's evidence."
        ),
    ),
    "not_on_track_checkpoint": RuleText(
        _l("Administration at which the not-on-track check runs"),
        _l("(counting the first score as 1)"),
        _l(
            "Counted from the first score (that one is the first); if that administration is incomplete, the "
            "check runs at the next complete one. CLINICAL.md checks at the 4th: on the simulated PHQ-9 "
            "caseload that flags 29% of clients (target 20% or less; ACORN flags about 15%). At the 7th it "
            "flags 18%, but later, and clients with fewer than 7 scores are never checked (a heuristic until "
            "the practice's expected-recovery model is fitted)."
        ),
    ),
    "risk_window_minutes": RuleText(
        _l("Minutes before an unacknowledged risk alert is escalated"),
        _l("minutes"),
        _l("A risk answer is escalated to the supervisor when nobody acknowledges it within this time."),
    ),
}

SOURCE_LABELS = {
    "default": _l("Rapport's default"),
    "calibration": _l("calibrated from the practice's data"),
    "person": _l("changed by a person"),
}


@dataclass(frozen=True)
class RuleRow:
    """One threshold on the page."""

    value: RuleValue
    text: RuleText
    limits: NumberRange
    spec: float | None
    changed_by: str | None


def _rows() -> list[RuleRow]:
    session = db_session()
    rows = []
    for value in rules_in_force(session, risk_window_minutes=current_settings().risk_window_minutes):
        who = session.get(User, value.version.changed_by_id) if value.version and value.version.changed_by_id else None
        rows.append(
            RuleRow(
                value=value,
                text=TEXTS[value.name],
                limits=LIMITS[value.name],
                spec=RULE_SPEC_VALUES.get(value.name, value.default),
                changed_by=who.name if who else None,
            )
        )
    return rows


def _page(errors: dict[str, str], values: dict[str, str], status: int = 200) -> tuple[str, int]:
    return (
        render_template("admin/alert_rules.html", rows=_rows(), errors=errors, values=values, sources=SOURCE_LABELS),
        status,
    )


@bp.get("/rules", endpoint="alert_rules")
@allow(Role.ADMIN, Role.MANAGER)
def alert_rules() -> tuple[str, int]:
    """The alert rules' thresholds in force, each with its source, and a form to change it."""
    return _page({}, {})


def _parse(raw: str, limits: NumberRange) -> float | int | None:
    if not raw or len(raw) > 12:
        return None
    try:
        number = float(raw.replace(",", "."))
    except ValueError:
        return None
    if limits.decimals == 0:
        return int(number) if number.is_integer() else None
    return int(number) if number.is_integer() else number


@bp.post("/rules/<name>", endpoint="alert_rule_change")
@allow(Role.ADMIN, Role.MANAGER)
def alert_rule_change(name: str) -> Response | tuple[str, int]:
    """Store the thresholds with this one changed as a new version, with the reason given (audited)."""
    limits = LIMITS.get(name)
    if limits is None:
        abort(404)
    raw = request.form.get("value", "").strip()
    reason = request.form.get("reason", "").strip()
    value = _parse(raw, limits)
    error = None
    if value is None or not limits.accepts(value):
        error = _(
            "Give a number from %(low)s to %(high)s (at most %(decimals)d decimals).",
            low=local_number(limits.low),
            high=local_number(limits.high),
            decimals=limits.decimals,
        )
    elif not reason:
        error = _("Say in a few words why it changes: the reason is kept with the setting's history.")
    elif len(reason) > MAX_REASON:
        error = _("Please keep the reason under %(n)d characters.", n=MAX_REASON)
    if error is None:
        try:
            change_rules(
                db_session(),
                {name: value},
                user_id=current_account().id,
                reason=reason,
                risk_window_minutes=current_settings().risk_window_minutes,
            )
        except NothingChanged as exc:
            error = translate(exc.message)
        except InvalidSetting:
            error = _("That value is outside what this setting allows.")
    if error is not None:
        return _page({name: error}, {name: raw, "reason": reason}, 400)
    commit()
    assert value is not None
    flash(_("Saved: %(label)s is now %(value)s.", label=TEXTS[name].label, value=local_number(value)))
    return redirect(url_for("admin.alert_rules"), code=303)
