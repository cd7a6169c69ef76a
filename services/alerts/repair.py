"""Repair suggestions per partnership component (CLINICAL.md section 5), in our own words (Spanish in the catalog).

Each suggestion has a stable key ("mutual_goals.choose_focus_together") so a recorded repair step can name the
suggestion it followed while the wording is free to improve. They are prompts for a clinician's judgement, not a
protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.i18n import N_, translator_for
from services.signals import COMPONENT_DROP, PERSPECTIVE_GAP, TENSION

REPAIR_TOPICS: tuple[str, ...] = (
    "rapport",
    "mutual_goals",
    "realistic_goals",
    "shared_responsibility",
    "tension",
    "general",
)


@dataclass(frozen=True, slots=True)
class RepairSuggestion:
    """One concrete step a clinician could take, for one component of the partnership."""

    key: str
    topic: str
    text: str  # the English wording, a msgid of the catalog

    def in_language(self, language: str) -> str:
        """Return the wording in a language (English when it has no such translation)."""
        return translator_for(language).gettext(self.text)


def _s(topic: str, name: str, text: str) -> RepairSuggestion:
    return RepairSuggestion(key=f"{topic}.{name}", topic=topic, text=text)


SUGGESTIONS: Mapping[str, tuple[RepairSuggestion, ...]] = {
    "rapport": (
        _s(
            "rapport",
            "ask_how_it_felt",
            N_("Open next session by asking how the last one felt for them, and let the answer land before moving on."),
        ),
        _s(
            "rapport",
            "reflect_back",
            N_(
                "Slow down and reflect back what you hear in their own words, so they can correct you where you missed."
            ),
        ),
        _s(
            "rapport",
            "show_curiosity",
            N_("Show curiosity about their week and what matters to them outside the problem you are working on."),
        ),
        _s(
            "rapport",
            "no_judgement",
            N_("Check whether anything you said could have sounded like a judgement, and name it openly if so."),
        ),
    ),
    "mutual_goals": (
        _s(
            "mutual_goals",
            "choose_focus_together",
            N_("Agree the focus of the next session together at its start, instead of picking up where you left off."),
        ),
        _s(
            "mutual_goals",
            "revisit_goals",
            N_("Revisit the goals set at intake: ask which still matter, which have changed, and what is missing."),
        ),
        _s(
            "mutual_goals",
            "explain_the_why",
            N_(
                "Explain why you suggest a task or topic and ask whether it makes sense to them; be ready to change "
                "course."
            ),
        ),
    ),
    "realistic_goals": (
        _s(
            "realistic_goals",
            "smaller_steps",
            N_(
                "Break the current aim into a smaller step the client believes they can manage before the next session."
            ),
        ),
        _s(
            "realistic_goals",
            "talk_about_time",
            N_("Talk plainly about how many sessions are left and what can reasonably change in that time."),
        ),
        _s(
            "realistic_goals",
            "name_progress",
            N_("Point to progress already made, however small, so that hope rests on something they have seen."),
        ),
    ),
    "shared_responsibility": (
        _s(
            "shared_responsibility",
            "agree_next_step",
            N_("End each session by agreeing together what the client will try before the next one, in their words."),
        ),
        _s(
            "shared_responsibility",
            "offer_choices",
            N_("Offer choices rather than instructions, and respect the client's decisions about their own care."),
        ),
        _s(
            "shared_responsibility",
            "practical_support",
            N_("Ask what got in the way of last week's plan and what practical help would make it easier."),
        ),
    ),
    "tension": (
        _s(
            "tension",
            "name_it",
            N_(
                "Name the tension gently next session and ask about it, without defending yourself or explaining it "
                "away."
            ),
        ),
        _s(
            "tension",
            "own_your_part",
            N_("Acknowledge your share in the misunderstanding; a sincere 'I think I got that wrong' goes a long way."),
        ),
        _s(
            "tension",
            "welcome_criticism",
            N_(
                "Tell the client that criticism of the therapy is welcome and useful, and thank them when they offer "
                "it."
            ),
        ),
    ),
    "general": (
        _s(
            "general",
            "talk_about_the_relationship",
            N_("Set aside a few minutes to talk openly about how the two of you are working together."),
        ),
        _s(
            "general",
            "invite_feedback",
            N_("Ask what would make the sessions more useful for them, and act on at least one thing they say."),
        ),
        _s(
            "general",
            "keep_it_safe",
            N_(
                "Make sure the room feels safe: confidentiality, a steady pace, and no pressure to go where they are "
                "not ready to go."
            ),
        ),
        _s(
            "general",
            "supervision",
            N_("Bring the case to supervision and look at the session together with a colleague."),
        ),
    ),
}

_BY_KEY: Mapping[str, RepairSuggestion] = {
    suggestion.key: suggestion for suggestions in SUGGESTIONS.values() for suggestion in suggestions
}


def repair_suggestions(topic: str) -> tuple[RepairSuggestion, ...]:
    """Return the suggestions for a component, "tension" or "general" (general for anything unknown)."""
    return SUGGESTIONS.get(topic, SUGGESTIONS["general"])


def get_suggestion(key: str) -> RepairSuggestion | None:
    """Return the suggestion with this key, if there is one."""
    return _BY_KEY.get(key)


def topics_for_evidence(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return the topics an alert's evidence points to: dropped components first, then tension, then general."""
    topics: list[str] = []
    for entry in entries:
        kind = entry.get("kind")
        evidence = entry.get("evidence") or {}
        if kind == COMPONENT_DROP:
            for item in evidence.get("components") or [evidence]:
                component = item.get("component") if isinstance(item, Mapping) else None
                if component in SUGGESTIONS and component not in topics:
                    topics.append(str(component))
        largest = entry.get("largest_drop")
        if isinstance(largest, Mapping) and largest.get("component") in SUGGESTIONS:
            component = str(largest["component"])
            if component not in topics:
                topics.append(component)
    kinds = {entry.get("kind") for entry in entries}
    if TENSION in kinds and "tension" not in topics:
        topics.append("tension")
    if PERSPECTIVE_GAP in kinds and "general" not in topics:
        topics.append("general")
    if "general" not in topics:
        topics.append("general")
    return topics


def suggestions_for_evidence(entries: Sequence[Mapping[str, Any]]) -> list[RepairSuggestion]:
    """Return the suggestions to show for an alert's evidence, most specific first."""
    return [suggestion for topic in topics_for_evidence(entries) for suggestion in repair_suggestions(topic)]
