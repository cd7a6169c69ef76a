"""The client survey reached by a link: /s/<token> (the survey) and /s/<token>/opt-out.

GET never consumes a link (mail scanners prefetch links): it may record the first opening, nothing more. Only a
successful final POST uses it up. These routes carry no cookie authority at all: the 256-bit token in the path
is the capability, so they are exempt from the cookie-based CSRF check (a forger would need the token itself,
and with it needs no forgery); the kiosk routes, which do rest on a cookie, keep the check.
"""

from __future__ import annotations

import logging

from flask import Blueprint, request, url_for
from flask_babel import get_locale
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from services.db import utcnow
from services.surveys.submission import (
    LinkState,
    SurveyLink,
    find_survey_link,
    link_state,
    mark_opened,
    opt_out,
)
from web.access import public
from web.errors import KEPT_HEADERS
from web.limiter import client_ip, token_limited
from web.request_db import commit, db_session, rollback
from web.security import csrf
from web.survey.flow import (
    Mode,
    SurveyRun,
    _,
    bad_request_page,
    choose_language,
    closed_page,
    force_locale,
    form_data,
    survey_page,
)

log = logging.getLogger(__name__)

bp = Blueprint("survey", __name__)


def _browser_language() -> str:
    # the browser's preference, or a signed-in staff member's own language (web.i18n.select_locale)
    return str(get_locale() or "en")


def _language_for(link: SurveyLink | None) -> str:
    """The client's language when the link is known, else the browser's; ?lang= on the page wins."""
    default = link.context.language if link is not None else _browser_language()
    return choose_language(request.values.get("lang"), default)


@bp.route("/s/<token>", methods=["GET", "POST"])
@public
@token_limited
def start(token: str) -> Response:
    """The survey: GET shows the first step (and notes the first opening), POST moves on or submits."""
    session = db_session()
    now = utcnow()
    link = find_survey_link(session, token)
    state = link_state(link, now)
    if link is None:
        return closed_page(state, _language_for(link))
    mode = Mode(action_url=url_for("survey.start", token=token), opt_out_url=url_for("survey.opt_out", token=token))
    run = SurveyRun(link.context, mode)
    if state is not LinkState.OPEN:
        # Opening a used link never shows what was answered; a second press of "Send" shows its own answers' help.
        return run.closed(state, form_data() if request.method == "POST" else None)
    if request.method == "POST":
        return run.handle_post(form_data(), now=now)
    # The page before the commit: a committed request is never run again, so nothing after it may need the database.
    page = run.first_page(request.args.get("lang"))
    if link.opened_at is None and mark_opened(session, link.invitation_id, now):
        commit()
    return page


@bp.route("/s/<token>/opt-out", methods=["GET", "POST"], endpoint="opt_out")
@public
@token_limited
def opt_out_page(token: str) -> Response:
    """Stop messages: GET asks, POST does it. Any link the client was sent works, even a used or expired one."""
    session = db_session()
    link = find_survey_link(session, token)
    if link is None:
        return closed_page(LinkState.UNKNOWN, _language_for(None))
    lang = _language_for(link)
    if request.method == "GET":
        return survey_page("survey/opt_out.html", lang, action_url=url_for("survey.opt_out", token=token))
    opt_out(session, link.context, utcnow(), ip=client_ip())
    commit()
    return survey_page("survey/opted_out.html", lang)


csrf.exempt(start)
csrf.exempt(opt_out_page)


@bp.after_request
def _no_index(response: Response) -> Response:
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _error_page(error: Exception) -> Response:
    """Errors inside the survey get the survey's own page (no staff layout, no links to staff pages)."""
    from web.survey.kiosk import kiosk_mode_for_errors

    code = error.code if isinstance(error, HTTPException) and error.code else 500
    if code >= 500:
        try:
            rollback()
        except Exception:
            log.exception("rollback after an error on a survey page failed")
    lang = _browser_language()
    with force_locale(lang):
        if code == 429:
            message = _("Too many tries in a short time. Please wait a minute and try again.")
        elif code == 404:
            message = _("We could not find that page.")
        elif code >= 500:
            message = _("Something went wrong on our side. Your answers were not saved; please try again in a moment.")
        else:
            message = _("Something in the request was not right. Please go back and try again.")
    response = bad_request_page(lang, message, status=code, mode=kiosk_mode_for_errors())
    if isinstance(error, HTTPException):
        for name, value in error.get_headers():
            if name in KEPT_HEADERS:
                response.headers[name] = value
        if error.response is not None:
            for name, value in error.response.headers.items():
                if name in KEPT_HEADERS:
                    response.headers[name] = value
    return response


bp.register_error_handler(HTTPException, _error_page)
bp.register_error_handler(InternalServerError, _error_page)

from web.survey import kiosk as _kiosk  # noqa: E402,F401  (registers the kiosk routes on this blueprint)
