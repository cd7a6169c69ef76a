"""What a clinician can do about each kind of alert: the steps they record and the reasons they resolve with.

- risk:     steps "contacted the client", "safety plan reviewed", "emergency services involved"; resolved as one of
            those or "not a risk";
- outcome:  steps "treatment plan reviewed", "referred or stepped up", "talked about progress with the client";
            resolved as "treatment plan reviewed", "referred or stepped up", "client improving" or "other";
- alliance: repair steps (services.alerts.repair); resolved as "repaired", "not a rupture", "client ended" or "other".

"episode_ended" is the system's reason when an alert closes because its episode ended; nobody chooses it.
"""

from __future__ import annotations

from collections.abc import Mapping

RISK = "risk"
OUTCOME = "outcome"
ALLIANCE = "alliance"
EPISODE_ENDED = "episode_ended"

RESOLUTION_REASONS_BY_KIND: Mapping[str, tuple[str, ...]] = {
    RISK: ("contacted_client", "safety_plan_reviewed", "emergency_services", "not_a_risk"),
    OUTCOME: ("plan_reviewed", "referred_stepped_up", "client_improving", "other"),
    ALLIANCE: ("repaired", "not_a_rupture", "client_ended", "other"),
}
# Every reason an alert can carry (the API's enum), the system's included.
RESOLUTION_REASONS: tuple[str, ...] = (
    *dict.fromkeys(reason for reasons in RESOLUTION_REASONS_BY_KIND.values() for reason in reasons),
    EPISODE_ENDED,
)
# Reasons whose note is required (a few words saying why).
NOTE_REQUIRED = frozenset({"other"})

STEPS_BY_KIND: Mapping[str, tuple[str, ...]] = {
    RISK: ("contacted_client", "safety_plan_reviewed", "emergency_services"),
    OUTCOME: ("plan_reviewed", "referred_stepped_up", "discussed_progress"),
    ALLIANCE: (),
}
STEPS: tuple[str, ...] = tuple(dict.fromkeys(step for steps in STEPS_BY_KIND.values() for step in steps))


def resolution_reasons(kind: str) -> tuple[str, ...]:
    """The reasons a person may choose when resolving an alert of this kind."""
    return RESOLUTION_REASONS_BY_KIND.get(kind, ())


def steps_for(kind: str) -> tuple[str, ...]:
    """The steps a clinician can record on an alert of this kind (alliance alerts record repair steps instead)."""
    return STEPS_BY_KIND.get(kind, ())


def has_repair_steps(kind: str) -> bool:
    """Whether the alert is about the partnership, so repair steps apply."""
    return kind == ALLIANCE
