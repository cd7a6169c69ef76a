"""Running a survey page by page, for a link on the client's phone and for a paired kiosk alike.

Every page is a plain form (no JavaScript needed). Answers of earlier steps travel in an encrypted field; the final
step's POST hands everything to services.surveys.submission, commits once, then enqueues evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from babel import Locale
from flask import current_app, render_template, request
from flask_babel import force_locale as _force_locale
from flask_babel import gettext, ngettext
from markupsafe import escape
from werkzeug.wrappers import Response

from services.db import utcnow
from services.measures import AnswerError
from services.practice.crisis import CrisisInfo, crisis_info_for
from services.surveys.estimate import survey_minutes
from services.surveys.submission import (
    LANGUAGES,
    PARTNERSHIP_CHECK,
    LinkState,
    Problem,
    ProblemKind,
    Step,
    SurveyClosedError,
    SurveyContext,
    mark_started,
    plan_survey,
    read_step,
    risk_in_answers,
    rotating_element_for,
    submit_survey,
)
from web.app import current_settings
from web.request_db import commit, db_session, rollback
from web.survey.progress import Progress, dump_progress, load_progress
from workers.enqueue import enqueue_after_commit

log = logging.getLogger(__name__)


@lru_cache(maxsize=16)
def _locale(lang: str) -> Locale:
    return Locale.parse(lang)


def force_locale(lang: str) -> Any:
    """flask_babel.force_locale with the Locale parsed once per language (parsing looks on disk every time)."""
    return _force_locale(_locale(lang))


def _(message: str, **values: Any) -> str:
    """gettext, typed (the name is what the message extractor looks for)."""
    return str(gettext(message, **values))


# One message per submission: its administrations are evaluated in order by one task.
EVALUATE_TASK = "alerts.evaluate_batch"
LANGUAGE_NAMES = {"en": "English", "es": "Español"}
CLOSED_STATUS = {
    LinkState.UNKNOWN: 404,
    LinkState.EXPIRED: 410,
    LinkState.USED: 410,
    LinkState.CANCELLED: 410,
}


@dataclass(frozen=True)
class Mode:
    """How the pages are reached: a link (with its opt-out page) or a kiosk (which returns to its start screen)."""

    action_url: str
    kiosk: bool = False
    opt_out_url: str | None = None
    home_url: str | None = None  # the kiosk's start screen
    idle_seconds: int = 0


def rotation_enabled() -> bool:
    """Whether the Partnership Check rotates one of the five elements in (a practice setting; on unless turned off).

    Read from Settings.extra["partnership_rotating_element"] (RAPPORT_PARTNERSHIP_ROTATING_ELEMENT once the key is
    listed in services.config.EXTRA_KEYS).
    """
    raw = current_settings().extra.get("partnership_rotating_element", "")
    return str(raw).strip().lower() not in {"0", "false", "no", "off"}


def choose_language(requested: str | None, default: str) -> str:
    """The page language: what the client picked on the page, else their setting."""
    return requested if requested in LANGUAGES else default


def fmt_value(value: float) -> str:
    """An answer's value as a form field writes it (7, not 7.0)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def localized(texts: Mapping[str, str] | None, lang: str) -> str:
    """A text from an instrument definition in a language, English when missing."""
    if not texts:
        return ""
    return texts.get(lang) or texts.get("en") or next(iter(texts.values()), "")


def survey_page(template: str, lang: str, *, status: int = 200, **context: Any) -> Response:
    """Render a survey template in the client's language (never the staff layout: no links to staff pages)."""
    settings = current_settings()
    with force_locale(lang):
        body = render_template(
            template,
            lang=lang,
            practice_name=settings.practice_name,
            fmt_value=fmt_value,
            localized=localized,
            language_names=LANGUAGE_NAMES,
            **context,
        )
    return _html(body, status)


def _html(body: str, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def crisis_for(lang: str) -> CrisisInfo:
    """The practice's crisis information in the page's language (read only for a page that shows it)."""
    return crisis_info_for(db_session(), lang)


def closed_page(state: LinkState, lang: str, *, mode: Mode | None = None, crisis: CrisisInfo | None = None) -> Response:
    """The friendly page for a link that cannot be answered (404 unknown, 410 expired, used or cancelled).

    The page never depends on what was answered: a GET shows no crisis information, and a POST (a second press of
    "Send", or an old form posted again from the browser's history) always shows it, so neither tells whoever holds
    the phone or the link whether a risk item was endorsed.
    """
    return survey_page(
        "survey/closed.html",
        lang,
        status=CLOSED_STATUS.get(state, 404),
        state=state.value,
        crisis=crisis,
        mode=mode,
        refresh=_home_refresh(mode, 30),
    )


def bad_request_page(lang: str, message: str, *, status: int = 400, mode: Mode | None = None) -> Response:
    """A page for a request we could not use (tampered or stale form), naming what was wrong."""
    return survey_page(
        "survey/problem.html", lang, status=status, message=message, mode=mode, refresh=_home_refresh(mode, 60)
    )


def _home_refresh(mode: Mode | None, seconds: int) -> dict[str, Any] | None:
    if mode is None or not mode.kiosk or not mode.home_url:
        return None
    return {"seconds": seconds, "url": mode.home_url}


class SurveyRun:
    """One request's view of one invitation's survey."""

    def __init__(self, context: SurveyContext, mode: Mode) -> None:
        self.context = context
        self.mode = mode
        self.finished = False  # set once the invitation is done with (submitted now, or found used or closed)

    # -- GET -------------------------------------------------------------------------------------------------

    def first_page(self, requested_lang: str | None) -> Response:
        """The first step, fresh (GET): the only read-only entry to the survey."""
        lang = choose_language(requested_lang, self.context.language)
        rotating = None
        if rotation_enabled() and PARTNERSHIP_CHECK in self.context.instruments:
            rotating = rotating_element_for(db_session(), self.context.episode_id)
        progress = Progress(invitation_id=self.context.invitation_id, rotating=rotating)
        steps = self.steps(progress)
        if not steps:
            return closed_page(LinkState.UNKNOWN, lang, mode=self.mode)
        return self.render(steps, progress, lang, fresh=True)

    # -- POST ------------------------------------------------------------------------------------------------

    def closed(self, state: LinkState, form: Mapping[str, str] | None) -> Response:
        """The closed page for a link that was used, expired or cancelled meanwhile (a POST: crisis help, always)."""
        lang = choose_language((form or {}).get("lang") or request.args.get("lang"), self.context.language)
        return closed_page(state, lang, mode=self.mode, crisis=crisis_for(lang) if form is not None else None)

    def handle_post(self, form: Mapping[str, str], *, now: datetime | None = None) -> Response:
        """Next, back, switch language, or submit the final step."""
        lang = choose_language(form.get("lang"), self.context.language)
        progress = load_progress(form.get("state"), self.context.invitation_id)
        if progress is None:
            return self._stale(lang)
        steps = self.steps(progress)
        if not steps or progress.step >= len(steps):
            return self._stale(lang)
        step = steps[progress.step]
        read = read_step(step, form)
        progress.answers[step.code] = read.answers
        action = form.get("action", "next")
        if action.startswith("lang:"):
            return self.render(steps, progress, choose_language(action.removeprefix("lang:"), lang))
        if action == "back":
            progress.step = max(0, progress.step - 1)
            return self.render(steps, progress, lang)
        if read.problems:
            return self.render(steps, progress, lang, problems=read.problems, status=422)
        now = now or utcnow()
        if progress.step + 1 < len(steps):
            progress.step += 1
            # The page first (a risk answer's crisis information is read from the database), then the commit: a
            # committed request is never run again, so nothing after the commit may need the database.
            page = self.render(steps, progress, lang)
            if mark_started(db_session(), self.context.invitation_id, now):
                commit()
            return page
        return self._submit(steps, progress, lang, now)

    def _submit(self, steps: Sequence[Step], progress: Progress, lang: str, now: datetime) -> Response:
        session = db_session()
        try:
            submitted = submit_survey(session, self.context, steps, progress.answers, language=lang, now=now)
        except SurveyClosedError as closed:
            rollback()
            self.finished = True
            return closed_page(closed.state, lang, mode=self.mode, crisis=crisis_for(lang))
        except AnswerError as error:
            rollback()
            return self._answer_error(steps, progress, lang, error)
        if submitted.administration_ids:
            enqueue_after_commit(session, EVALUATE_TASK, *submitted.administration_ids)
        # Everything the thank-you page reads is read before the commit: a request whose database connection drops
        # before it commits runs again, one that has committed must not need the database any more.
        crisis = crisis_for(lang) if submitted.risk else None
        commit()  # answers and scores first; the publish runs after this, fire-and-forget
        self.finished = True
        return self.thanks(lang, crisis=crisis)

    def thanks(self, lang: str, *, crisis: CrisisInfo | None) -> Response:
        """The thank-you page (with the crisis information when a risk item was answered above 0)."""
        risk = crisis is not None
        if not risk and not self.mode.kiosk:
            return _cached_thanks(lang, first_name=self.context.first_name)
        seconds = 120 if risk else 30
        return survey_page(
            "survey/thanks.html",
            lang,
            first_name=self.context.first_name,
            crisis=crisis,
            mode=self.mode,
            refresh=_home_refresh(self.mode, seconds),
        )

    def _answer_error(self, steps: Sequence[Step], progress: Progress, lang: str, error: AnswerError) -> Response:
        for index, step in enumerate(steps):
            question = step.question(error.item_id) if step.code == error.instrument_code else None
            if question is not None:
                progress.step = index
                kind: ProblemKind = "missing" if "not answered" in str(error) else "invalid"
                return self.render(steps, progress, lang, problems=(Problem(question, kind),), status=422)
        with force_locale(lang):
            message = _(
                "One of the answers could not be used (%(item)s). Please open your link again and start over.",
                item=error.item_id,
            )
        return bad_request_page(lang, message, status=422, mode=self.mode)

    def _stale(self, lang: str) -> Response:
        with force_locale(lang):
            message = _("We could not read your earlier answers. Please open your link again and start over.")
        return bad_request_page(lang, message, mode=self.mode)

    # -- rendering -------------------------------------------------------------------------------------------

    def steps(self, progress: Progress) -> tuple[Step, ...]:
        """The survey's steps for this invitation (pure; instruments are cached in memory)."""
        return plan_survey(self.context.instruments, self.context.goals, rotating_item=progress.rotating)

    def render(
        self,
        steps: Sequence[Step],
        progress: Progress,
        lang: str,
        *,
        problems: Sequence[Problem] = (),
        status: int = 200,
        fresh: bool = False,
    ) -> Response:
        """Show the current step with the answers so far and any problems named."""
        step = steps[progress.step]
        with force_locale(lang):
            messages = _summary(problems, lang)
            field_errors = {problem.question.id: _field_message(problem) for problem in problems}
        crisis = crisis_for(lang) if risk_in_answers(steps, progress.answers) else None
        return survey_page(
            "survey/step.html",
            lang,
            status=status,
            step=step,
            step_number=progress.step + 1,
            step_count=len(steps),
            is_last=progress.step + 1 == len(steps),
            current=progress.answers.get(step.code, {}),
            problems=messages,
            field_errors=field_errors,
            missing_ids={problem.question.id for problem in problems if problem.kind == "missing"},
            state=dump_progress(progress),
            first_name=self.context.first_name,
            mode=self.mode,
            fresh=fresh,
            crisis=crisis,
            minutes=survey_minutes(self.context.instruments, self.context.goals) if progress.step == 0 else None,
            other_languages=[code for code in LANGUAGES if code != lang],
            refresh=_home_refresh(self.mode, self.mode.idle_seconds),
        )


# A stand-in the template escapes to itself; the client's first name (escaped) replaces it after rendering.
_NAME_SLOT = "rapport-first-name-slot"


def _cached_thanks(lang: str, *, first_name: str | None) -> Response:
    """The link thank-you page without a risk answer, rendered once per (language, named) per app and filled in.

    It is the page almost every submission ends on, and the same for everyone but the first name; the setting it
    shows (the practice name) is fixed for the app's life. The page after a risk answer is rendered each time: it
    shows the crisis information the practice may change at any moment.
    """
    cache: dict[tuple[str, bool], str] = current_app.extensions.setdefault("rapport.survey_thanks", {})
    key = (lang, bool(first_name))
    body = cache.get(key)
    if body is None:
        page = survey_page("survey/thanks.html", lang, first_name=_NAME_SLOT if first_name else None, mode=None)
        body = cache[key] = page.get_data(as_text=True)
    if first_name:
        body = body.replace(_NAME_SLOT, str(escape(first_name)))
    return _html(body)


def _summary(problems: Sequence[Problem], lang: str) -> list[tuple[Problem, str]]:
    """The error summary's lines: one for every unanswered question together (linking to the first), one per other."""
    missing = [problem for problem in problems if problem.kind == "missing"]
    lines: list[tuple[Problem, str]] = []
    if missing:
        first = missing[0].question
        text = _shorten(first.text(lang))
        if len(missing) == 1:
            message = _("Question %(number)d needs an answer: “%(text)s”", number=first.number, text=text)
        else:
            message = str(
                ngettext(
                    "%(num)d question needs an answer. Start with question %(number)d: “%(text)s”",
                    "%(num)d questions need an answer. Start with question %(number)d: “%(text)s”",
                    len(missing),
                    number=first.number,
                    text=text,
                )
            )
        lines.append((missing[0], message))
    lines.extend((problem, _summary_message(problem, lang)) for problem in problems if problem.kind != "missing")
    return lines


def _summary_message(problem: Problem, lang: str) -> str:
    question = problem.question
    text = _shorten(question.text(lang))
    if problem.kind == "too_long":
        return _(
            "Your answer to question %(number)d is too long: at most %(max)d characters.",
            number=question.number,
            max=question.item.max_length or 0,
        )
    return _(
        "Question %(number)d: please choose one of the answers shown: “%(text)s”", number=question.number, text=text
    )


def _field_message(problem: Problem) -> str:
    if problem.kind == "missing":
        return _("Not answered yet.")
    if problem.kind == "too_long":
        return _("Please shorten this answer to %(max)d characters.", max=problem.question.item.max_length or 0)
    return _("Please choose one of the answers shown.")


def _shorten(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def form_data() -> dict[str, str]:
    """The request's form fields (first value of each)."""
    return {key: value for key, value in request.form.items()}
