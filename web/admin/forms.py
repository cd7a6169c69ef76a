"""Admin forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import EqualTo, InputRequired, Length, Optional

from services.accounts.models import Role
from services.accounts.passwords import MIN_PASSWORD_LENGTH
from web.roles import ROLE_LABELS


class CreateUserForm(FlaskForm):
    """A new staff account."""

    name = StringField(
        _l("Full name"), validators=[InputRequired(), Length(max=200)], render_kw={"autocomplete": "off"}
    )
    email = EmailField(
        _l("Email"),
        validators=[InputRequired(), Length(max=254)],
        render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
    )
    role = SelectField(_l("Role"), choices=[SelectChoice(role.value, ROLE_LABELS[role]) for role in Role])
    team = StringField(_l("Team"), validators=[Optional(), Length(max=120)], render_kw={"list": "team-names"})
    password = PasswordField(
        _l("Initial password"),
        validators=[InputRequired(), Length(min=MIN_PASSWORD_LENGTH, max=1024)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[InputRequired(), EqualTo("password", message=_l("The two passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )


NO_TEAM = ""
BROWSER_LANGUAGE = ""


class EditUserForm(FlaskForm):
    """A staff account's name, role, team and language (the email is the sign-in name and stays)."""

    name = StringField(
        _l("Full name"), validators=[InputRequired(), Length(max=200)], render_kw={"autocomplete": "off"}
    )
    role = SelectField(_l("Role"), choices=[SelectChoice(role.value, ROLE_LABELS[role]) for role in Role])
    team = SelectField(_l("Team"), choices=[], validate_choice=True)
    language = SelectField(
        _l("Language"),
        choices=[
            SelectChoice(BROWSER_LANGUAGE, _l("Not chosen: follow the browser")),
            SelectChoice("en", "English"),
            SelectChoice("es", "Español"),
        ],
    )

    def set_teams(self, names: list[str]) -> None:
        """Offer the existing teams (and no team)."""
        self.team.choices = [SelectChoice(NO_TEAM, _l("No team")), *(SelectChoice(name, name) for name in names)]
