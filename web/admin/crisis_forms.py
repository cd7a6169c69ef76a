"""The crisis information form: one language's heading, text, the numbers' country and up to four numbers."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Form, FormField, SelectField, StringField, TextAreaField
from wtforms.fields import FieldList
from wtforms.validators import InputRequired, Length

from services.practice.crisis import MAX_BODY, MAX_HEADING, MAX_LABEL, MAX_PHONES


class PhoneForm(Form):
    """One phone number: what it is and the number."""

    label = StringField(_l("What the number is"), validators=[Length(max=MAX_LABEL)])
    number = StringField(
        _l("Phone number"), validators=[Length(max=40)], render_kw={"inputmode": "tel", "autocomplete": "off"}
    )


class CrisisForm(FlaskForm):
    """One language's crisis information."""

    region = SelectField(_l("Country of the phone numbers"))
    heading = StringField(_l("Heading"), validators=[InputRequired(), Length(max=MAX_HEADING)])
    body = TextAreaField(_l("What to do"), validators=[InputRequired(), Length(max=MAX_BODY)], render_kw={"rows": 4})
    phones = FieldList(FormField(PhoneForm), min_entries=MAX_PHONES, max_entries=MAX_PHONES)
