"""Access control: every endpoint declares a policy, roles stay on their own pages, anything undeclared is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.accounts.models import Role, User
from tests.unit.web.conftest import HOMES
from web.access import Policy, allow, policy_for, public, safe_next


def test_every_endpoint_declares_an_access_policy(app: Flask) -> None:
    missing = sorted({rule.endpoint for rule in app.url_map.iter_rules() if policy_for(app, rule.endpoint) is None})
    assert missing == [], f"endpoints without @allow/@signed_in/@public: {missing}"


def test_policies_are_what_we_expect(app: Flask) -> None:
    public_endpoints = sorted(
        rule.endpoint for rule in app.url_map.iter_rules() if (p := policy_for(app, rule.endpoint)) and p.public
    )
    # Adding a public endpoint is a decision: this list makes it visible in review.
    assert public_endpoints == [
        "api.openapi",
        # Asking for a reset link answers the same for every email; the link itself rests on a 256-bit token.
        "auth.forgot_password",
        "auth.login",
        # The code step after a right password: it serves only a browser holding that pending sign-in (a signed
        # cookie, five minutes), rate-limited per address and per account.
        "auth.login_code",
        "auth.login_recovery",
        "auth.logout",
        "auth.reset_password",
        "health.healthz",
        "index",
        "static",
        # The kiosk screens need no staff login: they act only for a tablet paired by staff (a signed device cookie).
        "survey.kiosk",
        "survey.kiosk_begin",
        "survey.kiosk_release",
        "survey.kiosk_survey",
        # Opt-out and the survey itself rest on the 256-bit token in the path.
        "survey.opt_out",
        "survey.start",
    ]
    for role, path in HOMES.items():
        endpoint = app.url_map.bind("").match(path)[0]
        policy = policy_for(app, endpoint)
        assert policy == Policy(public=False, roles=frozenset({role}))


@pytest.mark.parametrize("role", list(HOMES))
def test_each_role_is_refused_every_other_roles_home(
    client: FlaskClient, signed_in: Callable[..., User], role: str
) -> None:
    signed_in(role)
    for other, path in HOMES.items():
        response = client.get(path)
        if other == role:
            assert response.status_code == 200, path
        else:
            assert response.status_code == 403, (role, path)
            assert "You do not have access to this page" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", [*HOMES.values(), "/frontdesk/clients/1", "/admin/users/new"])
def test_anonymous_users_are_sent_to_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next={path}"


def test_anonymous_post_is_sent_to_login_without_next(client: FlaskClient) -> None:
    from tests.unit.web.conftest import csrf_token

    token = csrf_token(client)
    response = client.post("/admin/operations/test-email", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"


def test_htmx_request_from_an_expired_session_navigates_to_login(client: FlaskClient) -> None:
    response = client.get("/frontdesk/?q=a", headers={"HX-Request": "true", "HX-Target": "roster-results"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


def test_an_endpoint_without_a_policy_is_refused(test_settings: object, db: object, staff: Callable[..., User]) -> None:
    from web.app import create_app

    app = create_app(settings=test_settings, database=db)  # type: ignore[arg-type]
    app.config.update(TESTING=True)

    @app.get("/forgotten")
    def forgotten() -> str:
        return "should never be served"

    @app.get("/declared")
    @public
    def declared() -> str:
        return "fine"

    client = app.test_client()
    assert client.get("/forgotten").status_code == 403
    assert client.get("/declared").status_code == 200
    from tests.unit.web.conftest import login

    user = staff("admin")
    login(client, user.email)
    assert client.get("/forgotten").status_code == 403  # even for an admin


def test_allow_needs_a_role() -> None:
    with pytest.raises(ValueError, match="at least one role"):
        allow()
    with pytest.raises(ValueError, match="janitor"):
        allow("janitor")  # type: ignore[arg-type]
    assert Policy(public=False, roles=frozenset({Role.ADMIN.value})).admits("admin")


@pytest.mark.parametrize(
    ("target", "ok"),
    [
        ("/clinician/", True),
        ("/frontdesk/?q=x&page=2", True),
        ("", False),
        (None, False),
        ("clinician/", False),
        ("//evil.example/x", False),
        ("/\\evil.example", False),
        ("https://evil.example/", False),
        ("/ok\r\nSet-Cookie: x", False),
    ],
)
def test_safe_next(target: str | None, ok: bool) -> None:
    assert (safe_next(target) is not None) is ok
    if ok:
        assert safe_next(target) == target


def test_every_navigation_link_is_to_a_page_its_role_may_open(app: Flask) -> None:
    from web.roles import NAVIGATION

    refused = [
        (role.value, item.endpoint)
        for role, items in NAVIGATION.items()
        for item in items
        if not ((policy := policy_for(app, item.endpoint)) and policy.admits(role.value))
    ]
    assert refused == []
