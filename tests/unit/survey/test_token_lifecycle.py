"""A Hypothesis state machine over a survey link's life: issue, open, submit, replay, expire, cancel.

Through the real app (Flask test client on SQLite). Whatever the order, an invitation is submitted at most once:
it has either no administrations or exactly one per instrument, and only one submit ever got the thank-you page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.db import utcnow
from services.surveys.invitations import cancel_invitation, expire_invitations, issue_token
from services.surveys.models import Administration, Invitation
from tests.unit.survey.conftest import invitation_row
from tests.unit.survey.helpers import Link, answers_for, make_link, state_of

SURVEYS = (("PARTNERSHIP-CHECK",), ("GAD-7",), ("GAD-7", "PHQ-9"))
EXPECTED_GET = {"open": 200, "completed": 410, "expired": 410, "cancelled": 410}


@dataclass
class Model:
    """What an invitation should be: its state, its instruments, how many submits succeeded."""

    instruments: tuple[str, ...]
    state: str = "open"
    submits: int = 0
    last_post: dict[str, str] | None = None
    pages: list[str] = field(default_factory=list)


class TokenLifecycle(RuleBasedStateMachine):
    """Links to invitations, driven in any order through the survey pages and the front desk's verbs."""

    links = Bundle("links")

    def __init__(self, app: Flask, client: FlaskClient, session: Session) -> None:
        super().__init__()
        self.app = app
        self.client = client
        self.session = session
        self.model: dict[int, Model] = {}

    # -- issuing -------------------------------------------------------------------------------------------------

    @rule(target=links, survey=st.sampled_from(SURVEYS))
    def issue(self, survey: tuple[str, ...]) -> Link:
        link = make_link(self.session, instruments=survey, goals=())
        self.model[link.invitation.id] = Model(instruments=survey)
        return link

    @rule(target=links, link=links)
    def another_link_to_the_same_invitation(self, link: Link) -> Link:
        raw = issue_token(self.session, link.invitation, purpose="reminder")
        self.session.commit()
        return Link(link.invitation, link.client, link.episode, link.appointment, raw)

    # -- the client ----------------------------------------------------------------------------------------------

    @rule(link=links)
    def open(self, link: Link) -> None:
        model = self.model[link.invitation.id]
        response = self.client.get(link.path)
        assert response.status_code == EXPECTED_GET[model.state], (model, response.status_code)
        if response.status_code == 200:
            model.pages.append(response.get_data(as_text=True))

    @rule(link=links, risk=st.booleans(), fresh_page=st.booleans())
    def submit(self, link: Link, risk: bool, fresh_page: bool) -> None:
        model = self.model[link.invitation.id]
        page = model.pages[-1] if model.pages and not fresh_page else None
        data = self._final_post(link, model, page, risk=risk)
        response = self.client.post(link.path, data=data)
        if model.state == "open":
            if len(model.instruments) > 1:
                # Two steps: the first POST moves on; the second (from the page it returned) submits.
                assert response.status_code == 200
                html = response.get_data(as_text=True)
                data = {"state": state_of(html), "lang": "en", "action": "next", **answers_for(model.instruments[1])}
                response = self.client.post(link.path, data=data)
            assert response.status_code == 200, response.get_data(as_text=True)[:500]
            assert "Thank you" in response.get_data(as_text=True)
            model.state = "completed"
            model.submits += 1
        else:
            assert response.status_code == 410
        model.last_post = data

    @rule(link=links)
    def replay(self, link: Link) -> None:
        model = self.model[link.invitation.id]
        if model.last_post is None:
            return
        response = self.client.post(link.path, data=model.last_post)
        assert response.status_code == (410 if model.state != "open" else response.status_code)
        if model.state != "open":
            assert "Thank you," not in response.get_data(as_text=True)

    # -- time and the front desk -----------------------------------------------------------------------------------

    @rule(link=links, sweep=st.booleans())
    def expire(self, link: Link, sweep: bool) -> None:
        model = self.model[link.invitation.id]
        self.session.execute(
            update(Invitation)
            .where(Invitation.id == link.invitation.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        if sweep:
            expire_invitations(self.session, now=utcnow())
        self.session.commit()
        if model.state == "open":
            model.state = "expired"

    @rule(link=links)
    def cancel(self, link: Link) -> None:
        model = self.model[link.invitation.id]
        changed = cancel_invitation(self.session, invitation_id=link.invitation.id, reason="appointment cancelled")
        self.session.commit()
        assert changed == (model.state in ("open", "expired") and self._db_status(link) == "cancelled")
        if model.state == "open" or (model.state == "expired" and changed):
            model.state = "cancelled"

    # -- what must always hold ---------------------------------------------------------------------------------------

    @invariant()
    def at_most_one_submission_per_invitation(self) -> None:
        if not self.model:
            return
        ids = list(self.model)
        self.session.expire_all()
        stored = dict(
            self.session.execute(
                select(Administration.invitation_id, func.count())
                .where(Administration.invitation_id.in_(ids))
                .group_by(Administration.invitation_id)
            ).all()
        )
        statuses = dict(
            self.session.execute(select(Invitation.id, Invitation.status).where(Invitation.id.in_(ids))).all()
        )
        for invitation_id, model in self.model.items():
            assert model.submits <= 1
            if model.state == "completed":
                assert stored.get(invitation_id, 0) == len(model.instruments)
                assert statuses[invitation_id] == "completed"
            else:
                assert stored.get(invitation_id, 0) == 0
                assert statuses[invitation_id] != "completed"

    # -- helpers -------------------------------------------------------------------------------------------------

    def _db_status(self, link: Link) -> str:
        return invitation_row(self.session, link.invitation.id).status

    def _final_post(self, link: Link, model: Model, page: str | None, *, risk: bool) -> dict[str, str]:
        """The first step's answers with the page's signed state (made fresh when no page was opened)."""
        if page is not None:
            state = state_of(page)
        else:
            from web.survey.progress import Progress, dump_progress

            with self.app.test_request_context():
                state = dump_progress(Progress(invitation_id=link.invitation.id))
        answers = answers_for(model.instruments[0])
        if risk and model.instruments[0] == "PHQ-9":
            answers["phq9_9"] = "2"
        return {"state": state, "lang": "en", "action": "next", **answers}


def test_at_most_one_submission_per_invitation(make_app: Callable[..., Flask], session: Session) -> None:
    # The per-address rate limit would answer 429 after a few dozen requests: not what this machine explores.
    app = make_app(token_rate_limit="100000 per minute")
    client = app.test_client()

    class Bound(TokenLifecycle):
        def __init__(self) -> None:
            super().__init__(app, client, session)

    run_state_machine_as_test(Bound, settings=settings(max_examples=25, stateful_step_count=20, deadline=None))
