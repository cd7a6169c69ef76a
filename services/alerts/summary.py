"""Plain-language lines for alerts and their evidence ("Partnership score fell from 36 to 27; largest drop: ...").

The stored `Alert.summary` is written in English when the alert changes; pages in another language call
`summarize_alert` again with the reader's language. Evidence entries are the dicts that `evaluation` appends to
`Alert.evidence`: {"kind", "session", "administration_id", "instrument", "at", "evidence", ...}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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
    TENSION,
    UNREPAIRED,
)

LANGUAGES = ("en", "es")
MAX_SUMMARY = 300

COMPONENT_LABELS: Mapping[str, Mapping[str, str]] = {
    "rapport": {"en": "feeling heard and respected", "es": "sentirse escuchado/a y respetado/a"},
    "mutual_goals": {"en": "mutual goals", "es": "objetivos compartidos"},
    "realistic_goals": {"en": "realistic goals", "es": "objetivos realistas"},
    "shared_responsibility": {"en": "shared responsibility", "es": "responsabilidad compartida"},
}

TENSION_LABELS: Mapping[int, Mapping[str, str]] = {
    1: {"en": "a little", "es": "un poco de"},
    2: {"en": "some", "es": "algo de"},
    3: {"en": "a lot of", "es": "mucha"},
}

_TEXT: Mapping[str, Mapping[str, str]] = {
    "drop": {
        "en": "Partnership score fell from {previous} to {score}",
        "es": "La puntuación de colaboración bajó de {previous} a {score}",
    },
    "dev": {
        "en": "Partnership score {score} is well below this client's usual {m}",
        "es": "La puntuación de colaboración ({score}) está muy por debajo de lo habitual en este cliente ({m})",
    },
    "component": {
        "en": "Client's rating of {component} fell to {score} from a usual {mean}",
        "es": "La valoración de {component} bajó a {score} desde un habitual {mean}",
    },
    "tension": {
        "en": "Client reported {amount} tension or misunderstanding in the session",
        "es": "El cliente señaló {amount} tensión o malentendido en la sesión",
    },
    "gap": {
        "en": "You rated the partnership {therapist}, the client {client}",
        "es": "Usted valoró la colaboración con {therapist} y el cliente con {client}",
    },
    "low": {
        "en": "Partnership score {score} is below {cutoff}",
        "es": "La puntuación de colaboración ({score}) está por debajo de {cutoff}",
    },
    "largest_drop": {"en": "largest drop: {component}", "es": "mayor descenso: {component}"},
    "tension_too": {"en": "tension reported", "es": "se señaló tensión"},
    "repaired": {
        "en": "back to {score} at session {session} (repaired)",
        "es": "volvió a {score} en la sesión {session} (reparada)",
    },
    "unrepaired": {
        "en": "not back to its usual level after {sessions} sessions",
        "es": "sin volver a su nivel habitual tras {sessions} sesiones",
    },
    "deterioration": {
        "en": "{instrument} score worsened from {first} to {score} (reliable change is {rc})",
        "es": "La puntuación de {instrument} empeoró de {first} a {score} (el cambio fiable es {rc})",
    },
    "not_on_track": {
        "en": "{instrument} not on track at session {session}: {first} at the start, {score} now "
        "(expected at least {needed} points better; a rule of thumb)",
        "es": "{instrument} no va según lo esperado en la sesión {session}: {first} al inicio, {score} ahora "
        "(se esperaba al menos {needed} puntos de mejora; una regla práctica)",
    },
    "off_track": {
        "en": "{instrument} score {score} is outside the expected range for this point in therapy",
        "es": "La puntuación de {instrument} ({score}) está fuera del rango esperado en este punto de la terapia",
    },
    "risk": {
        "en": "Risk question answered above 0 on {instrument} (question {item}): “{question}”, answered “{answer}”",
        "es": "Pregunta de riesgo respondida por encima de 0 en {instrument} (pregunta {item}): «{question}», "
        "respuesta «{answer}»",
    },
    "risk_unknown": {
        "en": "Risk item answered above 0 on {instrument} (question {item}, answer {answer})",
        "es": "Ítem de riesgo respondido por encima de 0 en {instrument} (pregunta {item}, respuesta {answer})",
    },
    "risk_again": {
        "en": "answered above 0 on {count} occasions",
        "es": "respondido por encima de 0 en {count} ocasiones",
    },
    "repaired_line": {
        "en": "Partnership score back to {score}, at or above its baseline of {baseline}: repaired",
        "es": "La puntuación de colaboración volvió a {score}, igual o por encima de su referencia de {baseline}: "
        "reparada",
    },
    "unrepaired_line": {
        "en": "Still below its baseline of {baseline} after {sessions} sessions: a case review is due",
        "es": "Sigue por debajo de su referencia de {baseline} tras {sessions} sesiones: "
        "corresponde una revisión del caso",
    },
    "something": {"en": "Something to look at", "es": "Algo que revisar"},
}


def number(value: object) -> str:
    """Return a score for people: 27 rather than 27.0, and one decimal otherwise (35.75 -> 35.8)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.1f}"


def component_label(component: str, language: str = "en") -> str:
    """Return a component's plain name (mutual_goals -> "mutual goals")."""
    labels = COMPONENT_LABELS.get(component)
    if labels is None:
        return component.replace("_", " ")
    return labels.get(language, labels["en"])


def describe_signal(kind: str, evidence: Mapping[str, Any], *, instrument: str = "", language: str = "en") -> str:
    """Return one plain-language line for a signal and its evidence (for charts, lists and screen readers)."""
    lang = language if language in LANGUAGES else "en"
    ev = evidence
    if kind == RUPTURE_DROP:
        return _t("drop", lang, previous=number(ev.get("previous")), score=number(ev.get("score")))
    if kind == RUPTURE_DEV:
        return _t("dev", lang, score=number(ev.get("score")), m=number(ev.get("m")))
    if kind == COMPONENT_DROP:
        return _t(
            "component",
            lang,
            component=component_label(str(ev.get("component", "")), lang),
            score=number(ev.get("score")),
            mean=number(ev.get("mean")),
        )
    if kind == TENSION:
        return _t("tension", lang, amount=_tension_amount(ev.get("tension"), lang))
    if kind == PERSPECTIVE_GAP:
        return _t("gap", lang, therapist=number(ev.get("therapist_total")), client=number(ev.get("client_total")))
    if kind == LOW_ALLIANCE:
        return _t("low", lang, score=number(ev.get("score")), cutoff=number(ev.get("cutoff")))
    if kind == REPAIRED:
        return _t("repaired_line", lang, score=number(ev.get("score")), baseline=number(ev.get("baseline")))
    if kind == UNREPAIRED:
        return _t(
            "unrepaired_line", lang, baseline=number(ev.get("baseline")), sessions=number(ev.get("sessions_open"))
        )
    if kind == RELIABLE_DETERIORATION:
        return _t(
            "deterioration",
            lang,
            instrument=instrument,
            first=number(ev.get("first")),
            score=number(ev.get("score")),
            rc=number(ev.get("rc")),
        )
    if kind == NOT_ON_TRACK:
        return _t(
            "not_on_track",
            lang,
            instrument=instrument,
            session=number(ev.get("session", "")),
            first=number(ev.get("first")),
            score=number(ev.get("score")),
            needed=number(ev.get("needed")),
        )
    if kind == OFF_TRACK:
        return _t("off_track", lang, instrument=instrument, score=number(ev.get("score")))
    if kind == RISK:
        item_id = str(ev.get("item", ""))
        wording = risk_item_wording(instrument, item_id, ev.get("answer"), language=lang)
        if wording is None:
            return _t(
                "risk_unknown", lang, instrument=instrument, item=_item_number(item_id), answer=number(ev.get("answer"))
            )
        question, answer = wording
        return _t("risk", lang, instrument=instrument, item=_item_number(item_id), question=question, answer=answer)
    return _t("something", lang)


def risk_item_wording(instrument: str, item_id: str, answer: object, *, language: str = "en") -> tuple[str, str] | None:
    """The risk item's question and the chosen answer's label in a language, from the instrument's definition."""
    try:
        item = load_instrument(instrument).item(item_id)
    except (UnknownInstrumentError, KeyError):
        return None
    question = item.text.get(language) or item.text.get("en")
    label = next(
        (
            option.label.get(language) or option.label.get("en")
            for option in item.options
            if isinstance(answer, int | float) and not isinstance(answer, bool) and option.value == float(answer)
        ),
        None,
    )
    if not question or not label:
        return None
    return question, label


def summarize_alert(kind: str, entries: Sequence[Mapping[str, Any]], *, language: str = "en") -> str:
    """Return the alert's one-line reason: what opened it, the largest component drop, and how it stands now."""
    lang = language if language in LANGUAGES else "en"
    if not entries:
        return _t("something", lang)
    if kind == "alliance":
        line = _alliance_summary(entries, lang)
    elif kind == "risk":
        risks = [entry for entry in entries if entry.get("kind") == RISK]
        first = risks[0] if risks else entries[0]
        line = _describe_entry(first, lang)
        if len({entry.get("administration_id") for entry in risks}) > 1:
            line += "; " + _t("risk_again", lang, count=len({entry.get("administration_id") for entry in risks}))
    else:
        ranked = sorted(entries, key=lambda entry: 0 if entry.get("kind") == RELIABLE_DETERIORATION else 1)
        line = _describe_entry(ranked[0], lang)
    return _clip(line)


def _alliance_summary(entries: Sequence[Mapping[str, Any]], lang: str) -> str:
    opened_session = entries[0].get("session")
    opening = [
        entry for entry in entries if entry.get("session") == opened_session and entry.get("kind") in OPENING_KINDS
    ]
    by_kind = {str(entry.get("kind")): entry for entry in opening}
    primary_order = (RUPTURE_DROP, RUPTURE_DEV, COMPONENT_DROP, TENSION, PERSPECTIVE_GAP)
    primary = next((by_kind[k] for k in primary_order if k in by_kind), entries[0])
    parts = [_describe_entry(primary, lang)]
    component = None
    if COMPONENT_DROP in by_kind and primary.get("kind") != COMPONENT_DROP:
        component = by_kind[COMPONENT_DROP]["evidence"].get("component")
    elif primary.get("kind") != COMPONENT_DROP:
        largest = primary.get("largest_drop")
        if isinstance(largest, Mapping):
            component = largest.get("component")
    if component:
        parts.append(_t("largest_drop", lang, component=component_label(str(component), lang)))
    if TENSION in by_kind and primary.get("kind") != TENSION:
        parts.append(_t("tension_too", lang))
    last = entries[-1]
    if last.get("kind") == REPAIRED:
        parts.append(_t("repaired", lang, score=number(last["evidence"].get("score")), session=last.get("session")))
    else:
        unrepaired = [entry for entry in entries if entry.get("kind") == UNREPAIRED]
        if unrepaired:
            sessions = unrepaired[-1]["evidence"].get("sessions_open")
            parts.append(_t("unrepaired", lang, sessions=number(sessions)))
    return "; ".join(parts)


def _describe_entry(entry: Mapping[str, Any], lang: str) -> str:
    evidence = dict(entry.get("evidence") or {})
    evidence.setdefault("session", entry.get("session"))
    return describe_signal(
        str(entry.get("kind", "")), evidence, instrument=str(entry.get("instrument", "")), language=lang
    )


def _tension_amount(value: object, lang: str) -> str:
    level = int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 3
    labels = TENSION_LABELS.get(min(max(level, 1), 3), TENSION_LABELS[3])
    return labels[lang]


def _item_number(item_id: str) -> str:
    # Item ids end in their number ("phq9_9"); anything else is shown as it is.
    tail = item_id.rsplit("_", 1)[-1]
    return tail if tail.isdigit() else item_id


def _t(key: str, lang: str, **values: object) -> str:
    return _TEXT[key][lang].format(**values)


def _clip(line: str) -> str:
    return line if len(line) <= MAX_SUMMARY else line[: MAX_SUMMARY - 1].rstrip() + "…"


def alert_line(kind: str, stored: str | None, entries: Sequence[Mapping[str, Any]], *, language: str = "en") -> str:
    """An alert's one-line reason in a language: the stored (English) summary when it serves, else written anew."""
    if language == "en" and stored and kind != "risk":
        return stored  # risk lines are written anew: they quote the question, and older rows did not
    return summarize_alert(kind, entries, language=language)
