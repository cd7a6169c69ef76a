"""The access matrix, generated from app.url_map and the OpenAPI document: every route, every identity, one answer.

Each route's arguments are classified (an id names the kind of record it opens; a few other arguments have a
known harmless value). A route with an argument the matrix cannot classify fails the test, so a new route is
either covered without editing this file or makes it fail. For every non-public route and every identity the
expected answer follows from two facts: the route's declared policy (web/access.py) and who holds the record
(HOLDERS below, the domain's caseload rules). Anonymous -> sign-in redirect (web) or 401 (API); a role the policy
never admits -> 403; a role it admits but who does not hold the record (another team, the same team without the
client) -> 404; the holder -> served. After every refused write the database is compared with a snapshot.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session
from werkzeug.routing import Rule

from services.accounts.kiosks import pair_kiosk
from services.accounts.models import User
from services.accounts.operations import create_api_token
from services.alerts.models import Alert
from services.config import Settings
from services.reporting.models import Report
from services.reviews.models import Review
from services.surveys.models import Invitation
from tests.factories import make_appointment, make_client, make_episode, make_user
from tests.unit.web.conftest import csrf_from, login
from web.access import policy_for

# Which kind of record each id argument opens. A new id argument must be added here (or the test fails).
ID_KINDS = {
    "client_id": "client",
    "episode_id": "episode",
    "appointment_id": "appointment",
    "invitation_id": "invitation",
    "alert_id": "alert",
    "review_id": "review",
    "report_id": "report",
    "user_id": "user",
    "token_id": "api_token",
    "device_id": "kiosk_device",
}
# Arguments that are not ids, with a value that exercises the route.
OTHER_ARGUMENTS = {"lang": "es", "filename": "rapport.css", "key": "survey_link_hours", "name": "k"}

# Who holds each kind of record in the matrix's world (by identity name): the caseload rules of services/*/queries.
CLIENT_SIDE = frozenset({"front_desk", "clinician", "supervisor"})
HOLDERS: dict[str, frozenset[str]] = {
    "client": CLIENT_SIDE,
    "episode": CLIENT_SIDE,
    "appointment": CLIENT_SIDE,
    "invitation": CLIENT_SIDE,
    "alert": CLIENT_SIDE,
    "review": frozenset({"supervisor", "manager"}),
    "report": frozenset({"manager", "manager_not_reviewer", "admin"}),
    "user": frozenset({"admin"}),
    "api_token": frozenset({"admin"}),
    "kiosk_device": frozenset({"front_desk", "admin"}),
}
# Endpoints narrower than their kind: only the session's own clinician rates the partnership.
ENDPOINT_HOLDERS = {
    "clinician.rate": frozenset({"clinician"}),
    "clinician.rate_submit": frozenset({"clinician"}),
    # Only the episode's own clinician marks a brief discussed and revises the goals with the client.
    "clinician.brief_discussed": frozenset({"clinician"}),
    "clinician.together_goals": frozenset({"clinician"}),
}
# Admitted writes that end the caller's staff session (pairing turns the browser into a kiosk): sent last.
ENDS_SESSION = {"survey.kiosk_pair"}

# Identities: name -> (role, team). "clinician" holds the client; the others are there to be refused.
IDENTITIES: dict[str, tuple[str, str]] = {
    "front_desk": ("front_desk", "Team North"),
    "clinician": ("clinician", "Team North"),
    "clinician_same_team": ("clinician", "Team North"),
    "clinician_other_team": ("clinician", "Team South"),
    "supervisor": ("supervisor", "Team North"),
    "supervisor_other_team": ("supervisor", "Team South"),
    "manager": ("manager", "Team North"),
    "manager_not_reviewer": ("manager", "Team North"),
    "admin": ("admin", "Team North"),
}

# Columns a request may touch without changing anything a person did (the idle timer, a token's last use).
VOLATILE = {("login_sessions", "last_seen_at"), ("api_tokens", "last_used_at")}
# Tables a refused request may add to: refused look-ups are audited (and the audit chain's head moves with them).
APPEND_ONLY = {"audit_events"}
AUDIT_HEAD = {"audit_chain"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
MISSING_ID = 2_000_000_000


@dataclass
class World:
    """The records the matrix opens, and who is who."""

    users: dict[str, User]
    records: dict[str, int]
    tokens: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """One route and method, with the URL to call and the kind of record it opens (None: no id)."""

    rule: Rule
    method: str
    url: str
    kind: str | None

    @property
    def api(self) -> bool:
        """True for JSON API routes (bearer tokens; 401 when anonymous)."""
        return self.rule.endpoint.startswith("api.")

    def __str__(self) -> str:
        return f"{self.method} {self.rule.rule}"


def build_world(session: Session, settings: Settings) -> World:
    """Two teams, a client of North's clinician with everything a route can open, and one of each identity."""
    users = {name: make_user(session, role=role, team=team) for name, (role, team) in IDENTITIES.items()}
    client = make_client(session)
    episode = make_episode(session, client=client, clinician=users["clinician"])
    appointment = make_appointment(session, episode=episode)
    now = datetime.now(UTC)
    invitation = Invitation(
        episode_id=episode.id,
        appointment_id=appointment.id,
        instruments=["PHQ9"],
        channel="email",
        expires_at=now + timedelta(days=1),
    )
    alert = Alert(episode_id=episode.id, kind="alliance", summary="matrix")
    session.add_all([invitation, alert])
    session.flush()
    review = Review(
        key=f"matrix:{alert.id}",
        alert_id=alert.id,
        episode_id=episode.id,
        reason="unrepaired",
        reviewer_id=users["manager"].id,
        due_at=now + timedelta(days=3),
    )
    pdf = settings.reports_dir / "matrix.pdf"
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(b"%PDF-1.4 matrix")
    report = Report(
        scope="practice",
        period="2026-10",
        status="ready",
        file_path=str(pdf),
        sha256=hashlib.sha256(pdf.read_bytes()).hexdigest(),
        generated_at=now,
    )
    session.add_all([review, report])
    session.flush()
    tokens = {name: create_api_token(session, user=user, name=f"matrix-{name}") for name, user in users.items()}
    # The token the token routes open (revoke): not one the callers use, so revoking it locks no caller out.
    create_api_token(session, user=users["clinician_same_team"], name="matrix-target")
    session.flush()
    from services.accounts.models import ApiToken

    token_row = session.scalars(select(ApiToken).order_by(ApiToken.id.desc())).first()
    assert token_row is not None
    device, _secret = pair_kiosk(
        session, name="matrix kiosk", paired_by_id=users["front_desk"].id, user_agent="matrix", ip=None
    )
    records = {
        "client": client.id,
        "episode": episode.id,
        "appointment": appointment.id,
        "invitation": invitation.id,
        "alert": alert.id,
        "review": review.id,
        "report": report.id,
        "user": users["clinician_same_team"].id,
        "api_token": token_row.id,
        "kiosk_device": device.id,
    }
    session.commit()
    return World(users=users, records=records, tokens=tokens)


def classify(app: Flask, records: dict[str, int], *, record_id: int | None = None) -> tuple[list[Case], list[str]]:
    """Every non-public (rule, method) as a Case, and the rules the matrix cannot classify."""
    cases: list[Case] = []
    unclassified: list[str] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        policy = policy_for(app, rule.endpoint)
        id_args = [a for a in rule.arguments if a.endswith("_id")]
        if policy is not None and policy.public:
            if id_args:
                unclassified.append(f"{rule.rule}: a public route that opens a record by id")
            continue
        values: dict[str, Any] = {}
        kinds = set()
        for argument in sorted(rule.arguments):
            if argument in ID_KINDS:
                kinds.add(ID_KINDS[argument])
                values[argument] = record_id if record_id is not None else records[ID_KINDS[argument]]
            elif argument in OTHER_ARGUMENTS:
                values[argument] = OTHER_ARGUMENTS[argument]
            else:
                unclassified.append(f"{rule.rule}: argument {argument!r}")
        if len(kinds) > 1:
            unclassified.append(f"{rule.rule}: opens several kinds of record {sorted(kinds)}")
        if any(a not in values for a in rule.arguments) or len(kinds) > 1:
            continue
        url = rule.build(values, append_unknown=False)[1]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            cases.append(Case(rule, method, url, next(iter(kinds)) if kinds else None))
    return cases, unclassified


def expected(app: Flask, case: Case, identity: str | None, *, via: str) -> str:
    """What the identity must get: 'login', '401', '403', '404' or 'served'."""
    if identity is None or via != ("api" if case.api else "web"):
        return "401" if case.api else "login"
    policy = policy_for(app, case.rule.endpoint)
    assert policy is not None
    if not policy.admits(IDENTITIES[identity][0]):
        return "403"
    holders = ENDPOINT_HOLDERS.get(case.rule.endpoint, HOLDERS[case.kind] if case.kind else None)
    if holders is not None and identity not in holders:
        return "404"
    return "served"


def snapshot(session: Session) -> dict[str, set[tuple[Any, ...]]]:
    """Every row of every table (volatile columns left out), to compare before and after a refused write."""
    session.expire_all()
    state: dict[str, set[tuple[Any, ...]]] = {}
    bind = session.connection()
    for table in sorted(inspect(bind).get_table_names()):
        columns = [c["name"] for c in inspect(bind).get_columns(table) if (table, c["name"]) not in VOLATILE]
        quoted = ", ".join(f'"{c}"' for c in columns)
        state[table] = {tuple(row) for row in bind.execute(text(f'SELECT {quoted} FROM "{table}"'))}
    return state


def changes(before: dict[str, set[tuple[Any, ...]]], after: dict[str, set[tuple[Any, ...]]]) -> list[str]:
    """Tables whose rows differ (only additions to append-only tables are allowed)."""
    found = []
    for table, rows in after.items():
        old = before.get(table, set())
        if table in AUDIT_HEAD:
            continue
        if table in APPEND_ONLY:
            if old - rows:
                found.append(f"{table}: rows removed or changed")
        elif rows != old:
            found.append(f"{table}: {len(rows - old)} added/changed, {len(old - rows)} removed/changed")
    return found


def outcome(response: Any, case: Case) -> str:
    """The answer's class, in the terms of expected()."""
    status = response.status_code
    response.close()  # a streamed download keeps its file open until closed
    if status == 302 and response.headers.get("Location", "").startswith("/login"):
        return "login"
    if status in (401, 403, 404):
        return str(status)
    if status >= 500:
        return f"server error {status}"
    return "served"


def call(client: FlaskClient, case: Case, *, csrf: str | None, token: str | None, url: str | None = None) -> Any:
    """Send the case's request: a form with the CSRF token (web) or an empty JSON body with the bearer token (API)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    target = url or case.url
    if case.method not in WRITES:
        return client.open(target, method=case.method, headers=headers)
    if case.api:
        return client.open(target, method=case.method, headers=headers, json={})
    return client.open(target, method=case.method, headers=headers, data={"csrf_token": csrf or ""})


def signed_in_clients(app: Flask, world: World) -> Iterator[tuple[str, FlaskClient, str]]:
    """A test client per identity, signed in through the real form, with a CSRF token from its home page."""
    for name, user in world.users.items():
        browser = app.test_client()
        response = login(browser, user.email)
        assert response.status_code == 302, (name, response.status_code)
        home = browser.get(response.headers["Location"])
        assert home.status_code == 200, (name, home.status_code)
        yield name, browser, csrf_from(home.get_data(as_text=True))


def openapi_operations(app: Flask) -> set[tuple[str, str]]:
    """(METHOD, Flask-style path) of every operation in the OpenAPI document."""
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    base = document.get("servers", [{}])[0].get("url", "")
    prefix = re.sub(r"^https?://[^/]+", "", base).rstrip("/")
    operations = set()
    for path, item in document["paths"].items():
        flask_path = re.sub(r"\{(\w+_id)\}", r"<int:\1>", re.sub(r"\{(\w+)\}", r"{\1}", prefix + path))
        flask_path = re.sub(r"\{(\w+)\}", r"<\1>", flask_path)
        for method in item:
            if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                operations.add((method.upper(), flask_path))
    return operations


def test_every_api_route_is_in_the_openapi_document_and_back(app: Flask) -> None:
    served = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = openapi_operations(app)
    assert sorted(served - documented) == [], "API routes missing from the OpenAPI document"
    assert sorted(documented - served) == [], "documented API operations that no route serves"


def test_access_matrix(app: Flask, session: Session, test_settings: Settings, capsys: Any) -> None:
    world = build_world(session, test_settings)
    cases, unclassified = classify(app, world.records)
    assert unclassified == [], "routes the access matrix cannot classify: add their arguments to ID_KINDS"
    api_cases = [c for c in cases if c.api]
    web_cases = [c for c in cases if not c.api]
    # Each call is (identity or None, via, client, csrf, token).
    callers: list[tuple[str | None, str, FlaskClient, str | None, str | None]] = []
    anonymous = app.test_client()
    callers.append((None, "web", anonymous, csrf_from(anonymous.get("/login").get_data(as_text=True)), None))
    for name, browser, csrf in signed_in_clients(app, world):
        callers.append((name, "web", browser, csrf, None))
        callers.append((name, "api", app.test_client(), None, world.tokens[name]))

    wrong: list[str] = []
    pairs = 0
    admitted_writes: list[tuple[str, FlaskClient, str | None, str | None, Case]] = []
    for identity, via, browser, csrf, token in callers:
        # Every identity meets every route; a session never opens the API and a bearer token never opens a page.
        for case in cases:
            want = expected(app, case, identity, via=via)
            if want == "served" and case.method in WRITES:
                assert identity is not None
                admitted_writes.append((identity, browser, csrf, token, case))
                continue
            before = snapshot(session) if case.method in WRITES else None
            got = outcome(call(browser, case, csrf=csrf, token=token), case)
            pairs += 1
            if got != want:
                wrong.append(f"{identity or 'anonymous'} via {via}: {case} -> {got}, expected {want}")
            if before is not None and (diff := changes(before, snapshot(session))):
                wrong.append(f"{identity or 'anonymous'} via {via}: refused {case} changed the database: {diff}")
            if want == "served" and case.kind is not None:
                # The holder asking for a record that does not exist gets 404, never a server error.
                missing = classify(app, world.records, record_id=MISSING_ID)[0]
                url = next(m.url for m in missing if m.rule is case.rule and m.method == case.method)
                got = outcome(call(browser, case, csrf=csrf, token=token, url=url), case)
                pairs += 1
                if got != "404":
                    wrong.append(f"{identity} via {via}: {case} with a missing id -> {got}, expected 404")
    # The holders' writes last: they may change the records (resolve an alert, cancel an appointment).
    admitted_writes.sort(key=lambda write: write[4].rule.endpoint in ENDS_SESSION)
    for identity, browser, csrf, token, case in admitted_writes:
        got = outcome(call(browser, case, csrf=csrf, token=token), case)
        pairs += 1
        if got != "served":
            wrong.append(f"{identity}: {case} -> {got}, expected to be served (any answer but 401/403/404/5xx)")

    with capsys.disabled():
        print(
            f"\naccess matrix: {len({c.rule.rule for c in cases})} routes, {len(cases)} (route, method) pairs, "
            f"{len(api_cases)} API and {len(web_cases)} web, {len(callers)} callers, "
            f"{pairs} (identity, route) requests checked"
        )
    assert wrong == [], "\n".join(wrong)


def test_a_route_the_matrix_cannot_classify_fails_it(make_app: Any) -> None:
    from web.access import allow

    app = make_app()

    @app.get("/clinician/widgets/<int:widget_id>")
    @allow("clinician")  # type: ignore[arg-type]
    def widget(widget_id: int) -> str:
        return "a new kind of record"

    records = dict.fromkeys(HOLDERS, 1)
    cases, unclassified = classify(app, records)
    assert unclassified == ["/clinician/widgets/<int:widget_id>: argument 'widget_id'"]
    assert all(case.rule.rule != "/clinician/widgets/<int:widget_id>" for case in cases)
    assert any(case.kind == "alert" for case in cases)


def test_a_refused_write_that_changes_the_database_is_caught(session: Session) -> None:
    before = snapshot(session)
    make_client(session)
    assert changes(before, snapshot(session)) == ["clients: 1 added/changed, 0 removed/changed"]
    audit_only = snapshot(session)
    from services.audit.operations import record_event

    record_event(session, action="client_viewed", actor_id=None)
    assert changes(audit_only, snapshot(session)) == []
