"""Words and numbers for the clinician's pages: signal names, evidence figures, how sure a rule is, alert ages.

Everything here is display: the rules and their evidence come from services; this module only names them in the
reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from services.alerts.queries import EvidenceLine
from services.alerts.summary import component_label
from services.db import utcnow
from services.measures import UnknownInstrumentError, load_instrument
from services.signals import (
    COMPONENT_DROP,
    LOW_ALLIANCE,
    NOT_ON_TRACK,
    OFF_TRACK,
    OPENING_KINDS,
    PERSPECTIVE_GAP,
    RELIABLE_DETERIORATION,
    REPAIRED,
    RISK,
    RUPTURE_DEV,
    RUPTURE_DROP,
    SOURCES,
    TENSION,
    UNREPAIRED,
)
from web.i18n import DASH

SIGNAL_NAMES: dict[str, LazyString] = {
    RUPTURE_DEV: _l("Well below the usual level"),
    RUPTURE_DROP: _l("Sharp drop from last session"),
    TENSION: _l("Tension reported"),
    COMPONENT_DROP: _l("One part of the partnership dropped"),
    PERSPECTIVE_GAP: _l("You and the client see it differently"),
    LOW_ALLIANCE: _l("Below 36: talk about the partnership"),
    REPAIRED: _l("Back to the usual level"),
    UNREPAIRED: _l("Not back to the usual level"),
    RELIABLE_DETERIORATION: _l("Reliably worse than at the start"),
    NOT_ON_TRACK: _l("Not on track (rule of thumb)"),
    OFF_TRACK: _l("Off the expected track"),
    RISK: _l("Risk item above 0"),
}

KIND_NAMES: dict[str, LazyString] = {
    "risk": _l("Risk"),
    "alliance": _l("Partnership"),
    "outcome": _l("Outcome"),
}

STATUS_NAMES: dict[str, LazyString] = {
    "open": _l("Open"),
    "acknowledged": _l("Acknowledged"),
    "resolved": _l("Resolved"),
}

CASELOAD_STATUS_NAMES: dict[str, LazyString] = {
    "risk": _l("Risk alert"),
    "alliance": _l("Partnership alert"),
    "outcome": _l("Outcome alert"),
    "partnership": _l("Talk about the partnership"),
    "ok": _l("No alert"),
}

RESOLUTION_NAMES: dict[str, LazyString] = {
    "repaired": _l("Repaired"),
    "not_a_rupture": _l("Not a rupture"),
    "client_ended": _l("Client ended therapy"),
    "other": _l("Other (say why)"),
    "contacted_client": _l("Contacted the client"),
    "safety_plan_reviewed": _l("Safety plan reviewed"),
    "emergency_services": _l("Emergency services involved"),
    "not_a_risk": _l("Not a risk"),
    "plan_reviewed": _l("Treatment plan reviewed"),
    "referred_stepped_up": _l("Referred or stepped up"),
    "client_improving": _l("Client improving"),
    "episode_ended": _l("Episode ended"),
}

# The steps a clinician records on risk and outcome alerts (partnership alerts record repair steps).
STEP_NAMES: dict[str, LazyString] = {
    "contacted_client": _l("I contacted the client"),
    "safety_plan_reviewed": _l("I reviewed the safety plan with the client"),
    "emergency_services": _l("I involved emergency services"),
    "plan_reviewed": _l("I reviewed the treatment plan"),
    "referred_stepped_up": _l("I referred the client or stepped up care"),
    "discussed_progress": _l("I talked about progress with the client"),
}

ACTION_NAMES: dict[str, LazyString] = {
    "acknowledged": _l("Acknowledged"),
    "note": _l("Note"),
    "repair_step": _l("Repair step"),
    "step": _l("Step taken"),
    "resolved": _l("Resolved"),
    "escalated": _l("Escalated"),
}

# Who an escalation went to.
ESCALATED_TO: dict[str, LazyString] = {
    "on_call": _l("the on-call list"),
    "supervisor": _l("the supervisor"),
}

# What to do, by kind of alert: the first lines of the alert page.
WHAT_TO_DO: dict[str, LazyString] = {
    "risk": _l(
        "Contact the client today to check they are safe, and review their safety plan with them. If you believe "
        "they are in immediate danger, involve emergency services. Record what you did below."
    ),
    "outcome": _l(
        "Talk with the client about how things are going, review the treatment plan, and consider whether a "
        "referral or more intensive care would help. Record what you did below."
    ),
    "alliance": _l(
        "Talk about the partnership with the client at the next session: ask how the work together feels and "
        "what could be different. The suggestions below are prompts for your judgement."
    ),
}
RISK_NOT_WATCHED = _l(
    "The survey is not watched in real time: the client was shown the practice's crisis information when they answered."
)
# What happens after an alert of this kind is closed.
AFTER_CLOSE: dict[str, LazyString] = {
    "risk": _l("This alert is closed. If the client answers the risk question above 0 again, a new alert opens."),
    "outcome": _l("This alert is closed. If the scores show a problem again, a new alert opens by itself."),
    "alliance": _l("This alert is closed. If the partnership drops again, a new alert opens by itself."),
}

TOPIC_NAMES: dict[str, LazyString] = {
    "rapport": _l("Feeling heard and respected"),
    "mutual_goals": _l("Mutual goals"),
    "realistic_goals": _l("Realistic goals"),
    "shared_responsibility": _l("Shared responsibility"),
    "tension": _l("Tension in the session"),
    "general": _l("The partnership in general"),
}

# The figures of a signal's evidence, in the order a clinician reads them, with their names.
NUMBER_NAMES: dict[str, LazyString] = {
    "score": _l("score"),
    "previous": _l("previous score"),
    "drop": _l("drop"),
    "m": _l("usual level (m, mean of earlier sessions)"),
    "s": _l("spread (s, SD with a floor of 3)"),
    "threshold": _l("threshold"),
    "rc": _l("reliable change"),
    "cutoff": _l("cutoff"),
    "component": _l("component"),
    "mean": _l("usual rating of the component"),
    "tension": _l("tension answer (0-3)"),
    "therapist_total": _l("your rating"),
    "client_total": _l("client's rating"),
    "gap": _l("gap"),
    "baseline": _l("baseline"),
    "first": _l("first score"),
    "needed": _l("improvement expected"),
    "item": _l("item"),
    "answer": _l("answer"),
    "sessions_open": _l("sessions since the alert opened"),
    "earlier": _l("earlier scores"),
}
EARLIER_SHOWN = 12
HIDDEN_NUMBERS = frozenset(
    {"alert", "alert_id", "opened_session", "administration_id", "client_administration_id", "late", "session"}
)


@dataclass(frozen=True)
class Figure:
    """One named number of the evidence ("threshold", "29.75")."""

    name: str
    value: str


def signal_name(kind: str) -> str:
    """The plain name of a kind of signal."""
    name = SIGNAL_NAMES.get(kind)
    return str(name) if name is not None else kind


def figures(line: EvidenceLine, *, largest_drop: Mapping[str, Any] | None = None) -> list[Figure]:
    """The evidence's numbers, named, in reading order (lists joined; internal bookkeeping left out)."""
    shown: list[Figure] = []
    numbers = line.numbers
    for key in NUMBER_NAMES:
        if key not in numbers or key in HIDDEN_NUMBERS or key == "baseline":
            continue
        if line.kind == RISK and key in ("item", "answer"):
            continue  # the sentence quotes the question and the answer
        value = numbers[key]
        if value is None:
            continue
        shown.append(Figure(str(NUMBER_NAMES[key]), _value_text(key, value)))
    if largest_drop:
        shown.append(
            Figure(
                _("largest drop since last session"),
                _(
                    "%(component)s, %(before)s to %(after)s",
                    component=component_label(str(largest_drop.get("component", "")), _language()),
                    before=precise(largest_drop.get("from")),
                    after=precise(largest_drop.get("to")),
                ),
            )
        )
    return shown


def precise(value: object) -> str:
    """A figure with up to two decimals and no trailing zeros (35.75, 3, 29.75), as CLINICAL.md writes them."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    text = f"{float(value):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _value_text(key: str, value: Any) -> str:
    if key == "component":
        return component_label(str(value), _language())
    if isinstance(value, list):
        shown = value[-EARLIER_SHOWN:]
        return ("…, " if len(value) > len(shown) else "") + ", ".join(precise(v) for v in shown)
    return precise(value)


def _language() -> str:
    from flask_babel import get_locale

    return str(get_locale() or "en")


@dataclass(frozen=True)
class Certainty:
    """How sure a piece of evidence is: its source, and whether it is a design rule or a rule of thumb."""

    kind: str
    source: str
    design: bool


def certainty(kinds: Sequence[str]) -> list[Certainty]:
    """The source of each rule that fired, each once, opening rules first."""
    seen: list[str] = []
    for kind in sorted(kinds, key=lambda k: (k not in OPENING_KINDS, k)):
        if kind not in seen and kind in SOURCES:
            seen.append(kind)
    return [Certainty(kind=k, source=SOURCES[k], design=SOURCES[k].startswith("design")) for k in seen]


def unvalidated_instruments(codes: Sequence[str]) -> list[str]:
    """The titles of the instruments among codes that are not validated (the page says so)."""
    titles: list[str] = []
    for code in dict.fromkeys(codes):
        try:
            instrument = load_instrument(code)
        except UnknownInstrumentError:
            continue
        if not instrument.validated:
            title = instrument.title.get(_language(), instrument.title.get("en", code))
            if title not in titles:
                titles.append(title)
    return titles


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in words ("3 days ago")."""
    if moment is None:
        return DASH
    delta = (now or utcnow()) - moment
    return str(_("%(age)s ago", age=format_timedelta(delta, threshold=0.9)))


def clinical_context() -> dict[str, Any]:
    """Template names shared by the clinician's and the supervisor's pages (a blueprint context processor)."""
    from flask_babel import get_locale

    return {
        "kind_names": KIND_NAMES,
        "status_names": STATUS_NAMES,
        "caseload_status_names": CASELOAD_STATUS_NAMES,
        "resolution_names": RESOLUTION_NAMES,
        "step_names": STEP_NAMES,
        "age": age,
        "language": str(get_locale() or "en"),
    }
