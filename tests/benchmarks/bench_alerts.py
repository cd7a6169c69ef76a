"""Time from a survey's submit response to its alert and notification rows being committed, at a steady rate.

Run with `make bench-alerts` (or `.venv/bin/python tests/benchmarks/bench_alerts.py`). What it does:

1. Creates a fresh PostgreSQL database (dropped at the end) and seeds one clinician per 100 clients and, per
   client, an open episode with four earlier Partnership Checks already evaluated (totals 36, 37, 36, 37) and one
   sent post-session invitation for today's Partnership Check, reached by its own link.
2. Serves the app with gunicorn on 127.0.0.1 and runs ONE Celery worker (`celery -A workers.app worker`), broker
   and rate-limit storage on Redis db 13 (emptied before and after).
3. Submits each invitation once through HTTP, POST /s/<token> with the page's signed state, at a fixed rate (open
   loop: a submission is sent on schedule whether or not earlier ones were answered). Each answer totals 27 after
   36-37, so each submission opens exactly one alliance alert (RUPTURE_DEV, RUPTURE_DROP) and queues one
   immediate email notification.
4. Measures, per submission, the time from the submit response (fully read) to the commit of both its alert row
   and its notification row. The commits are observed with PostgreSQL LISTEN/NOTIFY: AFTER INSERT triggers on
   alerts and notifications, installed in the benchmark's own database only, call pg_notify, which PostgreSQL
   delivers when (and only when) the inserting transaction commits.

Bounded: fixed rate and duration (default 20 per second for 60 s, after a short warm-up), a drain timeout, loopback
only. The last line is one JSON object with p50_ms, p95_ms, p99_ms and submissions.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy import insert

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT))

from harness import cpu_seconds, free_port, stop  # noqa: E402

from services import schema  # noqa: E402
from services.accounts.models import User  # noqa: E402
from services.clients.models import Client, Episode  # noqa: E402
from services.config import Settings  # noqa: E402
from services.db import Database  # noqa: E402
from services.measures import load_instrument, score_administration  # noqa: E402
from services.surveys.administrations import score_to_json  # noqa: E402
from services.surveys.models import Administration, Invitation, InvitationToken  # noqa: E402
from services.surveys.tokens import new_token  # noqa: E402

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
REDIS_URL = "redis://127.0.0.1:6379/13"
INSTRUMENT = "PARTNERSHIP-CHECK"
HISTORY = (36, 37, 36, 37)
TODAY = (7, 7, 7, 6)  # 27: RUPTURE_DEV (m 36.5, threshold 30.5) and RUPTURE_DROP (10 >= 5.37)
CLIENTS_PER_CLINICIAN = 100
CHANNEL = "bench_alerts"

TRIGGERS = f"""
CREATE FUNCTION bench_alert_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('{CHANNEL}', 'a:' || NEW.id || ':' || coalesce(
    (SELECT invitation_id FROM administrations WHERE id = NEW.opened_by_administration_id), 0));
  RETURN NEW;
END $$;
CREATE TRIGGER bench_alert_inserted AFTER INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION bench_alert_inserted();
CREATE FUNCTION bench_notification_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('{CHANNEL}', 'n:' || coalesce(NEW.dedupe_key, ''));
  RETURN NEW;
END $$;
CREATE TRIGGER bench_notification_inserted AFTER INSERT ON notifications
  FOR EACH ROW EXECUTE FUNCTION bench_notification_inserted();
"""


@dataclass
class Options:
    """Command-line knobs."""

    rate: float
    seconds: float
    warmup: int
    drain_seconds: float
    web_workers: int
    web_threads: int
    connections: int
    pool: str
    concurrency: int
    keep: bool


def parse_args() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="submissions per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured duration")
    parser.add_argument("--warmup", type=int, default=40, help="submissions sent first and not measured")
    parser.add_argument("--drain-seconds", type=float, default=60.0, help="wait at most this long for the last rows")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections of the load generator")
    parser.add_argument("--pool", default="prefork", help="the Celery worker's pool (prefork, threads, solo)")
    parser.add_argument("--concurrency", type=int, default=2, help="the Celery worker's pool size")
    parser.add_argument("--keep", action="store_true", help="keep the database (for debugging)")
    args = parser.parse_args()
    return Options(
        rate=args.rate,
        seconds=args.seconds,
        warmup=args.warmup,
        drain_seconds=args.drain_seconds,
        web_workers=args.web_workers,
        web_threads=args.web_threads,
        connections=args.connections,
        pool=args.pool,
        concurrency=args.concurrency,
        keep=args.keep,
    )


def log(message: str) -> None:
    print(message, flush=True)


# --- data --------------------------------------------------------------------------------------------------------


def _score(total_items: tuple[int, ...]) -> dict[str, Any]:
    instrument = load_instrument(INSTRUMENT)
    answers: dict[str, object] = {
        item.id: value for item, value in zip(instrument.scored_items, total_items, strict=False)
    }
    answers["pc_tension"] = 0
    result = score_administration(instrument, answers)
    return {
        "instrument_code": instrument.code,
        "instrument_version": instrument.version,
        "respondent": "client",
        "answers": dict(result.answers),
        "scores": score_to_json(result),
        "total": result.total,
        "complete": True,
        "language": "en",
        "eval_attempts": 1,
    }


def _split(total: int) -> tuple[int, ...]:
    base, extra = divmod(total, 4)
    return tuple(base + (1 if i < extra else 0) for i in range(4))


def seed(db: Database, count: int) -> list[tuple[int, str]]:
    """Clinicians, clients with evaluated history, and one sent invitation each: (invitation id, raw token)."""
    now = datetime.now(UTC)
    history = [_score(_split(total)) for total in HISTORY]
    out: list[tuple[int, str]] = []
    with db.unit_of_work() as session:
        clinicians = []
        for n in range(max(1, -(-count // CLIENTS_PER_CLINICIAN))):
            user = User(
                email=f"bench-clinician{n}@example.test",
                name=f"Bench Clinician {n}",
                role="clinician",
                password_hash="not-a-login",
                notify_mode="immediate",
                active=True,
            )
            session.add(user)
            clinicians.append(user)
        session.flush()
        for start in range(0, count, 1000):
            size = min(1000, count - start)
            client_ids = list(
                session.scalars(
                    insert(Client).returning(Client.id),
                    [
                        {
                            "code": f"BA{start + i:05d}",
                            "first_name": f"Bench{start + i}",
                            "last_name": "Synthetic",
                            "language": "en",
                            "created_at": now,
                        }
                        for i in range(size)
                    ],
                )
            )
            episode_ids = list(
                session.scalars(
                    insert(Episode).returning(Episode.id),
                    [
                        {
                            "client_id": client_id,
                            "clinician_id": clinicians[(start + i) // CLIENTS_PER_CLINICIAN].id,
                            "protocol_code": "standard",
                            "started_on": date(2026, 1, 5),
                            "goals": [],
                            "created_at": now,
                        }
                        for i, client_id in enumerate(client_ids)
                    ],
                )
            )
            session.execute(
                insert(Administration),
                [
                    {
                        **row,
                        "episode_id": episode_id,
                        "completed_at": now - timedelta(weeks=len(HISTORY) - week),
                        "evaluated_at": now - timedelta(weeks=len(HISTORY) - week),
                    }
                    for episode_id in episode_ids
                    for week, row in enumerate(history)
                ],
            )
            invitation_ids = list(
                session.scalars(
                    insert(Invitation).returning(Invitation.id),
                    [
                        {
                            "episode_id": episode_id,
                            "appointment_id": None,
                            "phase": "post",
                            "instruments": [INSTRUMENT],
                            "channel": "email",
                            "status": "sent",
                            "due_at": now,
                            "sent_at": now,
                            "expires_at": now + timedelta(days=1),
                            "created_at": now,
                            "reminders": 0,
                            "attempts": 1,
                        }
                        for episode_id in episode_ids
                    ],
                )
            )
            tokens = [new_token() for _ in invitation_ids]
            session.execute(
                insert(InvitationToken),
                [
                    {"invitation_id": invitation_id, "token_hash": digest, "purpose": "email", "created_at": now}
                    for invitation_id, (_raw, digest) in zip(invitation_ids, tokens, strict=True)
                ],
            )
            out.extend(
                (invitation_id, raw) for invitation_id, (raw, _digest) in zip(invitation_ids, tokens, strict=True)
            )
    return out


def submit_bodies(settings: Settings, db: Database, links: list[tuple[int, str]]) -> list[tuple[int, str, bytes]]:
    """(invitation id, path, urlencoded body) of each survey's one and only step, with the page's signed state."""
    from web.app import create_app
    from web.survey.progress import Progress, dump_progress

    app = create_app(settings=settings, database=db)
    instrument = load_instrument(INSTRUMENT)
    answers = {item.id: str(value) for item, value in zip(instrument.scored_items, TODAY, strict=False)}
    answers["pc_tension"] = "0"
    out = []
    with app.test_request_context():
        for invitation_id, raw in links:
            state = dump_progress(Progress(invitation_id=invitation_id, step=0))
            body = urllib.parse.urlencode({"state": state, "lang": "en", "action": "next", **answers})
            out.append((invitation_id, f"/s/{raw}", body.encode()))
    return out


# --- processes ---------------------------------------------------------------------------------------------------


def wait_healthy(proc: subprocess.Popen[bytes], port: int, log_path: Path, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited:\n{log_path.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if b"200 OK" in conn.recv(200):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not answer /healthz within 30 s")


def start_gunicorn(options: Options, env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    argv = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(options.web_workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(options.web_threads),
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
        "web.wsgi:app",
    ]
    with log_path.open("wb") as fh:
        proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    wait_healthy(proc, port, log_path, "gunicorn")
    return proc


def start_worker(options: Options, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """ONE Celery worker process (its pool and size are options), as in production on one small machine."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        "worker",
        "--loglevel=WARNING",
        f"--pool={options.pool}",
        f"--concurrency={options.concurrency}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--hostname=bench-alerts@%h",
    ]
    with log_path.open("wb") as fh:
        proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    # Ready when it answers a ping over the broker.
    from celery import Celery

    probe = Celery(broker=REDIS_URL)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the worker exited:\n{log_path.read_text()[-3000:]}")
            if probe.control.ping(timeout=0.5):
                return proc
    finally:
        probe.close()
    raise SystemExit("the worker did not answer a ping within 60 s")


def load_average() -> str:
    """The machine's 1-minute load average and core count (other work on the machine skews every figure)."""
    return f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


# --- measuring ---------------------------------------------------------------------------------------------------


@dataclass
class Commits:
    """What LISTEN saw: when each alert (with its invitation) and each notification row was committed."""

    alert_at: dict[int, float] = field(default_factory=dict)
    alert_wall: dict[int, float] = field(default_factory=dict)
    alert_invitation: dict[int, int] = field(default_factory=dict)
    notification_at: dict[int, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def committed_at(self) -> dict[int, float]:
        """Per invitation: when both its alert and that alert's notification were committed."""
        with self.lock:
            return {
                invitation_id: max(at, self.notification_at[alert_id])
                for alert_id, at in self.alert_at.items()
                if alert_id in self.notification_at and (invitation_id := self.alert_invitation[alert_id])
            }


def listen(url: str, commits: Commits, ready: threading.Event, done: threading.Event) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        ready.set()
        while not done.is_set():
            for note in conn.notifies(timeout=0.2):
                at, wall = time.monotonic(), time.time()
                kind, _, rest = note.payload.partition(":")
                with commits.lock:
                    if kind == "a":
                        alert_id, _, invitation_id = rest.partition(":")
                        commits.alert_at[int(alert_id)] = at
                        commits.alert_wall[int(alert_id)] = wall
                        commits.alert_invitation[int(alert_id)] = int(invitation_id)
                    elif kind == "n" and rest.startswith("alert:") and rest.endswith(":opened"):
                        commits.notification_at[int(rest.split(":")[1])] = at


@dataclass
class Sent:
    """One submission: when it was due, sent, and answered, and how."""

    invitation_id: int
    due: float
    sent: float = 0.0
    answered: float = 0.0
    status: int = 0
    thanked: bool = False


def drive(port: int, bodies: list[tuple[int, str, bytes]], rate: float, connections: int) -> list[Sent]:
    """Send the bodies on a fixed schedule (open loop) over keep-alive connections; returns what happened."""
    jobs: queue.Queue[tuple[Sent, str, bytes] | None] = queue.Queue()
    results: list[Sent] = []
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            job = jobs.get()
            if job is None:
                break
            sent, path, body = job
            sent.sent = time.monotonic()
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
                response = conn.getresponse()
                page = response.read()
                sent.status = response.status
                sent.thanked = b"Thank you" in page
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                sent.status = -1
            sent.answered = time.monotonic()
            with lock:
                results.append(sent)
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    start = time.monotonic() + 0.2
    for i, (invitation_id, path, body) in enumerate(bodies):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        jobs.put((Sent(invitation_id=invitation_id, due=due), path, body))
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join(timeout=120)
    return results


def breakdown(url: str, commits: Commits, invitations: set[int]) -> None:
    """Where the time goes, from the rows' own clocks: submit commit -> evaluation start -> alert commit."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT a.id, ad.invitation_id, extract(epoch FROM ad.completed_at), extract(epoch FROM a.opened_at) "
            "FROM alerts a JOIN administrations ad ON ad.id = a.opened_by_administration_id"
        ).fetchall()
    pickup, evaluation = [], []
    for alert_id, invitation_id, completed, opened in rows:
        if invitation_id in invitations and alert_id in commits.alert_wall:
            pickup.append((float(opened) - float(completed)) * 1000)
            evaluation.append((commits.alert_wall[alert_id] - float(opened)) * 1000)
    if pickup:
        log(
            f"  of which: answers committed -> evaluation started (publish, broker, worker, attempt count) "
            f"p50 {percentile(pickup, 50):.1f} ms, p95 {percentile(pickup, 95):.1f} ms; evaluation started -> "
            f"committed p50 {percentile(evaluation, 50):.1f} ms, p95 {percentile(evaluation, 95):.1f} ms"
        )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


# --- the run -----------------------------------------------------------------------------------------------------


def main() -> None:
    options = parse_args()
    measured = int(options.rate * options.seconds)
    total = measured + options.warmup
    name = f"rapport_bench_alerts_{secrets.token_hex(4)}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    plain_url = f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    broker = redis.Redis.from_url(REDIS_URL)
    gunicorn: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    done = threading.Event()
    db: Database | None = None
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        broker.flushdb()
        port = free_port()
        secret = secrets.token_urlsafe(32)
        settings = Settings(
            env="test",
            var_dir=workdir,
            database_url=url,
            broker_url=REDIS_URL,
            secret_key=secret,
            base_url=f"http://127.0.0.1:{port}",
            ratelimit_storage_url=REDIS_URL,
            token_rate_limit="1000000 per minute",
        )
        db = Database(url)
        schema.upgrade(db.engine)
        with psycopg.connect(plain_url, autocommit=True) as conn:
            conn.execute(TRIGGERS)
        started = time.monotonic()
        links = seed(db, total)
        bodies = submit_bodies(settings, db, links)
        log(f"seeded {total} clients with 4 evaluated sessions each in {time.monotonic() - started:.1f} s")

        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        env.update(
            {
                "RAPPORT_ENV": "test",
                "RAPPORT_VAR_DIR": str(workdir),
                "RAPPORT_DATABASE_URL": url,
                "RAPPORT_BROKER_URL": REDIS_URL,
                "RAPPORT_RATELIMIT_STORAGE_URL": REDIS_URL,
                "RAPPORT_SECRET_KEY": secret,
                "RAPPORT_BASE_URL": settings.base_url,
                "RAPPORT_TOKEN_RATE_LIMIT": "1000000 per minute",
                "PYTHONUNBUFFERED": "1",
            }
        )
        gunicorn = start_gunicorn(options, env, port, workdir / "gunicorn.log")
        worker = start_worker(options, env, workdir / "worker.log")
        log(
            f"gunicorn: {options.web_workers} workers x {options.web_threads} threads; celery: one worker, "
            f"pool {options.pool}, concurrency {options.concurrency}; broker {REDIS_URL}"
        )

        commits = Commits()
        ready = threading.Event()
        listener = threading.Thread(target=listen, args=(plain_url, commits, ready, done), daemon=True)
        listener.start()
        ready.wait(10)

        warm = drive(port, bodies[: options.warmup], options.rate, options.connections)
        warm_ids = {s.invitation_id for s in warm}
        deadline = time.monotonic() + options.drain_seconds
        while time.monotonic() < deadline and not warm_ids <= set(commits.committed_at()):
            time.sleep(0.1)
        log(f"warm-up: {len(warm)} submissions, not measured")

        log(
            f"measuring: {measured} submissions at {options.rate:g} per second for {options.seconds:g} s "
            f"({load_average()})"
        )
        cpu_before = (cpu_seconds(gunicorn.pid), cpu_seconds(worker.pid))
        sent = drive(port, bodies[options.warmup :], options.rate, options.connections)
        wanted = {s.invitation_id for s in sent if s.status == 200}
        deadline = time.monotonic() + options.drain_seconds
        while time.monotonic() < deadline and not wanted <= set(commits.committed_at()):
            time.sleep(0.1)
        done.set()
        listener.join(timeout=5)
        web_cpu = (cpu_seconds(gunicorn.pid) - cpu_before[0]) * 1000 / max(len(sent), 1)
        worker_cpu = (cpu_seconds(worker.pid) - cpu_before[1]) * 1000 / max(len(sent), 1)
        log(
            f"CPU per submission: web {web_cpu:.1f} ms, worker {worker_cpu:.1f} ms (evaluation and the email); "
            f"at the end: {load_average()}"
        )

        committed = commits.committed_at()
        failed = [s for s in sent if s.status != 200 or not s.thanked]
        latencies = [(committed[s.invitation_id] - s.answered) * 1000 for s in sent if s.invitation_id in committed]
        missing = len(wanted - set(committed))
        responses = [(s.answered - s.sent) * 1000 for s in sent]
        lateness = [(s.sent - s.due) * 1000 for s in sent]
        span = max(s.sent for s in sent) - min(s.sent for s in sent)
        log(
            f"sent {len(sent)} in {span:.1f} s ({len(sent) / span:.1f} per second); scheduling lag p99 "
            f"{percentile(lateness, 99):.1f} ms"
        )
        log(
            f"submit responses: p50 {percentile(responses, 50):.1f} ms, p95 {percentile(responses, 95):.1f} ms, "
            f"p99 {percentile(responses, 99):.1f} ms; not thanked {len(failed)}"
        )
        if not latencies:
            raise SystemExit("no alert was committed: see the worker log")
        first = min(s.sent for s in sent)
        windows: dict[int, list[float]] = {}
        for s in sent:
            if s.invitation_id in committed:
                windows.setdefault(int((s.sent - first) // 10), []).append(
                    (committed[s.invitation_id] - s.answered) * 1000
                )
        log(
            "by 10 s window (p50/p95 ms): "
            + ", ".join(f"{percentile(v, 50):.0f}/{percentile(v, 95):.0f}" for _, v in sorted(windows.items()))
        )
        p50, p95, p99 = (percentile(latencies, q) for q in (50, 95, 99))
        log(f"alerts and notifications committed: {len(latencies)} of {len(sent)} (missing {missing})")
        breakdown(plain_url, commits, {s.invitation_id for s in sent})
        log(
            f"submit response -> alert + notification committed: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
            f"p99 {p99:.1f} ms, max {max(latencies):.1f} ms (goal: p95 < 250 ms)"
        )
        print(
            json.dumps(
                {
                    "p50_ms": round(p50, 1),
                    "p95_ms": round(p95, 1),
                    "p99_ms": round(p99, 1),
                    "submissions": len(sent),
                    "committed": len(latencies),
                    "rate_per_s": options.rate,
                    "pool": options.pool,
                    "concurrency": options.concurrency,
                }
            ),
            flush=True,
        )
    finally:
        done.set()
        stop(gunicorn)
        stop(worker)
        if db is not None:
            db.dispose()
        if not options.keep:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept database {name} and {workdir}")
        broker.flushdb()
        broker.close()


if __name__ == "__main__":
    main()
