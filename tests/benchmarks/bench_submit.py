"""Survey submissions per second on PostgreSQL through the real WSGI stack, against the raw SQL floor.

Run with `make bench-submit` (or `.venv/bin/python tests/benchmarks/bench_submit.py`). What it does:

1. Creates a fresh PostgreSQL database (dropped at the end) and pre-creates pre-session invitations (PHQ-9,
   GAD-7, goals) with one link each, and the signed progress of their first two steps: each POST is the
   complete final step of a real survey, and each invitation is submitted exactly once.
2. Serves the app with gunicorn (gthread workers) on 127.0.0.1, the broker and rate-limit storage on Redis db 12,
   and drives it from a second process: wrk with a Lua script (one POST per invitation, keep-alive), or a Python
   thread-pool load generator when wrk is not installed. Counted: invitations completed in the database.
3. The floor, in the same run: the same UPDATE and INSERTs committed straight through psycopg from 4 connections.

Bounded: fixed invitation counts and durations, loopback only. The last line is one JSON object with
submissions_per_s, floor_inserts_per_s (floor transactions per second) and ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy import insert, select

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
from services.surveys.models import Invitation, InvitationToken  # noqa: E402
from services.surveys.tokens import new_token  # noqa: E402

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
REDIS_URL = "redis://127.0.0.1:6379/12"
REDIS_LEASE = "rapport-test-lease:12"  # the key test sessions use to claim a Redis database (tests/integration)
INSTRUMENTS = ("PHQ-9", "GAD-7", "GOAL-PROGRESS")
GOALS = ["Sleep through the night", "Walk every day"]
EPISODES = 200
SEED = 20261125


@dataclass
class Options:
    """Command-line knobs (defaults sized for 2 cores)."""

    seconds: float
    warmup_seconds: float
    web_invitations: int
    floor_seconds: float
    floor_invitations: int
    workers: int
    threads: int
    worker_class: str
    connections: int
    load: str
    keep: bool
    spy: str | None


def parse_args() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured load duration")
    parser.add_argument("--warmup-seconds", type=float, default=2.0)
    parser.add_argument("--web-invitations", type=int, default=24_000, help="pre-created for the web run")
    parser.add_argument("--floor-seconds", type=float, default=8.0)
    parser.add_argument("--floor-invitations", type=int, default=60_000)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--worker-class", default="gthread", choices=("gthread", "sync"))
    parser.add_argument("--connections", type=int, default=24, help="keep-alive connections of the load generator")
    parser.add_argument("--load", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--keep", action="store_true", help="keep the database (for debugging)")
    parser.add_argument("--py-spy", dest="spy", help="profile the gunicorn workers with py-spy into this raw file")
    args = parser.parse_args()
    return Options(
        seconds=args.seconds,
        warmup_seconds=args.warmup_seconds,
        web_invitations=args.web_invitations,
        floor_seconds=args.floor_seconds,
        floor_invitations=args.floor_invitations,
        workers=args.workers,
        threads=args.threads,
        worker_class=args.worker_class,
        connections=args.connections,
        load=args.load,
        keep=args.keep,
        spy=args.spy,
    )


# --- data ----------------------------------------------------------------------------------------------------


def random_answers(rng: random.Random) -> dict[str, dict[str, str]]:
    """Form answers for the three steps (values as a browser sends them)."""
    phq = {f"phq9_{i}": str(rng.randint(0, 3)) for i in range(1, 10)}
    phq["phq9_9"] = "0" if rng.random() < 0.9 else "1"
    gad = {f"gad7_{i}": str(rng.randint(0, 3)) for i in range(1, 8)}
    goals = {"goal_1": str(rng.randint(0, 10)), "goal_2": str(rng.randint(0, 10))}
    return {"PHQ-9": phq, "GAD-7": gad, "GOAL-PROGRESS": goals}


def seed_people(db: Database) -> list[int]:
    """One clinician and the episodes invitations hang on; returns the episode ids."""
    with db.unit_of_work() as session:
        clinician = User(
            email="bench-clinician@example.test",
            name="Bench Clinician",
            role="clinician",
            password_hash="not-a-login",
            active=True,
        )
        session.add(clinician)
        session.flush()
        episodes = []
        for n in range(EPISODES):
            client = Client(code=f"B{n:05d}", first_name=f"Bench{n}", last_name="Synthetic", language="en")
            session.add(client)
            session.flush()
            episode = Episode(client_id=client.id, clinician_id=clinician.id, started_on=date(2026, 1, 5), goals=GOALS)
            session.add(episode)
            episodes.append(episode)
        session.flush()
        return [episode.id for episode in episodes]


def seed_invitations(db: Database, episode_ids: list[int], count: int, *, with_tokens: bool) -> list[tuple[int, str]]:
    """Sent pre-session invitations (and a link each); returns (invitation id, raw token or "")."""
    now = datetime.now(UTC)
    rows = [
        {
            "episode_id": episode_ids[i % len(episode_ids)],
            "appointment_id": None,
            "phase": "pre",
            "instruments": list(INSTRUMENTS),
            "channel": "email",
            "status": "sent",
            "due_at": now,
            "sent_at": now,
            "expires_at": now + timedelta(days=1),
            "created_at": now,
            "reminders": 0,
            "attempts": 1,
        }
        for i in range(count)
    ]
    out: list[tuple[int, str]] = []
    with db.unit_of_work() as session:
        for start in range(0, count, 5000):
            ids = list(session.scalars(insert(Invitation).returning(Invitation.id), rows[start : start + 5000]))
            if not with_tokens:
                out.extend((invitation_id, "") for invitation_id in ids)
                continue
            tokens = [new_token() for _ in ids]
            session.execute(
                insert(InvitationToken),
                [
                    {"invitation_id": invitation_id, "token_hash": digest, "purpose": "email", "created_at": now}
                    for invitation_id, (_raw, digest) in zip(ids, tokens, strict=True)
                ],
            )
            out.extend((invitation_id, raw) for invitation_id, (raw, _digest) in zip(ids, tokens, strict=True))
    return out


def final_step_bodies(settings: Settings, db: Database, links: list[tuple[int, str]]) -> list[tuple[str, bytes]]:
    """(path, urlencoded body) of each invitation's final step, with the signed answers of the first two steps."""
    from web.app import create_app
    from web.survey.progress import Progress, dump_progress

    rng = random.Random(SEED)
    app = create_app(settings=settings, database=db)
    out = []
    with app.test_request_context():
        for invitation_id, raw in links:
            answers = random_answers(rng)
            kept: dict[str, dict[str, float | str]] = {
                code: {k: float(v) for k, v in answers[code].items()} for code in ("PHQ-9", "GAD-7")
            }
            state = dump_progress(Progress(invitation_id=invitation_id, step=2, answers=kept))
            body = urllib.parse.urlencode({"state": state, "lang": "en", "action": "next", **answers["GOAL-PROGRESS"]})
            out.append((f"/s/{raw}", body.encode()))
    return out


# --- the web run -------------------------------------------------------------------------------------------------


def start_gunicorn(options: Options, env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    argv = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(options.workers),
        "--worker-class",
        options.worker_class,
        "--threads",
        str(options.threads),
        "--keep-alive",
        "30",
        "--backlog",
        "2048",
        "--log-level",
        "warning",
        "web.wsgi:app",
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if b"200 OK" in conn.recv(200):
                    return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("gunicorn did not answer /healthz within 30 s")


def start_spy(options: Options, gunicorn: subprocess.Popen[bytes]) -> subprocess.Popen[bytes] | None:
    """py-spy on every gunicorn worker for the measured run, sampling the thread holding the GIL (py-spy on PATH)."""
    if not options.spy:
        return None
    argv = ["py-spy", "record", "--pid", str(gunicorn.pid), "--subprocesses", "--gil", "--rate", "200"]
    argv += ["--format", "raw", "--duration", str(int(options.seconds)), "--output", options.spy]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


WRK_SCRIPT = r"""
-- One POST per line of the requests file; each wrk thread takes every n-th line, so no invitation is sent twice.
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  local path, threads = args[1], tonumber(args[2])
  requests, idx = {}, 0
  local n = 0
  for line in io.lines(path) do
    if n % threads == id then
      local target, body = line:match("^([^\t]+)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", target,
        {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
    end
    n = n + 1
  end
end
function request()
  idx = idx + 1
  if idx > #requests then
    return wrk.format("GET", "/healthz")
  end
  return requests[idx]
end
"""


def run_wrk(port: int, bodies: list[tuple[str, bytes]], seconds: float, connections: int, workdir: Path) -> str:
    requests_file = workdir / f"requests-{secrets.token_hex(3)}.tsv"
    with requests_file.open("wb") as fh:
        for path, body in bodies:
            fh.write(path.encode() + b"\t" + body + b"\n")
    script = workdir / "submit.lua"
    script.write_text(WRK_SCRIPT)
    threads = 2
    result = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            str(requests_file),
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    return result.stdout


def python_load(port: int, bodies: list[tuple[str, bytes]], seconds: float, connections: int) -> dict[str, Any]:
    """A keep-alive thread-pool load generator (used when wrk is not installed); run in its own process."""
    import http.client

    lock = threading.Lock()
    position = [0]
    codes: dict[int, int] = {}
    deadline = time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < deadline:
            with lock:
                if position[0] >= len(bodies):
                    return
                path, body = bodies[position[0]]
                position[0] += 1
            conn.request("POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
            response = conn.getresponse()
            response.read()
            with lock:
                codes[response.status] = codes.get(response.status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"codes": codes}


def drive(options: Options, port: int, bodies: list[tuple[str, bytes]], seconds: float, workdir: Path) -> str:
    """Load from a second process: wrk, or this script re-run as a Python load generator."""
    use_wrk = options.load == "wrk" or (options.load == "auto" and shutil.which("wrk"))
    if use_wrk:
        return run_wrk(port, bodies, seconds, options.connections, workdir)
    data = workdir / f"bodies-{secrets.token_hex(3)}.json"
    data.write_text(json.dumps([[path, body.decode()] for path, body in bodies]))
    result = subprocess.run(
        [sys.executable, __file__, "--python-load", str(port), str(data), str(seconds), str(options.connections)],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    return result.stdout


# --- the floor ---------------------------------------------------------------------------------------------------

FLOOR_UPDATE = (
    "UPDATE invitations SET status = 'completed', completed_at = %(now)s, "
    "opened_at = coalesce(opened_at, %(now)s), started_at = coalesce(started_at, %(now)s) "
    "WHERE invitations.id = %(id)s AND invitations.status IN ('sent', 'opened', 'started') "
    "AND invitations.expires_at > %(now)s"
)
FLOOR_INSERT = (
    "INSERT INTO administrations (invitation_id, episode_id, appointment_id, instrument_code, instrument_version, "
    "respondent, answers, scores, total, complete, free_text, language, completed_at, evaluated_at, eval_attempts, "
    "eval_failed_at, last_error) VALUES {values} RETURNING administrations.id"
)
ROW = "(%s, %s, NULL, %s, %s, 'client', %s, %s, %s, true, NULL, 'en', %s, NULL, 0, NULL, NULL)"


FloorRow = tuple[str, str, str, str, float | None]


def floor_rows(rng: random.Random) -> list[FloorRow]:
    """The three administrations' code, version, answers JSON, scores JSON and total, scored as the app does."""
    answers = random_answers(rng)
    rows: list[FloorRow] = []
    for code in INSTRUMENTS:
        instrument = load_instrument(code)
        values = {k: float(v) for k, v in answers[code].items()}
        na = ("goal_3",) if code == "GOAL-PROGRESS" else ()
        result = score_administration(instrument, values, not_applicable=na)
        answers_json, scores_json = json.dumps(dict(result.answers)), json.dumps(score_to_json(result))
        rows.append((code, instrument.version, answers_json, scores_json, result.total))
    return rows


def run_floor(dsn: str, invitations: list[tuple[int, int]], seconds: float, connections: int = 4) -> tuple[int, float]:
    """Each transaction: the conditional UPDATE, one INSERT of the three administrations, COMMIT."""
    rng = random.Random(SEED + 1)
    payloads = [floor_rows(rng) for _ in range(64)]
    lock = threading.Lock()
    position = [0]
    done = [0]
    start = time.monotonic()
    deadline = start + seconds

    def worker() -> None:
        with psycopg.connect(dsn) as conn:
            while time.monotonic() < deadline:
                with lock:
                    if position[0] >= len(invitations):
                        return
                    invitation_id, episode_id = invitations[position[0]]
                    position[0] += 1
                now = datetime.now(UTC)
                rows = payloads[invitation_id % len(payloads)]
                params: list[Any] = []
                for code, version, answers, scores, total in rows:
                    params += [invitation_id, episode_id, code, version, answers, scores, total, now]
                with conn.transaction():
                    cursor = conn.execute(FLOOR_UPDATE, {"now": now, "id": invitation_id})
                    assert cursor.rowcount == 1
                    conn.execute(FLOOR_INSERT.format(values=", ".join([ROW] * len(rows))), params).fetchall()
                with lock:
                    done[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done[0], time.monotonic() - start


# --- main ----------------------------------------------------------------------------------------------------------


def main() -> None:
    options = parse_args()
    name = f"rapport_bench_{secrets.token_hex(4)}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    workdir = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
    secret = secrets.token_urlsafe(48)
    settings = Settings(
        env="test",
        var_dir=workdir,
        database_url=url,
        broker_url=REDIS_URL,
        secret_key=secret,
        base_url="http://127.0.0.1",
        token_rate_limit="1000000 per minute",
        ratelimit_storage_url=REDIS_URL,
    )
    control = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    lease = secrets.token_hex(8)
    if not control.set(REDIS_LEASE, lease, nx=True, ex=1800):
        raise SystemExit("Redis db 12 is leased by a running test session; run the benchmark when it is done")
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    gunicorn: subprocess.Popen[bytes] | None = None
    try:
        db = Database(url)
        schema.upgrade(db.engine)
        t0 = time.monotonic()
        episodes = seed_people(db)
        warm = seed_invitations(db, episodes, 3000, with_tokens=True)
        links = seed_invitations(db, episodes, options.web_invitations, with_tokens=True)
        floor = seed_invitations(db, episodes, options.floor_invitations, with_tokens=False)
        with db.session() as session:
            episode_of = dict(session.execute(select(Invitation.id, Invitation.episode_id)).all())
        warm_bodies = final_step_bodies(settings, db, warm)
        bodies = final_step_bodies(settings, db, links)
        print(f"seeded {len(warm) + len(links) + len(floor)} invitations in {time.monotonic() - t0:.1f}s", flush=True)
        db.dispose()

        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        env.update(
            {
                "RAPPORT_ENV": "test",
                "RAPPORT_VAR_DIR": str(workdir),
                "RAPPORT_DATABASE_URL": url,
                "RAPPORT_BROKER_URL": REDIS_URL,
                "RAPPORT_RATELIMIT_STORAGE_URL": REDIS_URL,
                "RAPPORT_SECRET_KEY": secret,
                "RAPPORT_TOKEN_RATE_LIMIT": "1000000 per minute",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        port = free_port()
        gunicorn = start_gunicorn(options, env, port, workdir / "gunicorn.log")
        drive(options, port, warm_bodies, options.warmup_seconds, workdir)
        before = completed(dsn)
        spy = start_spy(options, gunicorn)
        cpu_before = cpu_seconds(gunicorn.pid)
        busy_before, total_before = machine_ticks()
        started = time.monotonic()
        report = drive(options, port, bodies, options.seconds, workdir)
        elapsed = time.monotonic() - started
        app_cpu = cpu_seconds(gunicorn.pid) - cpu_before
        busy_after, total_after = machine_ticks()
        busy = (busy_after - busy_before) / max(1, total_after - total_before)
        if spy is not None:
            spy.wait(timeout=60)
        submitted = completed(dsn) - before
        stop(gunicorn)
        gunicorn = None
        log_lines = (workdir / "gunicorn.log").read_text(errors="replace").splitlines()
        if log_lines:
            print(f"  gunicorn log: {len(log_lines)} lines, the last ones:")
            print("    " + "\n    ".join(line[:200] for line in log_lines[-5:]))
        web_rate = submitted / options.seconds
        print(f"web: {submitted} submissions in {options.seconds:g}s (wall {elapsed:.1f}s) = {web_rate:.0f}/s")
        shape = f"{options.workers} {options.worker_class} workers x {options.threads} threads"
        print(f"  gunicorn {shape}, {options.connections} connections from the load generator")
        per = 1000 * app_cpu / submitted if submitted else 0.0
        print(f"  app CPU (gunicorn workers, user+system): {per:.2f} ms per submission; load average {load()}")
        print(f"  machine CPU busy during the run: {100 * busy:.0f}% of {os.cpu_count()} cores (all processes)")
        print("  load generator:\n    " + "\n    ".join(report.strip().splitlines()))
        check_stored(dsn)

        floor_pairs = [(invitation_id, episode_of[invitation_id]) for invitation_id, _ in floor]
        floor_done, floor_elapsed = run_floor(dsn, floor_pairs, options.floor_seconds)
        floor_rate = floor_done / floor_elapsed
        print(f"floor: {floor_done} transactions (UPDATE + INSERT of 3 rows + COMMIT) in {floor_elapsed:.1f}s")
        print(f"  from 4 psycopg connections = {floor_rate:.0f}/s")
        ratio = web_rate / floor_rate if floor_rate else 0.0
        print(f"ratio: {ratio:.3f} (goal: >= 300/s and >= 0.25 of the floor)")
        print(
            json.dumps(
                {
                    "submissions_per_s": round(web_rate, 1),
                    "floor_inserts_per_s": round(floor_rate, 1),
                    "ratio": round(ratio, 3),
                }
            )
        )
    finally:
        if gunicorn is not None:
            stop(gunicorn)
        broker.flushdb()
        broker.close()
        if control.get(REDIS_LEASE) == lease.encode():
            control.delete(REDIS_LEASE)
        control.close()
        if not options.keep:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def completed(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM invitations WHERE status = 'completed'").fetchone()
        return int(row[0]) if row else 0


def check_stored(dsn: str) -> None:
    """Every completed invitation has exactly its three administrations, and nothing else was written."""
    with psycopg.connect(dsn) as conn:
        bad = conn.execute(
            "SELECT count(*) FROM invitations i WHERE i.status = 'completed' AND "
            "(SELECT count(*) FROM administrations a WHERE a.invitation_id = i.id) <> 3"
        ).fetchone()
        orphans = conn.execute(
            "SELECT count(*) FROM administrations a JOIN invitations i ON i.id = a.invitation_id "
            "WHERE i.status <> 'completed'"
        ).fetchone()
    if (bad and bad[0]) or (orphans and orphans[0]):
        raise SystemExit(f"stored data is wrong: {bad} invitations without 3 rows, {orphans} stray rows")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--python-load":
        _, _, port_arg, path_arg, seconds_arg, connections_arg = sys.argv
        loaded = [(p, b.encode()) for p, b in json.loads(Path(path_arg).read_text())]
        print(json.dumps(python_load(int(port_arg), loaded, float(seconds_arg), int(connections_arg))))
    else:
        main()
