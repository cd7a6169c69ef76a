"""Manager forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import InputRequired


class ReportRequestForm(FlaskForm):
    """Ask for a monthly report of a period and a scope (choices are set per request)."""

    period = SelectField(_l("Month"), validators=[InputRequired()])
    scope = SelectField(_l("Covering"), validators=[InputRequired()])
