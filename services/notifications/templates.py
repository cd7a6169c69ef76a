"""Message templates. They carry links and the practice's name, never client data beyond a first name."""

from __future__ import annotations

from dataclasses import dataclass
from string import Formatter
from typing import Any


@dataclass(frozen=True)
class MessageTemplate:
    """Subject and body per language; {placeholders} come only from ALLOWED_FIELDS."""

    subject: dict[str, str]
    body: dict[str, str]
    # Client-facing messages get an opt-out line and may greet by first name.
    client_facing: bool = False


# The only values a message may contain. Names, scores, instruments and diagnoses are not among them.
ALLOWED_FIELDS = frozenset({"link", "practice", "first_name", "opt_out_link", "count", "role", "duration"})

# {duration}: how long the survey takes, worded from values["minutes"] (services.surveys.estimate.survey_minutes,
# the figure the survey's first page shows too).
DURATION = {
    "en": ("about a minute", "about {minutes} minutes", "a few minutes"),
    "es": ("alrededor de un minuto", "unos {minutes} minutos", "unos minutos"),
}

TEMPLATES: dict[str, MessageTemplate] = {
    "test_message": MessageTemplate(
        subject={"en": "Rapport test message", "es": "Mensaje de prueba de Rapport"},
        body={
            "en": "This is a test message from {practice}. If you can read it, email delivery works.\n",
            "es": "Este es un mensaje de prueba de {practice}. Si puede leerlo, el correo funciona.\n",
        },
    ),
    "alert": MessageTemplate(
        subject={"en": "Something to look at in Rapport", "es": "Hay algo que revisar en Rapport"},
        body={
            "en": "There is something new for you to look at in Rapport.\n\nOpen it here: {link}\n",
            "es": "Hay algo nuevo que revisar en Rapport.\n\nÁbralo aquí: {link}\n",
        },
    ),
    "alert_digest": MessageTemplate(
        subject={"en": "Your Rapport summary", "es": "Su resumen de Rapport"},
        body={
            "en": "You have {count} item(s) to look at in Rapport.\n\nOpen them here: {link}\n",
            "es": "Tiene {count} elemento(s) que revisar en Rapport.\n\nÁbralos aquí: {link}\n",
        },
    ),
    "escalation": MessageTemplate(
        subject={"en": "Rapport: an item needs attention", "es": "Rapport: un elemento necesita atención"},
        body={
            "en": "An item in Rapport has not been acknowledged in time and was passed to you as {role}.\n\n"
            "Open it here: {link}\n",
            "es": "Un elemento de Rapport no se revisó a tiempo y se le ha pasado como {role}.\n\n"
            "Ábralo aquí: {link}\n",
        },
    ),
    "escalation_digest": MessageTemplate(
        subject={
            "en": "Rapport: {count} items need attention",
            "es": "Rapport: {count} elementos necesitan atención",
        },
        body={
            "en": "{count} items in Rapport have not been acknowledged in time and were passed to you as {role}.\n\n"
            "Open them here: {link}\n",
            "es": "{count} elementos de Rapport no se revisaron a tiempo y se le han pasado como {role}.\n\n"
            "Ábralos aquí: {link}\n",
        },
    ),
    "review_due": MessageTemplate(
        subject={"en": "A case review is due in Rapport", "es": "Una revisión de caso vence en Rapport"},
        body={
            "en": "A case review assigned to you is due soon or overdue.\n\nOpen it here: {link}\n",
            "es": "Una revisión de caso asignada a usted vence pronto o está atrasada.\n\nÁbrala aquí: {link}\n",
        },
    ),
    "report_ready": MessageTemplate(
        subject={
            "en": "Your monthly Rapport report is ready",
            "es": "Su informe mensual de Rapport está listo",
        },
        body={
            "en": "A monthly report is ready to download.\n\nOpen it here: {link}\n",
            "es": "Hay un informe mensual listo para descargar.\n\nÁbralo aquí: {link}\n",
        },
    ),
    "audit_chain_broken": MessageTemplate(
        subject={
            "en": "Rapport: the audit trail check failed",
            "es": "Rapport: la comprobación del registro de auditoría ha fallado",
        },
        body={
            "en": "Tonight's check of the audit trail at {practice} found a row that does not match its hash: "
            "a record may have been altered or removed.\n\nRun `rapport audit verify` to see the first bad row, "
            "and look at the operations page: {link}\n",
            "es": "La comprobación nocturna del registro de auditoría de {practice} ha encontrado una fila que no "
            "coincide con su hash: puede que se haya alterado o borrado un registro.\n\nEjecute `rapport audit "
            "verify` para ver la primera fila incorrecta y revise la página de operaciones: {link}\n",
        },
    ),
    "password_reset": MessageTemplate(
        subject={"en": "Reset your Rapport password", "es": "Restablezca su contraseña de Rapport"},
        body={
            "en": "Someone asked to reset the password of your Rapport account at {practice}.\n\n"
            "To choose a new password, open this link within an hour. It works once:\n{link}\n\n"
            "If you did not ask for this, ignore this message: your password stays as it is.\n",
            "es": "Alguien ha pedido restablecer la contraseña de su cuenta de Rapport en {practice}.\n\n"
            "Para elegir una contraseña nueva, abra este enlace antes de una hora. Solo funciona una vez:\n{link}\n\n"
            "Si no lo ha pedido usted, ignore este mensaje: su contraseña no cambia.\n",
        },
    ),
    "invitation": MessageTemplate(
        subject={"en": "A quick check-in from {practice}", "es": "Una breve consulta de {practice}"},
        body={
            "en": "Hello {first_name},\n\n{practice} would like to hear how things are going. It takes "
            "{duration}:\n{link}\n",
            "es": "Hola {first_name}:\n\n{practice} quiere saber cómo le va. Le llevará {duration}:\n{link}\n",
        },
        client_facing=True,
    ),
    "reminder": MessageTemplate(
        subject={
            "en": "Reminder: a quick check-in from {practice}",
            "es": "Recordatorio: consulta de {practice}",
        },
        body={
            "en": "Hello {first_name},\n\nA gentle reminder: your check-in is still open.\n{link}\n",
            "es": "Hola {first_name}:\n\nUn recordatorio: su consulta sigue abierta.\n{link}\n",
        },
        client_facing=True,
    ),
}

OPT_OUT_LINE = {
    "en": "\nTo stop these messages: {opt_out_link}\n",
    "es": "\nPara dejar de recibir estos mensajes: {opt_out_link}\n",
}


class TemplateError(ValueError):
    """A template is unknown or asks for a value it may not carry."""


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


def render_message(name: str, values: dict[str, Any], *, language: str = "en") -> tuple[str, str]:
    """Subject and plain-text body of a message, refusing any placeholder outside ALLOWED_FIELDS."""
    template = TEMPLATES.get(name)
    if template is None:
        raise TemplateError(f"Unknown message template {name!r}")
    lang = language if language in template.body else "en"
    subject, body = template.subject[lang], template.body[lang]
    if template.client_facing and values.get("opt_out_link"):
        body += OPT_OUT_LINE[lang]
    wanted = _fields(subject) | _fields(body)
    forbidden = wanted - ALLOWED_FIELDS
    if forbidden:
        raise TemplateError(f"Template {name!r} asks for fields it may not carry: {sorted(forbidden)}")
    if "duration" in wanted and "duration" not in values:
        values = {**values, "duration": duration_text(values.get("minutes"), lang)}
    missing = wanted - values.keys()
    if missing:
        raise TemplateError(f"Template {name!r} is missing values for {sorted(missing)}")
    safe = {k: str(values[k]) for k in wanted}
    return subject.format_map(safe), body.format_map(safe)


def duration_text(minutes: object, language: str) -> str:
    """How long a survey takes, in words ("about 2 minutes"); vague when the figure is missing."""
    one, many, vague = DURATION.get(language, DURATION["en"])
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
        return vague
    return one if minutes == 1 else many.format(minutes=minutes)
