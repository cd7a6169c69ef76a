"""Message templates. They carry links and the practice's name, never client data beyond a first name."""

from __future__ import annotations

from dataclasses import dataclass
from string import Formatter
from typing import Any

from services.i18n import N_, translator_for


@dataclass(frozen=True)
class MessageTemplate:
    """Subject and body; {placeholders} come only from ALLOWED_FIELDS."""

    subject: str  # English msgids: each reader gets them from the catalog in their language (services.i18n)
    body: str
    # Client-facing messages get an opt-out line and may greet by first name.
    client_facing: bool = False


# The only values a message may contain. Names, scores, instruments and diagnoses are not among them.
ALLOWED_FIELDS = frozenset({"link", "practice", "first_name", "opt_out_link", "count", "briefs", "role", "duration"})

# {duration}: how long the survey takes, worded from values["minutes"] (services.surveys.estimate.survey_minutes,
# the figure the survey's first page shows too).
DURATION = (N_("about a minute"), N_("about {minutes} minutes"), N_("a few minutes"))

TEMPLATES: dict[str, MessageTemplate] = {
    "test_message": MessageTemplate(
        subject=N_("Rapport test message"),
        body=N_("This is a test message from {practice}. If you can read it, email delivery works.\n"),
    ),
    "alert": MessageTemplate(
        subject=N_("Something to look at in Rapport"),
        body=N_("There is something new for you to look at in Rapport.\n\nOpen it here: {link}\n"),
    ),
    "alert_digest": MessageTemplate(
        subject=N_("Your Rapport summary"),
        body=N_("You have {count} item(s) to look at in Rapport.\n\nOpen them here: {link}\n"),
    ),
    # The morning digest when today's briefs are waiting too (services.alerts.digest): counts only.
    "morning_digest": MessageTemplate(
        subject=N_("Your Rapport summary"),
        body=N_(
            "You have {count} item(s) to look at in Rapport, and {briefs} brief(s) for today's sessions are "
            "waiting: new answers nobody has opened yet.\n\nOpen them here: {link}\n"
        ),
    ),
    "briefs_waiting": MessageTemplate(
        subject=N_("Your Rapport summary"),
        body=N_(
            "{briefs} brief(s) for today's sessions are waiting in Rapport: new answers nobody has opened yet."
            "\n\nOpen them here: {link}\n"
        ),
    ),
    "escalation": MessageTemplate(
        subject=N_("Rapport: an item needs attention"),
        body=N_(
            "An item in Rapport has not been acknowledged in time and was passed to you as {role}.\n"
            "\n"
            "Open it here: {link}\n"
        ),
    ),
    "escalation_digest": MessageTemplate(
        subject=N_("Rapport: {count} items need attention"),
        body=N_(
            "{count} items in Rapport have not been acknowledged in time and were passed to you as {role}.\n"
            "\n"
            "Open them here: {link}\n"
        ),
    ),
    "review_due": MessageTemplate(
        subject=N_("A case review is due in Rapport"),
        body=N_("A case review assigned to you is due soon or overdue.\n\nOpen it here: {link}\n"),
    ),
    "report_ready": MessageTemplate(
        subject=N_("Your monthly Rapport report is ready"),
        body=N_("A monthly report is ready to download.\n\nOpen it here: {link}\n"),
    ),
    "audit_chain_broken": MessageTemplate(
        subject=N_("Rapport: the audit trail check failed"),
        body=N_(
            "Tonight's check of the audit trail at {practice} found a row that does not match its hash: "
            "a record may have been altered or removed.\n\nRun `rapport audit verify` to see the first bad row, "
            "and look at the operations page: {link}\n"
        ),
    ),
    "password_reset": MessageTemplate(
        subject=N_("Reset your Rapport password"),
        body=N_(
            "Someone asked to reset the password of your Rapport account at {practice}.\n"
            "\n"
            "To choose a new password, open this link within an hour. It works once:\n"
            "{link}\n"
            "\n"
            "If you did not ask for this, ignore this message: your password stays as it is.\n"
        ),
    ),
    "invitation": MessageTemplate(
        subject=N_("A quick check-in from {practice}"),
        body=N_(
            "Hello {first_name},\n\n{practice} would like to hear how things are going. It takes {duration}:\n{link}\n"
        ),
        client_facing=True,
    ),
    "reminder": MessageTemplate(
        subject=N_("Reminder: a quick check-in from {practice}"),
        body=N_("Hello {first_name},\n\nA gentle reminder: your check-in is still open.\n{link}\n"),
        client_facing=True,
    ),
}

OPT_OUT_LINE = N_("\nTo stop these messages: {opt_out_link}\n")


class TemplateError(ValueError):
    """A template is unknown or asks for a value it may not carry."""


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


def render_message(name: str, values: dict[str, Any], *, language: str = "en") -> tuple[str, str]:
    """Subject and plain-text body of a message, refusing any placeholder outside ALLOWED_FIELDS."""
    template = TEMPLATES.get(name)
    if template is None:
        raise TemplateError(f"Unknown message template {name!r}")
    tr = translator_for(language)
    subject, body = tr.gettext(template.subject), tr.gettext(template.body)
    if template.client_facing and values.get("opt_out_link"):
        body += tr.gettext(OPT_OUT_LINE)
    wanted = _fields(subject) | _fields(body)
    forbidden = wanted - ALLOWED_FIELDS
    if forbidden:
        raise TemplateError(f"Template {name!r} asks for fields it may not carry: {sorted(forbidden)}")
    if "duration" in wanted and "duration" not in values:
        values = {**values, "duration": duration_text(values.get("minutes"), language)}
    missing = wanted - values.keys()
    if missing:
        raise TemplateError(f"Template {name!r} is missing values for {sorted(missing)}")
    safe = {k: str(values[k]) for k in wanted}
    return subject.format_map(safe), body.format_map(safe)


def duration_text(minutes: object, language: str) -> str:
    """How long a survey takes, in words ("about 2 minutes"); vague when the figure is missing."""
    one, many, vague = (translator_for(language).gettext(text) for text in DURATION)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
        return vague
    return one if minutes == 1 else many.format(minutes=minutes)
