"""The signal record every rule returns, and the fixed facts about each kind of signal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from services.i18n import N_

RUPTURE_DEV: Final = "RUPTURE_DEV"
RUPTURE_DROP: Final = "RUPTURE_DROP"
TENSION: Final = "TENSION"
COMPONENT_DROP: Final = "COMPONENT_DROP"
PERSPECTIVE_GAP: Final = "PERSPECTIVE_GAP"
LOW_ALLIANCE: Final = "LOW_ALLIANCE"
REPAIRED: Final = "REPAIRED"
UNREPAIRED: Final = "UNREPAIRED"
SILENT_AFTER_RUPTURE: Final = "SILENT_AFTER_RUPTURE"
RELIABLE_DETERIORATION: Final = "RELIABLE_DETERIORATION"
NOT_ON_TRACK: Final = "NOT_ON_TRACK"
OFF_TRACK: Final = "OFF_TRACK"
RISK: Final = "RISK"

# Order matters: the per-session list is sorted by it, so output is deterministic.
ALLIANCE_KINDS: Final = (
    RUPTURE_DEV,
    RUPTURE_DROP,
    TENSION,
    COMPONENT_DROP,
    PERSPECTIVE_GAP,
    LOW_ALLIANCE,
    REPAIRED,
    UNREPAIRED,
)
OUTCOME_KINDS: Final = (RISK, RELIABLE_DETERIORATION, OFF_TRACK, NOT_ON_TRACK)

# The signals that open an alliance alert when none is open (CLINICAL.md section 3).
OPENING_KINDS: Final = frozenset({RUPTURE_DEV, RUPTURE_DROP, TENSION, COMPONENT_DROP, PERSPECTIVE_GAP})

SEVERITY: Final[Mapping[str, str]] = {
    RISK: "risk",
    RELIABLE_DETERIORATION: "red",
    OFF_TRACK: "amber",
    NOT_ON_TRACK: "amber",
    RUPTURE_DEV: "amber",
    RUPTURE_DROP: "amber",
    TENSION: "amber",
    COMPONENT_DROP: "amber",
    PERSPECTIVE_GAP: "amber",
    UNREPAIRED: "amber",
    SILENT_AFTER_RUPTURE: "amber",
    LOW_ALLIANCE: "info",
    REPAIRED: "info",
}

# Where each rule comes from (msgids: pages translate them); "design" rules are ours and the UI must say so.
SOURCES: Final[Mapping[str, str]] = {
    RUPTURE_DEV: N_("Stiles et al. 2004; Strauss et al. 2006; SD floor after Gumz et al. 2012"),
    RUPTURE_DROP: N_("Jacobson & Truax 1991 (reliable change on the alliance score)"),
    TENSION: N_("post-session questionnaire tradition (Safran & Muran)"),
    COMPONENT_DROP: "design",
    PERSPECTIVE_GAP: "design",
    LOW_ALLIANCE: N_("session-rating convention (total below 36 of 40)"),
    REPAIRED: N_("Stiles et al. 2004 (return to the prior level)"),
    UNREPAIRED: "design",
    SILENT_AFTER_RUPTURE: "design",
    RELIABLE_DETERIORATION: N_("Jacobson & Truax 1991"),
    NOT_ON_TRACK: N_("design (rational heuristic until the practice's expected-trajectory model is fitted)"),
    OFF_TRACK: N_("Finch, Lambert & Schaalje 2001 (expected trajectory fitted on the practice's data)"),
    RISK: N_("instrument risk item"),
}


@dataclass(frozen=True, slots=True)
class Signal:
    """One rule firing at one session (1-based), with the numbers that made it fire."""

    kind: str
    session: int
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def opens_alert(self) -> bool:
        """Return whether this kind of signal opens an alert when none is open."""
        return self.kind in OPENING_KINDS

    @property
    def severity(self) -> str:
        """Return "risk", "red", "amber" or "info"."""
        return SEVERITY[self.kind]

    @property
    def is_design_rule(self) -> bool:
        """Return whether the rule is ours rather than the literature's (the UI labels it)."""
        return SOURCES[self.kind].startswith("design")
