"""Repair suggestions per partnership component (CLINICAL.md section 5), in our own words, English and Spanish.

Each suggestion has a stable key ("mutual_goals.choose_focus_together") so a recorded repair step can name the
suggestion it followed while the wording is free to improve. They are prompts for a clinician's judgement, not a
protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    text: Mapping[str, str]

    def in_language(self, language: str) -> str:
        """Return the wording in a language (English when it has no such translation)."""
        return self.text.get(language, self.text["en"])


def _s(topic: str, name: str, en: str, es: str) -> RepairSuggestion:
    return RepairSuggestion(key=f"{topic}.{name}", topic=topic, text={"en": en, "es": es})


SUGGESTIONS: Mapping[str, tuple[RepairSuggestion, ...]] = {
    "rapport": (
        _s(
            "rapport",
            "ask_how_it_felt",
            "Open next session by asking how the last one felt for them, and let the answer land before moving on.",
            "Empiece la próxima sesión preguntando cómo vivió la anterior, y deje espacio a la respuesta antes de "
            "seguir.",
        ),
        _s(
            "rapport",
            "reflect_back",
            "Slow down and reflect back what you hear in their own words, so they can correct you where you missed.",
            "Vaya más despacio y devuelva lo que escucha con sus propias palabras, para que pueda corregirle donde "
            "no le entendió.",
        ),
        _s(
            "rapport",
            "show_curiosity",
            "Show curiosity about their week and what matters to them outside the problem you are working on.",
            "Muestre interés por su semana y por lo que le importa más allá del problema que están trabajando.",
        ),
        _s(
            "rapport",
            "no_judgement",
            "Check whether anything you said could have sounded like a judgement, and name it openly if so.",
            "Revise si algo de lo que dijo pudo sonar a juicio y, si es así, nómbrelo abiertamente.",
        ),
    ),
    "mutual_goals": (
        _s(
            "mutual_goals",
            "choose_focus_together",
            "Agree the focus of the next session together at its start, instead of picking up where you left off.",
            "Acuerden juntos el foco de la próxima sesión al empezarla, en lugar de continuar donde lo dejaron.",
        ),
        _s(
            "mutual_goals",
            "revisit_goals",
            "Revisit the goals set at intake: ask which still matter, which have changed, and what is missing.",
            "Repasen los objetivos fijados al inicio: pregunte cuáles siguen importando, cuáles han cambiado y qué "
            "falta.",
        ),
        _s(
            "mutual_goals",
            "explain_the_why",
            "Explain why you suggest a task or topic and ask whether it makes sense to them; be ready to change "
            "course.",
            "Explique por qué propone una tarea o un tema y pregunte si le encuentra sentido; esté dispuesto/a a "
            "cambiar de rumbo.",
        ),
    ),
    "realistic_goals": (
        _s(
            "realistic_goals",
            "smaller_steps",
            "Break the current aim into a smaller step the client believes they can manage before the next session.",
            "Divida el objetivo actual en un paso más pequeño que el cliente crea poder dar antes de la próxima "
            "sesión.",
        ),
        _s(
            "realistic_goals",
            "talk_about_time",
            "Talk plainly about how many sessions are left and what can reasonably change in that time.",
            "Hable con claridad de cuántas sesiones quedan y de lo que puede cambiar razonablemente en ese tiempo.",
        ),
        _s(
            "realistic_goals",
            "name_progress",
            "Point to progress already made, however small, so that hope rests on something they have seen.",
            "Señale los avances ya logrados, por pequeños que sean, para que la esperanza se apoye en algo visto.",
        ),
    ),
    "shared_responsibility": (
        _s(
            "shared_responsibility",
            "agree_next_step",
            "End each session by agreeing together what the client will try before the next one, in their words.",
            "Termine cada sesión acordando juntos qué intentará el cliente antes de la siguiente, con sus palabras.",
        ),
        _s(
            "shared_responsibility",
            "offer_choices",
            "Offer choices rather than instructions, and respect the client's decisions about their own care.",
            "Ofrezca opciones en lugar de instrucciones, y respete las decisiones del cliente sobre su tratamiento.",
        ),
        _s(
            "shared_responsibility",
            "practical_support",
            "Ask what got in the way of last week's plan and what practical help would make it easier.",
            "Pregunte qué dificultó el plan de la semana pasada y qué ayuda práctica lo haría más fácil.",
        ),
    ),
    "tension": (
        _s(
            "tension",
            "name_it",
            "Name the tension gently next session and ask about it, without defending yourself or explaining it away.",
            "Nombre la tensión con delicadeza en la próxima sesión y pregunte por ella, sin defenderse ni quitarle "
            "importancia.",
        ),
        _s(
            "tension",
            "own_your_part",
            "Acknowledge your share in the misunderstanding; a sincere 'I think I got that wrong' goes a long way.",
            "Reconozca su parte en el malentendido; un sincero 'creo que no lo entendí bien' ayuda mucho.",
        ),
        _s(
            "tension",
            "welcome_criticism",
            "Tell the client that criticism of the therapy is welcome and useful, and thank them when they offer it.",
            "Dígale al cliente que las críticas a la terapia son bienvenidas y útiles, y agradézcaselas cuando las "
            "haga.",
        ),
    ),
    "general": (
        _s(
            "general",
            "talk_about_the_relationship",
            "Set aside a few minutes to talk openly about how the two of you are working together.",
            "Reserve unos minutos para hablar abiertamente de cómo están trabajando juntos.",
        ),
        _s(
            "general",
            "invite_feedback",
            "Ask what would make the sessions more useful for them, and act on at least one thing they say.",
            "Pregunte qué haría las sesiones más útiles y ponga en práctica al menos una de sus propuestas.",
        ),
        _s(
            "general",
            "keep_it_safe",
            "Make sure the room feels safe: confidentiality, a steady pace, and no pressure to go where they are "
            "not ready to go.",
            "Asegúrese de que el espacio se siente seguro: confidencialidad, un ritmo tranquilo y sin presión para "
            "ir donde aún no quiere ir.",
        ),
        _s(
            "general",
            "supervision",
            "Bring the case to supervision and look at the session together with a colleague.",
            "Lleve el caso a supervisión y revisen juntos la sesión con un colega.",
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
