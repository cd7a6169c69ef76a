"""The `rapport` command: a Flask CLI group for running, migrating, seeding and operating Rapport."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup
from sqlalchemy import func, select

from services import schema
from services.config import PROJECT_ROOT, ConfigError, Settings, load_settings
from services.db import get_database


def _create_app() -> Flask:
    from web.app import create_app

    return create_app()


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


cli = FlaskGroup(
    name="rapport",
    help="Rapport: routine outcome and alliance feedback for a psychotherapy practice.",
    create_app=_create_app,
    add_default_commands=False,
    load_dotenv=False,
)


@cli.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    settings = _settings()
    database = get_database(settings.database_url)
    schema.upgrade(database.engine, revision)
    click.echo(f"database at {schema.current_revision(database.engine)} ({database.dialect})")


@cli.group()
def user() -> None:
    """Staff accounts."""


@user.command("create")
@click.option("--role", required=True, type=click.Choice(["front_desk", "clinician", "supervisor", "manager", "admin"]))
@click.option("--email", required=True)
@click.option("--name", default=None)
@click.option("--team", default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_create(role: str, email: str, name: str | None, team: str | None, password_stdin: bool) -> None:
    """Create a staff account (prompts for the password unless --password-stdin)."""
    from services.accounts.operations import AccountError, create_user
    from services.accounts.passwords import WeakPasswordError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = _settings()
    try:
        with get_database(settings.database_url).unit_of_work() as session:
            created = create_user(session, email=email, password=password, role=role, name=name, team=team)
            click.echo(f"created {created.role} {created.email} (id {created.id})")
    except (AccountError, WeakPasswordError) as exc:
        raise click.ClickException(str(exc)) from exc


def _account(session: Any, email: str) -> Any:
    from services.accounts.queries import get_user_by_email

    found = get_user_by_email(session, email)
    if found is None:
        raise click.ClickException(f"no user with email {email}")
    return found


@user.command("set")
@click.option("--email", required=True, help="The account to change.")
@click.option("--role", default=None, help="front_desk, clinician, supervisor, manager or admin.")
@click.option("--team", default=None, help='An existing team\'s name; "" for no team.')
@click.option("--language", default=None, help='en or es; "" to follow the browser.')
@click.option("--name", default=None)
def user_set(email: str, role: str | None, team: str | None, language: str | None, name: str | None) -> None:
    """Change a staff account's role, team, language or name (audited)."""
    from services.accounts.operations import KEEP, AccountError, update_user

    if role is None and team is None and language is None and name is None:
        raise click.UsageError("nothing to change: give --role, --team, --language or --name")
    settings = _settings()
    try:
        with get_database(settings.database_url).unit_of_work() as session:
            account = _account(session, email)
            changes = update_user(
                session,
                account,
                actor_id=None,
                name=name,
                role=role,
                team=KEEP if team is None else (team or None),
                language=KEEP if language is None else (language or None),
            )
            if not changes:
                click.echo(f"{account.email}: nothing changed")
            for what, (before, after) in changes.items():
                click.echo(f"{account.email}: {what} {before or '-'} -> {after or '-'}")
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc


@user.command("deactivate")
@click.option("--email", required=True)
def user_deactivate(email: str) -> None:
    """Deactivate an account: it cannot sign in, and its open sessions end at their next request."""
    from services.accounts.operations import AccountError, deactivate_user

    settings = _settings()
    try:
        with get_database(settings.database_url).unit_of_work() as session:
            account = _account(session, email)
            changed = deactivate_user(session, account, actor_id=None)
            click.echo(f"{account.email}: {'deactivated' if changed else 'already deactivated'}")
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc


@user.command("reactivate")
@click.option("--email", required=True)
def user_reactivate(email: str) -> None:
    """Let a deactivated account sign in again."""
    from services.accounts.operations import reactivate_user

    settings = _settings()
    with get_database(settings.database_url).unit_of_work() as session:
        account = _account(session, email)
        changed = reactivate_user(session, account, actor_id=None)
        click.echo(f"{account.email}: {'reactivated' if changed else 'already active'}")


@user.command("reset-two-step")
@click.option("--email", required=True)
def user_reset_two_step(email: str) -> None:
    """Remove an account's authenticator and recovery codes (a lost phone) and end its sessions (audited)."""
    from services.accounts.two_factor import reset_two_factor

    settings = _settings()
    with get_database(settings.database_url).unit_of_work() as session:
        account = _account(session, email)
        if reset_two_factor(session, account, actor_id=None):
            click.echo(f"{account.email}: two-step sign-in reset; they sign in with their password and set it up again")
        else:
            click.echo(f"{account.email}: no two-step sign-in to reset")


@user.command("reset-password")
@click.option("--email", required=True)
@click.option("--password-stdin", is_flag=True, help="Set the password read from standard input instead.")
def user_reset_password(email: str, password_stdin: bool) -> None:
    """Email the person a single-use link to choose a new password, or set it from stdin; ends their sessions."""
    from services.accounts.operations import AccountError, ResetOutcome, request_password_reset, set_password
    from services.accounts.passwords import WeakPasswordError
    from workers.enqueue import flush_publisher, send_notification_after_commit

    settings = _settings()
    try:
        with get_database(settings.database_url).unit_of_work() as session:
            account = _account(session, email)
            if password_stdin:
                password = sys.stdin.readline().rstrip("\r\n")
                ended = set_password(session, account, password=password, actor_id=None)
                click.echo(f"{account.email}: password set; {ended} login session(s) ended")
                return
            if not account.active:
                raise click.ClickException(f"{account.email} is deactivated; reactivate it first")
            result = request_password_reset(session, email=account.email, requested_by_label="cli")
            if result.outcome is not ResetOutcome.QUEUED:
                raise click.ClickException(f"{account.email} was sent several links in the last hour; try later")
            assert result.notification_id is not None
            send_notification_after_commit(session, result.notification_id)
    except (AccountError, WeakPasswordError) as exc:
        raise click.ClickException(str(exc)) from exc
    flush_publisher(timeout=5.0)
    click.echo(f"{email}: a reset link is queued (notification {result.notification_id}); the worker emails it")


@cli.group("api-token")
def api_token() -> None:
    """Bearer tokens for the JSON API."""


@api_token.command("create")
@click.option("--email", required=True, help="The staff account the token acts as.")
@click.option(
    "--scope",
    type=click.Choice(["read", "write"]),
    default="read",
    show_default=True,
    help="read: GET only; write: also the changes the account's role may make.",
)
@click.option("--expires-days", type=click.IntRange(1, 730), default=90, show_default=True)
@click.option("--name", default="api", show_default=True, help="What the token is for (shown to admins).")
def api_token_create(email: str, scope: str, expires_days: int, name: str) -> None:
    """Create an API token and print it once (the last line of the output)."""
    from services.accounts.operations import AccountError, create_api_token
    from services.accounts.queries import get_user_by_email

    settings = _settings()
    with get_database(settings.database_url).unit_of_work() as session:
        owner = get_user_by_email(session, email)
        if owner is None:
            raise click.ClickException(f"no user with email {email}")
        try:
            raw = create_api_token(session, user=owner, name=name, scope=scope, expires_days=expires_days)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{scope} token for {owner.email}, valid {expires_days} days; store it now, it is not shown again:", err=True
    )
    click.echo(raw)


@api_token.command("revoke")
@click.argument("token")
def api_token_revoke(token: str) -> None:
    """Revoke a token by its id or by the start of the token (at least 6 characters, e.g. rpt_AbCdEf)."""
    from services.accounts.operations import find_api_tokens, revoke_api_token

    settings = _settings()
    with get_database(settings.database_url).unit_of_work() as session:
        found = find_api_tokens(session, token)
        if not found:
            raise click.ClickException(f"no API token with id or prefix {token!r}")
        if len(found) > 1:
            ids = ", ".join(str(row.id) for row in found)
            raise click.ClickException(f"{token!r} matches tokens {ids}; revoke one by its id")
        row = found[0]
        changed = revoke_api_token(session, row, actor_id=None)
        click.echo(f"token {row.id} ({row.prefix}…, {row.name}) " + ("revoked" if changed else "was already revoked"))


@cli.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
def audit_verify() -> None:
    """Walk the audit trail's hash chain; name the first row that does not match and exit 1."""
    from services.audit.chain import verify_chain

    settings = _settings()
    started = time.perf_counter()
    with get_database(settings.database_url).read_only_session() as session:
        report = verify_chain(session)
    seconds = time.perf_counter() - started
    if report.ok:
        click.echo(f"audit chain intact: {report.rows} rows verified in {seconds:.2f} s")
        return
    where = f"row id {report.bad_id}" if report.bad_id is not None else "the chain's head"
    position = f" (position {report.bad_seq})" if report.bad_seq is not None else ""
    click.echo(f"audit chain BROKEN at {where}{position}: {report.problem}; {report.rows} rows read", err=True)
    sys.exit(1)


@cli.command("reconcile")
def reconcile_command() -> None:
    """Re-enqueue everything the database says is still pending (what beat runs every minute)."""
    import workers.app  # noqa: F401 - makes the configured Celery app current
    from workers.tasks.ops import run_reconcile

    result = run_reconcile()
    click.echo(" ".join(f"{k}={v}" for k, v in result.items()))


@cli.command("health", with_appcontext=False)
@click.argument("role", type=click.Choice(["worker", "beat", "web"]))
@click.option("--ping/--no-ping", default=True, show_default=True, help="worker: ask the workers over the broker too.")
@click.option("--url", default=None, help="web: the site's base URL (default: RAPPORT_BASE_URL).")
def health_command(role: str, ping: bool, url: str | None) -> None:
    """Exit 0 when ROLE is healthy, 1 when not (monitoring, container health checks).

    worker: a worker consumed the heartbeat job recently, or answers a Celery ping; beat: the beat holding the lock
    ticked recently; web: /healthz answers 200.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from services.ops.queries import Health, beat_health, worker_health

    settings = _settings()
    if role == "web":
        import urllib.error
        import urllib.request

        target = f"{(url or settings.base_url).rstrip('/')}/healthz"
        try:
            with urllib.request.urlopen(target, timeout=5) as response:  # noqa: S310 - the site's own configured URL
                verdict = Health(response.status == 200, f"{target} answered {response.status}")
        except urllib.error.HTTPError as exc:
            verdict = Health(False, f"{target} answered {exc.code}")
        except OSError as exc:
            verdict = Health(False, f"{target} did not answer: {exc}")
    else:
        try:
            with get_database(settings.database_url).session() as session:
                verdict = worker_health(session) if role == "worker" else beat_health(session)
        except SQLAlchemyError as exc:
            verdict = Health(False, f"the database did not answer: {type(exc).__name__}")
        if role == "worker" and not verdict.ok and ping:
            from workers.app import configure

            try:
                replies = configure(settings).control.ping(timeout=2.0) or []
            except Exception as exc:  # the broker is down: the heartbeat verdict stands
                replies = []
                verdict = Health(False, f"{verdict.detail}; the broker did not answer a ping: {type(exc).__name__}")
            if replies:
                names = ", ".join(sorted(name for reply in replies for name in reply))
                verdict = Health(True, f"answered a ping: {names}")
    click.echo(f"{role}: {'ok' if verdict.ok else 'UNHEALTHY'}: {verdict.detail}")
    sys.exit(0 if verdict.ok else 1)


@cli.group()
def demo() -> None:
    """The synthetic demo practice."""


@demo.command("seed")
@click.option("--clients", "n_clients", default=60, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--months", default=6, show_default=True, type=click.IntRange(1, 36))
@click.option("--clinicians", default=None, type=click.IntRange(1, 1000), help="Default: one per 12 clients.")
@click.option("--seed", "random_seed", default=7, show_default=True)
def demo_seed(n_clients: int, months: int, clinicians: int | None, random_seed: int) -> None:
    """Build a synthetic practice (refuses to run on a database that already has clients)."""
    from services.demo.seed import DemoError, seed_demo

    settings = _settings()
    started = time.perf_counter()
    try:
        summary = seed_demo(
            get_database(settings.database_url),
            clients=n_clients,
            months=months,
            clinicians=clinicians,
            seed=random_seed,
        )
    except DemoError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{summary} in {time.perf_counter() - started:.1f}s")


def _procfile(path: Path, values: dict[str, str]) -> dict[str, list[str]]:
    processes: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, command = line.partition(":")
        processes[name.strip()] = shlex.split(command.strip().format(**values))
    return processes


def _database_is_empty(settings: Settings) -> bool:
    from services.accounts.models import User

    with get_database(settings.database_url).session() as session:
        return not session.scalar(select(func.count()).select_from(User))


def _queue_demo_messages(settings: Settings, database: Any) -> None:
    """Hand the fresh demo's invitation messages to the worker now, rather than at reconcile's first pass.

    The seed leaves them as pending outbox rows (services never publish); without this the outbox folder stays empty
    for the first couple of minutes (reconcile leaves work younger than its grace period alone).
    """
    import dataclasses

    from workers.app import configure
    from workers.tasks.ops import run_reconcile

    configure(settings)
    result = run_reconcile(settings=dataclasses.replace(settings, reconcile_grace_seconds=0), database=database)
    if result.get("notifications"):
        click.echo(f"queued {result['notifications']} demo invitation messages for the worker")


@cli.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-demo", is_flag=True, help="Do not seed the demo practice into an empty database.")
def run_command(host: str, port: int, no_demo: bool) -> None:
    """Run web, one worker and beat together for local use; Ctrl-C stops all three."""
    settings = _settings()
    database = get_database(settings.database_url)
    schema.upgrade(database.engine)
    if not no_demo and _database_is_empty(settings):
        from services.demo.seed import seed_demo

        click.echo("seeding the demo practice (first run)...")
        click.echo(seed_demo(database, clients=60, months=6, clinicians=None, seed=7))
        _queue_demo_messages(settings, database)
    database.dispose()
    processes = _procfile(
        PROJECT_ROOT / "infra" / "Procfile.local", {"python": sys.executable, "host": host, "port": str(port)}
    )
    env = {**os.environ, "RAPPORT_BASE_URL": os.environ.get("RAPPORT_BASE_URL", f"http://{host}:{port}")}
    children: dict[str, subprocess.Popen[Any]] = {}
    for name, argv in processes.items():
        children[name] = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, start_new_session=True)  # noqa: S603
    from services.demo.seed import DEMO_LOGINS, DEMO_PASSWORD

    click.echo("")
    click.echo(f"Rapport is starting at http://{host}:{port}/  (web, worker and beat; Ctrl-C stops all three)")
    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for role, email in DEMO_LOGINS.items():
        click.echo(f"  {role:<12} {email}")
    click.echo(f"Messages that would be emailed or texted land in {settings.outbox_dir}/")
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    try:
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    click.echo(f"{name} exited with code {child.returncode}; stopping the others", err=True)
                    stopping, exit_code = True, 1
                    break
            time.sleep(0.3)
    finally:
        for child in children.values():
            if child.poll() is None:
                # The main process only: gunicorn and Celery then stop their own workers gracefully.
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, child in children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                click.echo(f"{name} did not stop in time; killing it", err=True)
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        click.echo("stopped web, worker and beat")
    sys.exit(exit_code)


@cli.group()
def report() -> None:
    """Monthly reports."""


@report.command("monthly", with_appcontext=False)
@click.option("--period", required=True, help="The month to report on, YYYY-MM (practice time zone).")
@click.option("--scope", "scope_text", default="practice", show_default=True, help="practice, team:ID or clinician:ID.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write the PDF to this file.",
)
def report_monthly(period: str, scope_text: str, out: Path | None) -> None:
    """Render a monthly report now, in this process, and store it as the worker would (row, file, progress)."""
    import shutil

    from services.reporting.models import Report
    from services.reporting.operations import request_report
    from services.reporting.periods import PeriodError, ReportScope, parse_period
    from services.reporting.queries import ScopeNotFoundError, scope_label
    from workers.tasks.reports import Outcome, generate_report

    try:
        parse_period(period)
        scope = ReportScope.parse(scope_text)
    except PeriodError as exc:
        raise click.BadParameter(str(exc)) from exc
    settings = _settings()
    database = get_database(settings.database_url)
    started = time.perf_counter()
    try:
        with database.unit_of_work() as session:
            label = scope_label(session, scope)
            row, _queued = request_report(session, scope=scope, period=period)
            report_id = row.id
    except ScopeNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{label}, {period}: generating report {report_id}", err=True)
    outcome = generate_report(
        database, settings, report_id, notify=False, on_progress=lambda p: click.echo(f"  {p}%", err=True)
    )
    with database.session() as session:
        stored = session.get(Report, report_id)
        assert stored is not None
        status, error, file_path = stored.status, stored.error, stored.file_path
        size, sha256 = stored.size_bytes, stored.sha256
    if outcome is Outcome.SKIPPED:
        raise click.ClickException(f"report {report_id} is being generated by a worker now ({status}); try later")
    if outcome is not Outcome.DONE or file_path is None:
        raise click.ClickException(f"report {report_id} failed: {error or status}")
    if out is not None:
        shutil.copyfile(file_path, out)
    elapsed = time.perf_counter() - started
    click.echo(
        f"{file_path} ({size} bytes, sha256 {(sha256 or '')[:16]}) in {elapsed:.1f}s"
        + (f"; copied to {out}" if out is not None else "")
    )


def main() -> None:
    """Entry point of the `rapport` console script."""
    cli.main(prog_name="rapport")


if __name__ == "__main__":
    main()
