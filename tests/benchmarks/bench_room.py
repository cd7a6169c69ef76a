"""Benchmark: the pages of "feedback in the room" on PostgreSQL, server time per request (p50 and p95).

Usage: .venv/bin/python tests/benchmarks/bench_room.py [--clients 20000] [--months 12] [--clinicians 200]
       [--requests 40] [--url postgresql+psycopg://...]

A dedicated database (default rapport_bench_room on 127.0.0.1, or RAPPORT_BENCH_DATABASE_URL) is recreated and
given the demo practice (`services.demo.seed.seed_demo`, today's sessions included). Then, through the WSGI app in
this process (no network: the time is the server's), each page is asked for `--requests` times after two warm-up
calls: the clinician's home with today's sessions, a session's brief, an episode's brief, the view shared with the
client, the supervisor's team page with the fidelity table, and the front desk's list of who has not answered.
Goal: p95 under 100 ms for each page. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness import recreate_database  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/rapport_bench_room"
GOAL_MS = 100.0


def _login(app: Any, email: str, password: str) -> Any:
    from tests.unit.web.conftest import login

    client = app.test_client()
    response = login(client, email, password)
    if response.status_code != 302:
        raise SystemExit(f"could not sign in as {email}: {response.status_code}")
    return client


def _time(client: Any, paths: list[str], requests: int) -> list[float]:
    for path in paths[:2]:
        client.get(path)
    timings = []
    for n in range(requests):
        path = paths[n % len(paths)]
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
    return timings


def main() -> None:
    """Build the practice, time the pages, print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--clinicians", type=int, default=200)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--url", default=os.environ.get("RAPPORT_BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()

    from sqlalchemy import select

    from services import schema
    from services.accounts.models import User
    from services.clients.models import Appointment, Episode
    from services.config import load_settings
    from services.db import Database, utcnow
    from services.demo.seed import DEMO_LOGINS, DEMO_PASSWORD, seed_demo
    from web.app import create_app

    recreate_database(args.url)
    database = Database(args.url)
    schema.upgrade(database.engine)
    started = time.perf_counter()
    seed_demo(database, clients=args.clients, months=args.months, clinicians=args.clinicians)
    seed_seconds = time.perf_counter() - started
    settings = load_settings().with_overrides(database_url=args.url, broker_url="memory://")
    app = create_app(settings=settings, database=database)
    with database.session() as session:
        me = session.scalars(select(User).where(User.email == DEMO_LOGINS["clinician"])).one()
        rows = session.execute(
            select(Appointment.id, Episode.id, Episode.client_id)
            .join(Episode, Episode.id == Appointment.episode_id)
            .where(Episode.clinician_id == me.id, Appointment.starts_at <= utcnow())
            .order_by(Appointment.starts_at.desc())
            .limit(20)
        ).all()
    clinician = _login(app, DEMO_LOGINS["clinician"], DEMO_PASSWORD)
    supervisor = _login(app, DEMO_LOGINS["supervisor"], DEMO_PASSWORD)
    desk = _login(app, DEMO_LOGINS["front_desk"], DEMO_PASSWORD)
    pages: dict[str, tuple[Any, list[str]]] = {
        "clinician home (today)": (clinician, ["/clinician/"]),
        "session brief": (clinician, [f"/clinician/sessions/{a}/brief" for a, _, _ in rows]),
        "episode brief": (clinician, [f"/clinician/episodes/{e}/brief" for _, e, _ in rows]),
        "shared view": (clinician, [f"/clinician/clients/{c}/together" for _, _, c in rows]),
        "supervisor (fidelity)": (supervisor, ["/supervisor/"]),
        "who has not answered": (desk, ["/frontdesk/overdue"]),
    }
    results: dict[str, dict[str, float]] = {}
    print(f"practice: {args.clients} clients, {args.months} months, {args.clinicians} clinicians "
          f"(seeded in {seed_seconds:.0f} s); {args.requests} requests per page")  # fmt: skip
    print(f"{'page':28} {'p50 ms':>8} {'p95 ms':>8}")
    for name, (client, paths) in pages.items():
        timings = sorted(_time(client, paths, args.requests))
        p50 = statistics.median(timings)
        p95 = timings[max(0, round(0.95 * len(timings)) - 1)]
        results[name] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}
        print(f"{name:28} {p50:8.1f} {p95:8.1f}")
    database.dispose()
    worst = max(r["p95_ms"] for r in results.values())
    print(
        json.dumps(
            {
                "benchmark": "room_pages",
                "clients": args.clients,
                "months": args.months,
                "clinicians": args.clinicians,
                "requests_per_page": args.requests,
                "pages": results,
                "worst_p95_ms": worst,
                "goal_p95_ms": GOAL_MS,
                "ok": worst < GOAL_MS,
            }
        )
    )


if __name__ == "__main__":
    main()
