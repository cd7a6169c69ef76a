"""Front-desk forms. They parse and check shapes; the rules live in services (ClientError messages are shown)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TelField,
    TimeField,
    URLField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from web.inputs import PlausibleDateField

LANGUAGE_CHOICES = [SelectChoice("en", _l("English")), SelectChoice("es", _l("Spanish"))]


class ClientForm(FlaskForm):
    """Enrol a client, or correct their details."""

    first_name = StringField(
        _l("First name"), validators=[InputRequired(), Length(max=100)], render_kw={"autocomplete": "off"}
    )
    last_name = StringField(
        _l("Last name"), validators=[InputRequired(), Length(max=100)], render_kw={"autocomplete": "off"}
    )
    email = EmailField(
        _l("Email"),
        validators=[Optional(), Length(max=254)],
        render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
    )
    phone = TelField(_l("Mobile phone"), validators=[Optional(), Length(max=40)], render_kw={"autocomplete": "off"})
    language = SelectField(_l("Language for surveys and messages"), choices=LANGUAGE_CHOICES, default="en")
    consent_email = BooleanField(_l("The client agrees to survey invitations by email"))
    consent_sms = BooleanField(_l("The client agrees to survey invitations by text message"))


class EpisodeForm(FlaskForm):
    """Open an episode of care."""

    clinician_id = SelectField(_l("Clinician"), coerce=int, validators=[InputRequired()])
    protocol_code = SelectField(_l("Measurement protocol"), validators=[InputRequired()])
    started_on = PlausibleDateField(_l("First session on"), validators=[InputRequired()])
    goal_1 = StringField(_l("Goal 1"), validators=[Optional(), Length(max=300)])
    goal_2 = StringField(_l("Goal 2"), validators=[Optional(), Length(max=300)])
    goal_3 = StringField(_l("Goal 3"), validators=[Optional(), Length(max=300)])


class AppointmentForm(FlaskForm):
    """Add or move an appointment (date and time in the practice's time zone)."""

    day = PlausibleDateField(_l("Date"), validators=[InputRequired()])
    at = TimeField(_l("Start time"), validators=[InputRequired()])
    duration_minutes = IntegerField(
        _l("Length in minutes"), default=50, validators=[InputRequired(), NumberRange(min=5, max=480)]
    )
    next = HiddenField()


class ActionForm(FlaskForm):
    """A button that changes something (check in, cancel, kiosk, link): CSRF and where to go back to."""

    next = HiddenField()
    phase = HiddenField()
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=200)])


class ImportForm(FlaskForm):
    """Import appointments from a file or a calendar address."""

    file = FileField(_l("CSV or iCalendar file"))
    url = URLField(_l("…or the address of a calendar feed"), validators=[Optional(), Length(max=2000)])
    fmt = SelectField(
        _l("Format"),
        choices=[
            SelectChoice("auto", _l("Recognise it")),
            SelectChoice("csv", _l("CSV")),
            SelectChoice("ical", _l("iCalendar (.ics)")),
        ],
        default="auto",
    )
    source = StringField(
        _l("Calendar name"),
        validators=[Optional(), Length(max=20)],
        render_kw={"placeholder": "calendar", "autocapitalize": "none", "spellcheck": "false"},
    )
