"""The survey's state between steps is encrypted and time-limited: a later page's source shows no earlier answer."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import time
import zlib

from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeSerializer
from sqlalchemy.orm import Session

from tests.conftest import TEST_SECRET
from tests.unit.survey.conftest import count_administrations
from tests.unit.survey.helpers import answers_for, make_link, post_step, state_of
from web.survey import progress

SENTINEL = "Zyx-sentinel-comment-4471"


def _decodable_text(html: str) -> str:
    """The page, plus every base64-looking run in it decoded (and inflated), so an encoding is no hiding place."""
    found = [html]
    for run in re.findall(r"[A-Za-z0-9_\-=]{24,}", html):
        padded = run + "=" * (-len(run) % 4)
        for decode in (base64.urlsafe_b64decode, base64.b64decode):
            try:
                raw = decode(padded)
            except (binascii.Error, ValueError):
                continue
            found.append(raw.decode("utf-8", "replace"))
            with contextlib.suppress(zlib.error):
                found.append(zlib.decompress(raw).decode("utf-8", "replace"))
    return "\n".join(found)


def test_no_earlier_answer_is_readable_in_a_later_page(client: FlaskClient, session: Session) -> None:
    link = make_link(session, instruments=("PARTNERSHIP-CHECK", "PHQ-9"))
    html = client.get(link.path).get_data(as_text=True)
    assert 'name="pc_comment"' in html
    step = post_step(client, link, html, answers_for("PARTNERSHIP-CHECK", pc_comment=SENTINEL))
    assert step.status_code == 200
    later = step.get_data(as_text=True)
    assert "Step 2 of 2" in later
    assert SENTINEL not in _decodable_text(later)
    assert "pc_comment" not in _decodable_text(later)
    # The answers are still there: back shows them, and the submit stores them.
    back = post_step(client, link, later, answers_for("PHQ-9", phq9_9="2"), action="back").get_data(as_text=True)
    assert SENTINEL in back  # the step's own field, shown on its own page
    assert "phq9_9" not in _decodable_text(back).replace('name="phq9_9"', "")
    later = post_step(client, link, back, answers_for("PARTNERSHIP-CHECK", pc_comment=SENTINEL)).get_data(as_text=True)
    done = post_step(client, link, later, answers_for("PHQ-9"))
    assert done.status_code == 200
    assert count_administrations(session, link.invitation.id) == 2


def test_a_risk_answer_on_an_earlier_step_is_not_in_the_next_pages_state(client: FlaskClient, session: Session) -> None:
    link = make_link(session)
    html = client.get(link.path).get_data(as_text=True)
    later = post_step(client, link, html, answers_for("PHQ-9", phq9_9="2")).get_data(as_text=True)
    state = state_of(later)
    assert "phq9" not in _decodable_text(state)


def test_a_state_older_than_its_lifetime_or_in_the_old_signed_format_is_refused(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    link = make_link(session)
    client.get(link.path)
    payload = json.dumps({"i": link.invitation.id, "s": 0, "a": {}, "r": None}).encode()
    with app.test_request_context():
        fresh = progress.dump_progress(progress.Progress(invitation_id=link.invitation.id))
        assert progress.load_progress(fresh, link.invitation.id) is not None
        stale = progress._fernet().encrypt_at_time(payload, int(time.time()) - progress.MAX_AGE_SECONDS - 60)
    signed = URLSafeSerializer(TEST_SECRET, salt="rapport.survey.progress.v1").dumps(
        {"i": link.invitation.id, "s": 0, "a": {}, "r": None}
    )
    for state in (stale.decode(), str(signed)):
        response = client.post(link.path, data={"state": state, **answers_for("PHQ-9")})
        assert response.status_code == 400
        assert "We could not read your earlier answers" in response.get_data(as_text=True)
    assert count_administrations(session, link.invitation.id) == 0
