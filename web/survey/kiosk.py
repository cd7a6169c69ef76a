"""The waiting-room kiosk: a paired tablet that shows a locked start screen and runs one client's survey at a time.

Pairing: a front-desk or admin user signs in on the tablet, opens /kiosk/pair and confirms. The tablet becomes a
row (services.accounts.kiosks: listed and revocable on Admin → Kiosks) and gets a signed cookie with the row id and
a secret that is rotated as it is used and bound to the browser's User-Agent; the cookie lasts KIOSK_IDLE and is
renewed with use. The staff member is signed out on that tablet, so the tablet holds no staff session at all.
The start screen offers the oldest kiosk invitation nobody has picked up;
tapping Start claims it with a conditional update (two tablets cannot take the same one) and puts its id in a
short-lived signed cookie bound to the device. The survey pages link nowhere but back to the start screen, and
return there after a submit or after a quiet spell (static/kiosk-timeout.js warns first; a meta refresh without JS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import after_this_request, g, redirect, request, url_for
from flask_babel import get_locale
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from services.accounts.kiosks import KIOSK_IDLE, pair_kiosk, resume_kiosk
from services.accounts.models import Role
from services.db import utcnow
from services.surveys.submission import (
    LinkState,
    claim_kiosk_handout,
    find_survey_by_id,
    next_kiosk_handout,
    release_kiosk_handout,
)
from web.access import allow, public
from web.app import current_settings
from web.limiter import client_ip, token_limited
from web.login import current_account, end_browser_session
from web.request_db import commit, db_session
from web.survey.flow import Mode, SurveyRun, form_data, survey_page
from web.survey.views import bp

DEVICE_COOKIE = "rapport_kiosk"
RUN_COOKIE = "rapport_kiosk_run"
DEVICE_SALT = "rapport.kiosk.device.v2"
RUN_SALT = "rapport.kiosk.run.v1"
DEVICE_MAX_AGE = int(KIOSK_IDLE.total_seconds())
RUN_MAX_AGE = int(timedelta(hours=3).total_seconds())
IDLE_SECONDS = 180  # a survey page left alone this long goes back to the locked start screen
POLL_SECONDS = 5
COOKIE_PATH = "/kiosk"


@dataclass(frozen=True)
class Device:
    """A paired kiosk: its random id and the label staff gave it."""

    id: str
    label: str


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_settings().secret_key, salt=salt)


def _device_cookie(device_id: int, secret: str) -> str:
    return str(_serializer(DEVICE_SALT).dumps({"d": device_id, "s": secret}))


def _check_device() -> Device | None:
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        payload: Any = _serializer(DEVICE_SALT).loads(raw, max_age=DEVICE_MAX_AGE)
    except BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("d"), int) or not isinstance(payload.get("s"), str):
        return None
    check = resume_kiosk(
        db_session(),
        device_id=payload["d"],
        secret=payload["s"],
        user_agent=request.headers.get("User-Agent"),
        ip=client_ip(),
    )
    commit(idempotent=True)  # last seen, a rotated secret or a refusal's audit row, before the route's own work
    if check.device is None:

        @after_this_request
        def forget(response: Response) -> Response:
            response.delete_cookie(DEVICE_COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict")
            return response

        return None
    if check.new_secret is not None:
        cookie = _device_cookie(check.device.id, check.new_secret)

        @after_this_request
        def renew(response: Response) -> Response:
            _set_cookie(response, DEVICE_COOKIE, cookie, DEVICE_MAX_AGE)  # a new secret, and the lifetime slides
            return response

    return Device(id=str(check.device.id), label=check.device.name)


def paired_device() -> Device | None:
    """The kiosk this request comes from, or None when it was never paired, was revoked or expired, or the cookie
    is forged or a copy (another browser, or a secret the tablet has moved on from). Checked once per request."""
    if "rapport_kiosk_device" not in g:
        g.rapport_kiosk_device = _check_device()
    device: Device | None = g.rapport_kiosk_device
    return device


@dataclass(frozen=True)
class Claim:
    """The invitation this tablet is running, and when it claimed it."""

    invitation_id: int
    claimed_at: datetime


def _running_claim(device: Device) -> Claim | None:
    raw = request.cookies.get(RUN_COOKIE)
    if not raw:
        return None
    try:
        payload: Any = _serializer(RUN_SALT).loads(raw, max_age=RUN_MAX_AGE)
    except BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("d") != device.id or not isinstance(payload.get("i"), int):
        return None
    try:
        claimed_at = datetime.fromisoformat(str(payload.get("c")))
    except ValueError:
        return None
    return Claim(invitation_id=int(payload["i"]), claimed_at=claimed_at)


def _set_cookie(response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        secure=current_settings().is_production,
        samesite="Strict",
    )


def _clear_run(response: Response) -> Response:
    response.delete_cookie(RUN_COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict")
    return response


def _kiosk_mode() -> Mode:
    home = url_for("survey.kiosk")
    return Mode(action_url=url_for("survey.kiosk_survey"), kiosk=True, home_url=home, idle_seconds=IDLE_SECONDS)


def kiosk_mode_for_errors() -> Mode | None:
    """On a paired kiosk an error page goes back to the start screen by itself."""
    if request.path.startswith(COOKIE_PATH) and paired_device() is not None:
        return _kiosk_mode()
    return None


def _language() -> str:
    # the tablet's browser, or the signed-in staff member who is pairing it (web.i18n.select_locale)
    return str(get_locale() or "en")


def _unpaired() -> Response:
    return survey_page("survey/kiosk_unpaired.html", _language(), status=403)


def _to_start() -> Response:
    return _clear_run(redirect(url_for("survey.kiosk"), code=303))


@bp.get("/kiosk", endpoint="kiosk")
@public
def kiosk_start_screen() -> Response:
    """The locked start screen: waits for the next kiosk invitation and offers a Start button."""
    device = paired_device()
    if device is None:
        return _unpaired()
    ready = next_kiosk_handout(db_session(), utcnow()) is not None
    response = survey_page(
        "survey/kiosk_locked.html",
        _language(),
        ready=ready,
        device=device,
        refresh={"seconds": POLL_SECONDS * (3 if ready else 1), "url": url_for("survey.kiosk")},
    )
    return _clear_run(response)


@bp.post("/kiosk/start", endpoint="kiosk_begin")
@public
@token_limited
def kiosk_begin() -> Response:
    """Claim the next kiosk invitation for this tablet and open its survey."""
    device = paired_device()
    if device is None:
        return _unpaired()
    session = db_session()
    now = utcnow()
    handout = next_kiosk_handout(session, now)
    if handout is None or not claim_kiosk_handout(session, handout, now):
        return _to_start()
    commit()
    response = redirect(url_for("survey.kiosk_survey"), code=303)
    run = _serializer(RUN_SALT).dumps({"d": device.id, "i": handout.invitation_id, "c": now.isoformat()})
    _set_cookie(response, RUN_COOKIE, str(run), None)
    return response


@bp.route("/kiosk/survey", methods=["GET", "POST"], endpoint="kiosk_survey")
@public
@token_limited
def kiosk_survey() -> Response:
    """The survey of the invitation this tablet claimed; back to the start screen once it is done."""
    device = paired_device()
    if device is None:
        return _unpaired()
    claim = _running_claim(device)
    if claim is None:
        return _to_start()
    session = db_session()
    now = utcnow()
    link = find_survey_by_id(session, claim.invitation_id)
    if link is None or link.state(now) is not LinkState.OPEN:
        return _to_start()
    run = SurveyRun(link.context, _kiosk_mode())
    if request.method == "GET":
        return run.first_page(request.args.get("lang"))
    response = run.handle_post(form_data(), now=now)
    return _clear_run(response) if run.finished else response


@bp.post("/kiosk/release", endpoint="kiosk_release")
@public
@token_limited
def kiosk_release() -> Response:
    """Give an untouched invitation back to the queue ("this is not me") and lock the screen again."""
    device = paired_device()
    if device is None:
        return _unpaired()
    claim = _running_claim(device)
    if claim is not None and release_kiosk_handout(db_session(), claim.invitation_id, claim.claimed_at):
        commit()
    return _to_start()


@bp.route("/kiosk/pair", methods=["GET", "POST"], endpoint="kiosk_pair")
@allow(Role.FRONT_DESK, Role.ADMIN)
def kiosk_pair() -> Response:
    """Make this device a kiosk (and sign the staff member out on it)."""
    if request.method == "GET":
        return survey_page("survey/kiosk_pair.html", _language())
    label = (request.form.get("label") or "").strip()[:60] or "Kiosk"
    account = current_account()
    device, secret = pair_kiosk(
        db_session(),
        name=label,
        paired_by_id=account.id,
        user_agent=request.headers.get("User-Agent"),
        ip=client_ip(),
    )
    end_browser_session()
    commit()
    response = redirect(url_for("survey.kiosk"), code=303)
    _set_cookie(response, DEVICE_COOKIE, _device_cookie(device.id, secret), DEVICE_MAX_AGE)
    return _clear_run(response)
