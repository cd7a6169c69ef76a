"""A burst of whole surveys through each fault an operator meets, on PostgreSQL and Redis: what is lost, doubled,
refused, slow, and how long until everything is done again.

Run with `make bench-faults` (or `.venv/bin/python tests/benchmarks/bench_faults.py`); it takes several minutes.
What it does:

1. Creates a fresh PostgreSQL database (dropped at the end), starts a redis-server of its own on a free port (it is
   frozen on purpose, so never the shared one) and a real SMTP server (aiosmtpd) that can hold back its "250 OK"
   (tests/fault/held_smtp.py). Seeds one clinician (immediate alerts), one manager and, per fault, 200 sent
   pre-session invitations (PHQ-9, GAD-7, goals) with a link each; one survey in four endorses the PHQ-9 risk
   item, which opens a risk alert and emails the clinician.
2. Runs gunicorn (gthread), one Celery worker (prefork, 2 processes) and Celery beat with Rapport's scheduler and
   its real schedule (reconcile every 30 s), all with the product's defaults for claims and reconcile.
3. Per fault, a burst of 200 whole surveys from 4 client threads, as a phone does: GET the link, then POST every
   step with the signed state of the page before. During the burst:
   - `worker_kill_mid_report`: a monthly report, requested just before the burst, is rendered and stored by the
     worker, which then waits inside the transaction that marks it done (held there by a row lock the benchmark
     takes on the manager); 2 s into the burst the worker and its pool are SIGKILLed and started again, as systemd
     would (rendering is CPU work: on 2 cores a render during the burst slows clients on its own, no fault's doing);
   - `worker_kill_mid_send`: the SMTP server takes the next message and holds its reply; the worker is SIGKILLed
     while it waits for the 250, and started again;
   - `redis_sigstop_10s`: Redis is stopped (SIGSTOP) for 10 s, then continued;
   - `pg_terminate_backends`: every 0.4 s for the whole burst, every backend of the application's database is
     ended with pg_terminate_backend (web, worker, beat).
4. Then waits until every answer of the burst is evaluated, every message sent and the report done, and counts.

Per fault: `lost` (a survey a client was thanked for without its answers, an answer never evaluated, a message never
sent or never received, a report never done, within 5 minutes), `duplicated_effects` (an answer stored twice, two
alerts of one kind for one episode, two signals of one kind for one answer, two different messages for one alert,
two "report ready" messages), `http_5xx` (and `http_errors`: connections that failed), `max_client_ms` (the slowest
client request of the burst), `recovery_s` (from the end of the fault to the last item done) and `resent_messages`
(copies of a message the SMTP server received more than once: the same Message-ID, a higher X-Rapport-Attempt).
Goals: lost 0, duplicated effects 0, http_5xx 0, max_client_ms < 500, recovery_s < 120. The last line is one JSON
object. On a shared 2-core machine the client timings move with whatever else runs.
"""

from __future__ import annotations

import argparse
import functools
import http.cookiejar
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy import func, select

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT))

from bench_alerts import wait_healthy  # noqa: E402
from bench_submit import random_answers, seed_invitations  # noqa: E402
from harness import drop_database, free_port, recreate_database, stop  # noqa: E402

from services import schema  # noqa: E402
from services.accounts.models import User  # noqa: E402
from services.alerts.models import Alert, SignalRecord  # noqa: E402
from services.clients.models import Client, Episode  # noqa: E402
from services.config import Settings  # noqa: E402
from services.db import Database  # noqa: E402
from services.notifications.models import Notification  # noqa: E402
from services.reporting.models import Report  # noqa: E402
from services.reporting.operations import request_report  # noqa: E402
from services.reporting.periods import ReportScope, month_just_ended  # noqa: E402
from services.surveys.models import Administration  # noqa: E402
from tests.fault.held_smtp import HeldReplySmtp  # noqa: E402

SURVEYS = 200
CLIENTS = 4
INSTRUMENT_STEPS = ("PHQ-9", "GAD-7", "GOAL-PROGRESS")
GOALS = ["Sleep through the night", "Walk every day"]
STATE = re.compile(r'name="state" value="([^"]+)"')
THANKS = "Thank you"
SETTLE_TIMEOUT = 300.0
WARMUP = 24
FAULTS = ("worker_kill_mid_report", "worker_kill_mid_send", "redis_sigstop_10s", "pg_terminate_backends")
GOALS_MET = {"lost": 0, "duplicated_effects": 0, "http_5xx": 0, "max_client_ms": 500, "recovery_s": 120}
LINK = re.compile(r"https?://\S+")


def log(message: str) -> None:
    print(message, flush=True)


# --- the world: processes ---------------------------------------------------------------------------------------


class Redis:
    """A redis-server of the benchmark's own (it is SIGSTOPped on purpose)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=workdir,
            stdout=(workdir / "redis.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        raise SystemExit("redis-server did not answer")

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()
        stop(self.proc)  # type: ignore[arg-type]


@dataclass
class Processes:
    """gunicorn, the Celery worker and beat, started from one environment."""

    env: dict[str, str]
    workdir: Path
    port: int
    broker_url: str
    gunicorn: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    beat: subprocess.Popen[bytes] | None = None
    worker_starts: int = 0

    def start(self) -> None:
        argv = [
            str(Path(sys.executable).parent / "gunicorn"),
            *("--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--worker-class", "gthread", "--threads", "4"),
            *("--keep-alive", "30", "--log-level", "warning", "web.wsgi:app"),
        ]
        log_path = self.workdir / "gunicorn.log"
        self.gunicorn = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=self.env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT
        )
        wait_healthy(self.gunicorn, self.port, log_path, "gunicorn")
        self.start_worker()
        beat_argv = [
            sys.executable,
            *("-m", "celery", "-A", "workers.app", "beat", "--scheduler", "workers.beat:RapportScheduler"),
            *("--schedule", str(self.workdir / "celerybeat-schedule"), "--loglevel=INFO"),
        ]
        self.beat = subprocess.Popen(
            beat_argv,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=(self.workdir / "beat.log").open("ab"),
            stderr=subprocess.STDOUT,
        )

    def start_worker(self) -> None:
        """Start the worker (prefork, 2 processes) and wait until it answers a ping."""
        self.worker_starts += 1
        argv = [
            sys.executable,
            *("-m", "celery", "-A", "workers.app", "worker", "--loglevel=WARNING", "--pool=prefork"),
            *("--concurrency=2", "--without-gossip", "--without-mingle", "--without-heartbeat"),
            f"--hostname=bench-faults-{self.worker_starts}@%h",
        ]
        log_path = self.workdir / "worker.log"
        self.worker = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=self.env, stdout=log_path.open("ab"), stderr=subprocess.STDOUT
        )
        from celery import Celery

        probe = Celery(broker=self.broker_url)
        deadline = time.monotonic() + 90
        try:
            while time.monotonic() < deadline:
                if self.worker.poll() is not None:
                    raise SystemExit(f"the worker exited:\n{log_path.read_text()[-3000:]}")
                try:
                    if probe.control.ping(timeout=0.5):
                        return
                except Exception:
                    continue
        finally:
            probe.close()
        raise SystemExit("the worker did not answer a ping within 90 s")

    def kill_worker(self) -> None:
        """SIGKILL the worker's pool processes and the worker, as a crash (or the OOM killer) would."""
        assert self.worker is not None
        subprocess.run(["pkill", "-KILL", "-P", str(self.worker.pid)], check=False)
        self.worker.kill()
        self.worker.wait()

    def stop(self) -> None:
        for proc in (self.beat, self.worker, self.gunicorn):
            stop(proc)


# --- data ---------------------------------------------------------------------------------------------------------


@dataclass
class World:
    """What the faults run against."""

    db: Database
    settings: Settings
    plain_url: str
    clinician_id: int
    manager_id: int
    links: list[list[tuple[int, str]]]  # per fault: (invitation id, raw token)


def seed(db: Database, faults: int, per_fault: int) -> tuple[int, int, list[list[tuple[int, str]]]]:
    """A clinician, a manager, and one episode and sent invitation per survey; the links grouped per fault."""
    with db.unit_of_work() as session:
        clinician = User(
            email="bench-faults-clinician@example.test",
            name="Bench Clinician",
            role="clinician",
            password_hash="not-a-login",
            notify_mode="immediate",
            active=True,
        )
        manager = User(
            email="bench-faults-manager@example.test",
            name="Bench Manager",
            role="manager",
            password_hash="not-a-login",
            active=True,
        )
        session.add_all([clinician, manager])
        session.flush()
        episode_ids = []
        for n in range(faults * per_fault):
            client = Client(code=f"F{n:05d}", first_name=f"Fault{n}", last_name="Synthetic", language="en")
            session.add(client)
            session.flush()
            episode = Episode(client_id=client.id, clinician_id=clinician.id, started_on=date(2026, 1, 5), goals=GOALS)
            session.add(episode)
            session.flush()
            episode_ids.append(episode.id)
        clinician_id, manager_id = clinician.id, manager.id
    links = seed_invitations(db, episode_ids, faults * per_fault, with_tokens=True)
    return clinician_id, manager_id, [links[i * per_fault : (i + 1) * per_fault] for i in range(faults)]


# --- clients ------------------------------------------------------------------------------------------------------


@dataclass
class Burst:
    """What the clients saw."""

    timings_ms: list[float] = field(default_factory=list)
    # (seconds since the burst began, request, ms, status) of every request, to say where the slow ones were.
    requests: list[tuple[float, str, float, int]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    thanked: list[int] = field(default_factory=list)
    unfinished: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(
        self, opener: urllib.request.OpenerDirector, request: urllib.request.Request, label: str
    ) -> tuple[int, str]:
        at = time.monotonic() - self.started
        started = time.perf_counter()
        try:
            with opener.open(request, timeout=30) as response:
                status, page = response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, page = exc.code, exc.read().decode("utf-8", "replace")
        except OSError as exc:
            status, page = 0, ""
            with self.lock:
                self.errors.append(repr(exc)[:200])
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.timings_ms.append(elapsed)
            self.requests.append((round(at, 2), label, round(elapsed, 1), status))
            if status:
                self.statuses[status] += 1
        return status, page

    def slowest(self, n: int = 3) -> list[tuple[float, str, float, int]]:
        """The n slowest requests: when in the burst (s), which, how long (ms), the status."""
        return sorted(self.requests, key=lambda r: r[2], reverse=True)[:n]


def step_answers(rng: random.Random, risky: bool) -> list[dict[str, str]]:
    answers = random_answers(rng)
    answers["PHQ-9"]["phq9_9"] = "1" if risky else "0"
    return [answers[code] for code in INSTRUMENT_STEPS]


def answer_survey(base: str, invitation_id: int, raw: str, steps: list[dict[str, str]], burst: Burst) -> None:
    """GET the link, then POST each step with the page's signed state, as a phone does."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    url = f"{base}/s/{raw}"
    status, page = burst.call(opener, urllib.request.Request(url), "GET")
    for number, answers in enumerate(steps, start=1):
        match = STATE.search(page)
        if status != 200 or not match:
            break
        body = urllib.parse.urlencode({"state": match.group(1), "lang": "en", "action": "next", **answers}).encode()
        status, page = burst.call(opener, urllib.request.Request(url, data=body), f"POST step {number}")
    with burst.lock:
        (burst.thanked if status == 200 and THANKS in page else burst.unfinished).append(invitation_id)


def run_burst(base: str, links: list[tuple[int, str]], seed_value: int) -> Burst:
    rng = random.Random(seed_value)
    work = [(inv, raw, step_answers(rng, risky=n % 4 == 0)) for n, (inv, raw) in enumerate(links)]
    burst = Burst()
    position = [0]
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                if position[0] >= len(work):
                    return
                inv, raw, steps = work[position[0]]
                position[0] += 1
            answer_survey(base, inv, raw, steps, burst)
            time.sleep(0.02)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return burst


# --- faults -------------------------------------------------------------------------------------------------------


@dataclass
class FaultRun:
    """What a fault did and when it ended (monotonic)."""

    ended_at: float = 0.0
    report_id: int | None = None
    note: str = ""
    holder: Any = None  # a connection holding a lock for the fault


def _waiting_to_mark_report_done(plain_url: str) -> bool:
    with psycopg.connect(plain_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            " AND query ILIKE '%INSERT INTO notifications%'"
        ).fetchone()
        return bool(row and row[0])


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def prepare_report(world: World) -> FaultRun:
    """Before the burst: request a report and let the worker render it up to its final transaction, where it waits.

    The benchmark holds the manager's row lock, so the worker renders and stores the report and then blocks on the
    "report ready" notification's foreign key to the manager, inside the transaction that marks the report done.
    (Rendering is CPU work: on this 2-core machine, a render during the burst alone slows clients to over a second,
    which is no fault's doing, so it happens first.)
    """
    from workers.enqueue import enqueue_after_commit, flush_publisher

    run = FaultRun()
    period = month_just_ended(time_now(), world.settings.tz)
    with world.db.unit_of_work() as session:
        row, _fresh = request_report(
            session, scope=ReportScope("practice"), period=period, requested_by_id=world.manager_id
        )
        run.report_id = row.id
    run.holder = psycopg.connect(world.plain_url)
    run.holder.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (world.manager_id,))
    with world.db.unit_of_work() as session:
        enqueue_after_commit(session, "reports.generate", run.report_id)
    flush_publisher()
    if not _wait(lambda: _waiting_to_mark_report_done(world.plain_url), 180):
        run.note = "the report never reached its final transaction"
    # Let the render's aftermath (the PDF and its folder fsynced, memory returned) pass before the clients start:
    # in three runs without this pause, 3-4 requests in the first second of the burst took 0.8 s, before any kill.
    time.sleep(5.0)
    return run


def fault_report(
    world: World, procs: Processes, _redis: Redis, smtp: HeldReplySmtp, burst_done: threading.Event, run: FaultRun
) -> FaultRun:
    """2 s into the burst, SIGKILL the worker inside the report's final transaction; start it again."""
    time.sleep(2.0)
    procs.kill_worker()
    run.ended_at = time.monotonic()
    run.holder.rollback()
    run.holder.close()
    procs.start_worker()
    return run


def fault_send(
    world: World, procs: Processes, _redis: Redis, smtp: HeldReplySmtp, burst_done: threading.Event, run: FaultRun
) -> FaultRun:
    smtp.hold()
    if smtp.wait_held(timeout=120) is None:
        run.note = "no message was sent during the burst"
    time.sleep(0.3)  # the other pool process may take one more
    procs.kill_worker()
    run.ended_at = time.monotonic()
    smtp.release()
    procs.start_worker()
    return run


def fault_redis(
    world: World, procs: Processes, redis_server: Redis, smtp: HeldReplySmtp, burst_done: threading.Event, run: FaultRun
) -> FaultRun:
    time.sleep(2.0)
    redis_server.freeze()
    time.sleep(10.0)
    redis_server.thaw()
    run.ended_at = time.monotonic()
    return run


def fault_pg(
    world: World, procs: Processes, _redis: Redis, smtp: HeldReplySmtp, burst_done: threading.Event, run: FaultRun
) -> FaultRun:
    terminated = rounds = 0
    time.sleep(0.2)
    with psycopg.connect(world.plain_url, autocommit=True) as conn:
        while not burst_done.is_set() or rounds < 3:
            rounds += 1
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchall()
            terminated += len(rows)
            run.ended_at = time.monotonic()
            time.sleep(0.4)
    run.note = f"{terminated} backends terminated in {rounds} rounds"
    return run


PREPARE: dict[str, Callable[[World], FaultRun]] = {"worker_kill_mid_report": prepare_report}
FAULT_RUNNERS: dict[str, Callable[..., FaultRun]] = {
    "worker_kill_mid_report": fault_report,
    "worker_kill_mid_send": fault_send,
    "redis_sigstop_10s": fault_redis,
    "pg_terminate_backends": fault_pg,
}


def time_now() -> Any:
    from services.db import utcnow

    return utcnow()


# --- counting -----------------------------------------------------------------------------------------------------


def settled(world: World, invitation_ids: list[int], report_id: int | None) -> bool:
    with world.db.session() as session:
        waiting = session.scalar(
            select(func.count())
            .select_from(Administration)
            .where(
                Administration.invitation_id.in_(invitation_ids),
                Administration.evaluated_at.is_(None),
                Administration.eval_failed_at.is_(None),
            )
        )
        sending = session.scalar(
            select(func.count()).select_from(Notification).where(Notification.status.in_(("pending", "sending")))
        )
        report_done = report_id is None or session.get(Report, report_id, populate_existing=True).status == "done"  # type: ignore[union-attr]
        return not waiting and not sending and report_done


def count(
    world: World,
    name: str,
    links: list[tuple[int, str]],
    burst: Burst,
    run: FaultRun,
    smtp: HeldReplySmtp,
    seen_messages: int,
    first_notification: int,
    recovery_s: float | None,
) -> dict[str, Any]:
    invitation_ids = [inv for inv, _ in links]
    with world.db.session() as session:
        stored = dict(
            session.execute(
                select(Administration.invitation_id, func.count())
                .where(Administration.invitation_id.in_(invitation_ids))
                .group_by(Administration.invitation_id)
            ).all()
        )
        thanked_missing = sum(1 for inv in burst.thanked if stored.get(inv, 0) < len(INSTRUMENT_STEPS))
        doubled_answers = int(
            session.scalar(
                select(func.count()).select_from(
                    select(Administration.invitation_id, Administration.instrument_code)
                    .where(Administration.invitation_id.in_(invitation_ids))
                    .group_by(Administration.invitation_id, Administration.instrument_code)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
            or 0
        )
        unevaluated = int(
            session.scalar(
                select(func.count())
                .select_from(Administration)
                .where(Administration.invitation_id.in_(invitation_ids), Administration.evaluated_at.is_(None))
            )
            or 0
        )
        episode_ids = select(Administration.episode_id).where(Administration.invitation_id.in_(invitation_ids))
        doubled_alerts = int(
            session.scalar(
                select(func.count()).select_from(
                    select(Alert.episode_id, Alert.kind)
                    .where(Alert.episode_id.in_(episode_ids))
                    .group_by(Alert.episode_id, Alert.kind)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
            or 0
        )
        administration_ids = select(Administration.id).where(Administration.invitation_id.in_(invitation_ids))
        doubled_signals = int(
            session.scalar(
                select(func.count()).select_from(
                    select(SignalRecord.administration_id, SignalRecord.kind)
                    .where(SignalRecord.administration_id.in_(administration_ids))
                    .group_by(SignalRecord.administration_id, SignalRecord.kind)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
            or 0
        )
        notes = session.execute(
            select(Notification.id, Notification.status, Notification.template, Notification.unknown_attempts).where(
                Notification.id >= first_notification
            )
        ).all()
        report = session.get(Report, run.report_id) if run.report_id is not None else None
        report_ready = sum(1 for n in notes if n.template == "report_ready") if run.report_id is not None else 0
    received = smtp.messages[seen_messages:]
    copies = Counter(str(m["Message-ID"]) for m in received)
    sent_ids = {f"<rapport-notification-{n.id}@rapport.invalid>" for n in notes if n.status == "sent"}
    never_received = len(sent_ids - set(copies))
    # Two different messages (Message-IDs) for one effect: the same recipient and the same link.
    by_effect: dict[tuple[str, str], set[str]] = {}
    for message in received:
        payload = (
            message.get_payload(decode=True)
            if not message.is_multipart()
            else message.get_payload(0).get_payload(decode=True)
        )  # type: ignore[union-attr]
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
        link = LINK.search(text)
        by_effect.setdefault((str(message["To"]), link.group(0) if link else ""), set()).add(str(message["Message-ID"]))
    doubled_messages = sum(1 for ids in by_effect.values() if len(ids) > 1)
    lost = (
        thanked_missing
        + unevaluated
        + sum(1 for n in notes if n.status != "sent" and n.status != "cancelled")
        + never_received
        + (1 if report is not None and report.status != "done" else 0)
    )
    return {
        "lost": lost,
        "duplicated_effects": doubled_answers
        + doubled_alerts
        + doubled_signals
        + doubled_messages
        + max(0, report_ready - 1),
        "http_5xx": sum(n for status, n in burst.statuses.items() if status >= 500),
        "http_errors": len(burst.errors),
        "max_client_ms": round(max(burst.timings_ms, default=0.0), 1),
        "recovery_s": None if recovery_s is None else round(recovery_s, 1),
        "resent_messages": sum(n - 1 for n in copies.values() if n > 1),
        "surveys_thanked": len(burst.thanked),
        "surveys_unfinished": len(burst.unfinished),
        "requests": len(burst.timings_ms),
        "messages_received": len(received),
        "messages_marked_unknown": sum(1 for n in notes if n.unknown_attempts),
        "requests_over_500ms": sum(1 for ms in burst.timings_ms if ms >= 500),
        "p99_client_ms": round(sorted(burst.timings_ms)[int(len(burst.timings_ms) * 0.99)], 1)
        if burst.timings_ms
        else 0,
        "slowest_requests": burst.slowest(),
        "load_average": Path("/proc/loadavg").read_text().split()[0],
        "fault_ended_s": round(run.ended_at - burst.started, 1),
        "note": run.note,
    }


# --- main ---------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--surveys", type=int, default=SURVEYS, help="whole surveys per fault")
    parser.add_argument("--only", choices=FAULTS, action="append", help="run only this fault (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the database and the work folder")
    args = parser.parse_args()
    faults = tuple(args.only or FAULTS)

    workdir = Path(tempfile.mkdtemp(prefix="rapport-bench-faults-"))
    name = f"rapport_bench_faults_{secrets.token_hex(4)}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    plain_url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    recreate_database(url)
    redis_server = Redis(workdir)
    smtp = HeldReplySmtp().start()
    procs: Processes | None = None
    db: Database | None = None
    results: dict[str, dict[str, Any]] = {}
    try:
        port = free_port()
        secret = secrets.token_urlsafe(32)
        settings = Settings(
            env="test",
            var_dir=workdir,
            database_url=url,
            broker_url=redis_server.url,
            secret_key=secret,
            base_url=f"http://127.0.0.1:{port}",
            ratelimit_storage_url=redis_server.url,
            token_rate_limit="1000000 per minute",
            smtp_host=smtp.host,
            smtp_port=smtp.port,
        )
        db = Database(url)
        schema.upgrade(db.engine)
        started = time.monotonic()
        clinician_id, manager_id, links = seed(db, len(faults) + 1, args.surveys)
        warmup, links = links[0][:WARMUP], links[1:]
        world = World(db, settings, plain_url, clinician_id, manager_id, links)
        took = time.monotonic() - started
        log(f"seeded {len(faults)} x {args.surveys} invitations (and some to warm up with) in {took:.1f} s")

        from workers.app import configure

        configure(settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        env.update(
            {
                "RAPPORT_ENV": "test",
                "RAPPORT_VAR_DIR": str(workdir),
                "RAPPORT_DATABASE_URL": url,
                "RAPPORT_BROKER_URL": redis_server.url,
                "RAPPORT_RATELIMIT_STORAGE_URL": redis_server.url,
                "RAPPORT_SECRET_KEY": secret,
                "RAPPORT_BASE_URL": settings.base_url,
                "RAPPORT_TOKEN_RATE_LIMIT": "1000000 per minute",
                "RAPPORT_SMTP_HOST": smtp.host,
                "RAPPORT_SMTP_PORT": str(smtp.port),
                "PYTHONUNBUFFERED": "1",
            }
        )
        procs = Processes(env, workdir, port, redis_server.url)
        procs.start()
        base = f"http://127.0.0.1:{port}"
        log(f"gunicorn 2x4 threads, one Celery worker (prefork, 2), beat (reconcile every 30 s); work in {workdir}")
        # Warm every process (imports, templates, connection pools) before anything is measured.
        warm = run_burst(base, warmup, seed_value=99)
        _wait(functools.partial(settled, world, [inv for inv, _ in warmup], None), SETTLE_TIMEOUT)
        log(f"warm-up: {len(warm.thanked)} surveys, slowest request {max(warm.timings_ms, default=0):.0f} ms")

        for index, fault in enumerate(faults):
            with db.session() as session:
                first_notification = int(session.scalar(select(func.max(Notification.id))) or 0) + 1
            seen_messages = len(smtp.messages)
            burst_done = threading.Event()
            box: dict[str, FaultRun] = {"run": PREPARE.get(fault, lambda _world: FaultRun())(world)}

            def inject(
                fault_name: str = fault, done: threading.Event = burst_done, out: dict[str, FaultRun] = box
            ) -> None:
                out["run"] = FAULT_RUNNERS[fault_name](world, procs, redis_server, smtp, done, out["run"])

            log(f"[{fault}] burst of {len(links[index])} surveys ...")
            injector = threading.Thread(target=inject, daemon=True)
            injector.start()
            burst = run_burst(base, links[index], seed_value=index)
            burst_done.set()
            injector.join(timeout=300)
            run = box["run"]
            if not run.ended_at:
                run.ended_at, run.note = time.monotonic(), run.note or "the fault did not finish"
            invitation_ids = [inv for inv, _ in links[index]]
            recovered = _wait(functools.partial(settled, world, invitation_ids, run.report_id), SETTLE_TIMEOUT)
            recovery_s = time.monotonic() - run.ended_at if recovered else None
            time.sleep(3)  # anything doubled late shows up in the counts
            results[fault] = count(
                world, fault, links[index], burst, run, smtp, seen_messages, first_notification, recovery_s
            )
            log(f"[{fault}] {json.dumps(results[fault])}")
    finally:
        if procs is not None:
            procs.stop()
        smtp.stop()
        redis_server.stop()
        if db is not None:
            db.dispose()
        if not args.keep:
            drop_database(url)

    header = f"{'fault':<26}{'lost':>6}{'dup':>6}{'5xx':>6}{'max ms':>10}{'recovery s':>12}{'resent':>8}"
    log(header)
    for fault, r in results.items():
        log(
            f"{fault:<26}{r['lost']:>6}{r['duplicated_effects']:>6}{r['http_5xx']:>6}{r['max_client_ms']:>10}"
            f"{r['recovery_s'] if r['recovery_s'] is not None else 'never':>12}{r['resent_messages']:>8}"
        )
    met = {
        fault: all(
            (r[key] is not None and r[key] < limit) if key in ("max_client_ms", "recovery_s") else r[key] == limit
            for key, limit in GOALS_MET.items()
        )
        for fault, r in results.items()
    }
    print(json.dumps({"surveys_per_fault": args.surveys, "faults": results, "goals_met": met}), flush=True)


if __name__ == "__main__":
    main()
