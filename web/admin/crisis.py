"""Admin and manager: the crisis information the survey shows a client at risk, edited one language at a time."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from services.accounts.models import Role
from services.practice.crisis import (
    LANGUAGES,
    CrisisEntry,
    InvalidNumber,
    crisis_entry,
    crisis_info_for,
    parse_number,
    phone_for_display,
    regions,
    set_crisis_entry,
)
from web.access import allow
from web.admin.crisis_forms import CrisisForm
from web.admin.views import bp
from web.login import current_account
from web.request_db import commit, db_session

LANGUAGE_NAMES = {"en": "English", "es": "Español"}


def _region_choices() -> list[tuple[str, str]]:
    names = get_locale().territories if get_locale() is not None else {}
    return sorted(((code, f"{names.get(code, code)} ({code})") for code in regions()), key=lambda c: c[1])


def _checked_phones(form: CrisisForm) -> tuple[tuple[str, str], ...] | None:
    """The filled-in rows as (label, stored number), or None after marking each row's problem on the form."""
    region = form.region.data or ""
    phones: list[tuple[str, str]] = []
    ok = True
    for row in form.phones:
        label = (row.form.label.data or "").strip()
        text = (row.form.number.data or "").strip()
        if not label and not text:
            continue
        if not text:
            row.form.number.errors = [*row.form.number.errors, _("Enter the number, or clear its description.")]
            ok = False
            continue
        if not label:
            row.form.label.errors = [*row.form.label.errors, _("Say what this number is, for example “Crisis line”.")]
            ok = False
        try:
            phones.append((label, parse_number(text, region)))
        except InvalidNumber:
            row.form.number.errors = [
                *row.form.number.errors,
                _(
                    "“%(number)s” is not a phone number we recognise for the country chosen. Write it in the "
                    "international form, for example +44 20 7946 0123, or as a short number such as 999.",
                    number=text,
                ),
            ]
            ok = False
    return tuple(phones) if ok else None


def _problems(form: CrisisForm) -> list[tuple[str, str, str]]:
    """(field id, field label, message) for every error on the form, in page order."""
    found: list[tuple[str, str, str]] = []
    for name in ("region", "heading", "body"):
        for message in form[name].errors:
            found.append((form[name].id, str(form[name].label.text), str(message)))
    for index, row in enumerate(form.phones, 1):
        for sub in (row.form.label, row.form.number):
            for message in sub.errors:
                found.append((sub.id, f"{sub.label.text} {index}", str(message)))
    return found


@bp.route("/crisis", methods=["GET"], endpoint="crisis")
@allow(Role.ADMIN, Role.MANAGER)
def crisis_index() -> Response:
    """The crisis information page starts with English."""
    return redirect(url_for("admin.crisis_language", lang="en"))


@bp.route("/crisis/<lang>", methods=["GET", "POST"], endpoint="crisis_language")
@allow(Role.ADMIN, Role.MANAGER)
def crisis_language(lang: str) -> Response | tuple[str, int]:
    """Show and change the crisis information clients reading lang see when they answer a risk item above 0."""
    if lang not in LANGUAGES:
        abort(404)
    session = db_session()
    stored = crisis_entry(session, lang)
    form = CrisisForm()
    form.region.choices = _region_choices()
    if not form.is_submitted():
        form.region.data = stored.region
        form.heading.data = stored.heading
        form.body.data = stored.body
        for row, (label, number) in zip(form.phones, stored.phones, strict=False):
            row.form.label.data = label
            row.form.number.data = phone_for_display(label, number, stored.region).display
    elif form.validate():
        phones = _checked_phones(form)
        if phones is not None:
            entry = CrisisEntry(
                region=form.region.data or stored.region,
                heading=(form.heading.data or "").strip(),
                body=(form.body.data or "").strip(),
                phones=phones,
            )
            set_crisis_entry(session, lang, entry, user_id=current_account().id)
            commit()
            flash(_("Crisis information saved for %(language)s.", language=LANGUAGE_NAMES[lang]), "success")
            return redirect(url_for("admin.crisis_language", lang=lang), code=303)
    else:
        _checked_phones(form)  # name every number problem at once, not one round trip at a time
    problems = _problems(form)
    page = render_template(
        "admin/crisis.html",
        form=form,
        editing=lang,
        languages=LANGUAGES,
        language_names=LANGUAGE_NAMES,
        problems=problems,
        preview=crisis_info_for(session, lang),
    )
    return page, 400 if problems else 200
