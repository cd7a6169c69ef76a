"""Access control, enforced in one place.

A view declares who may call it with ``@allow(*roles)``, ``@signed_in`` (any staff role) or ``@public``; the
decorators only record a Policy on the function. ``enforce_policy`` (the app's first before_request hook) looks
the endpoint's policy up and refuses the request before the view runs: anonymous -> redirect to the login page
(401 JSON under /api), wrong role -> 403. An endpoint with no declared policy is refused too (fail closed), and
a test walks app.url_map so a route without one never ships. Object-level checks (this clinician, this client)
are done by the scoped queries in services, and the views answer 404 when those return nothing.

``audit_refused_lookup`` (an after_request hook) records every such 404 in one place: when a signed-in staff member
asks a route for a record by id (pages and API alike) and gets 404, an ``access_refused`` event names the route,
the method and the ids asked for, so a person probing other caseloads leaves a trail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, flash, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from services.accounts.models import Role
from web.app import current_settings

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., object])

POLICY_ATTR = "_rapport_policy"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DECLARED_KEY = "rapport.policies"

# Where each role lands after login, and what "home" means in the navigation.
ROLE_HOMES: dict[Role, str] = {
    Role.FRONT_DESK: "frontdesk.home",
    Role.CLINICIAN: "clinician.home",
    Role.SUPERVISOR: "supervisor.home",
    Role.MANAGER: "manager.home",
    Role.ADMIN: "admin.home",
}


@dataclass(frozen=True)
class Policy:
    """Who may call an endpoint: anyone (public) or staff with one of the roles."""

    public: bool
    roles: frozenset[str] = frozenset()

    def admits(self, role: str) -> bool:
        """True when a signed-in user with role may call the endpoint."""
        return self.public or role in self.roles


PUBLIC = Policy(public=True)


def allow(*roles: Role) -> Callable[[F], F]:
    """Declare that only signed-in staff with one of roles may call the view."""
    if not roles:
        raise ValueError("allow() needs at least one role; use @public for open endpoints")
    policy = Policy(public=False, roles=frozenset(Role(role).value for role in roles))

    def decorate(view: F) -> F:
        setattr(view, POLICY_ATTR, policy)
        return view

    return decorate


def signed_in(view: F) -> F:
    """Declare that any signed-in staff member may call the view."""
    return allow(*Role)(view)


def public(view: F) -> F:
    """Declare that anyone, signed in or not, may call the view."""
    setattr(view, POLICY_ATTR, PUBLIC)
    return view


def declare(app: Flask, endpoint: str, policy: Policy) -> None:
    """Declare the policy of an endpoint whose view we do not write (Flask's own static route)."""
    app.extensions.setdefault(DECLARED_KEY, {})[endpoint] = policy


def policy_for(app: Flask, endpoint: str) -> Policy | None:
    """The declared policy of an endpoint, or None when it has none (and is therefore refused)."""
    declared: dict[str, Policy] = app.extensions.get(DECLARED_KEY, {})
    if endpoint in declared:
        return declared[endpoint]
    view = app.view_functions.get(endpoint)
    policy = getattr(view, POLICY_ATTR, None)
    return policy if isinstance(policy, Policy) else None


def home_url(role: str) -> str:
    """The URL of a role's home page."""
    return url_for(ROLE_HOMES[Role(role)])


def safe_next(target: str | None) -> str | None:
    """target if it is a same-site relative path (no scheme, host or protocol-relative trick), else None."""
    if not target or len(target) > 2000:
        return None
    if any(ch in target for ch in "\\\r\n\t") or any(ord(ch) < 32 for ch in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _wants_json() -> bool:
    return request.blueprint == "api" or request.path.startswith("/api/")


def _to_login() -> Response:
    from web.login import ended_session_reason

    reason = ended_session_reason()
    if reason == "idle":
        minutes = current_settings().session_idle_minutes
        flash(_("You were signed out after %(minutes)d minutes without activity.", minutes=minutes), "info")
    elif reason == "expired":
        hours = current_settings().session_absolute_hours
        flash(_("You were signed out because you signed in more than %(hours)d hours ago.", hours=hours), "info")
    elif reason is not None:
        flash(_("Your session has ended. Please sign in again."), "info")
    next_target = request.full_path if request.method == "GET" else None
    if next_target is not None and next_target.endswith("?"):
        next_target = next_target[:-1]
    location = url_for("auth.login", next=safe_next(next_target))
    if request.headers.get("HX-Request"):
        # An htmx call would swap the login page into a fragment; ask htmx to navigate instead.
        response = Response(status=401)
        response.headers["HX-Redirect"] = location
        return response
    return Response(status=302, headers={"Location": location})


def enforce_policy() -> Response | None:
    """before_request: refuse the request unless the endpoint's policy admits the caller."""
    from web.login import current_staff

    endpoint = request.endpoint
    if endpoint is None:
        return None  # no route matched: the 404 or 405 follows, and no view runs
    policy = policy_for(current_app, endpoint)
    if policy is None:
        log.error("endpoint %s has no access policy; refusing", endpoint)
        abort(403)
    if endpoint == "static" or policy.public:
        return None  # a stylesheet or a public page (survey links) needs no signed-in staff member
    viewer = current_staff()
    if viewer is None:
        if _wants_json():
            return _api_refusal()
        return _to_login()
    if not policy.admits(viewer.role):
        abort(403)
    if viewer.via == "api" and viewer.scope != "write" and request.method not in READ_METHODS:
        from web.errors import error_response

        return error_response(403, message=_("This token may only read; ask an administrator for a write token."))
    return None


def _api_refusal() -> Response:
    """401 in the API's error shape, saying why a bearer token was refused when it was one we issued."""
    from web.errors import error_response
    from web.login import refused_token_reason

    reason = refused_token_reason()
    if reason == "expired":
        return error_response(401, message=_("This API token has expired. Ask an administrator for a new one."))
    if reason == "revoked":
        return error_response(401, message=_("This API token was revoked. Ask an administrator for a new one."))
    return error_response(401)


def _id_arguments() -> dict[str, int]:
    """The id arguments of the matched route (those named *_id), as given in the URL."""
    args = request.view_args or {}
    return {name: value for name, value in args.items() if name.endswith("_id") and isinstance(value, int)}


def audit_refused_lookup(response: Response) -> Response:
    """after_request: audit a 404 answered to signed-in staff on a route that opens a record by id."""
    from web.login import loaded_staff

    if response.status_code != 404 or request.url_rule is None or request.endpoint is None:
        return response
    ids = _id_arguments()
    viewer = loaded_staff()
    if not ids or viewer is None:
        return response
    policy = policy_for(current_app, request.endpoint)
    if policy is None or policy.public:
        return response
    from services.audit.operations import record_refused_lookup
    from web.limiter import client_ip
    from web.request_db import commit, db_session, rollback

    try:
        rollback()  # nothing the refused request did is kept; only the audit event is written
        record_refused_lookup(
            db_session(),
            actor_id=viewer.id,
            route=request.url_rule.rule,
            method=request.method,
            ids=ids,
            via=viewer.via,
            ip=client_ip(),
        )
        commit()
    except Exception:
        # The refusal itself stands; a database that cannot take the event must not turn the 404 into a 500.
        log.exception("could not audit a refused look-up of %s", request.path)
        rollback()
    return response


def init_app(app: Flask) -> None:
    """Install the policy check, the audit of refused look-ups, and declare Flask's static route public."""
    declare(app, "static", PUBLIC)
    app.before_request(enforce_policy)
    app.after_request(audit_refused_lookup)
