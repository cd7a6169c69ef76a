"""Benchmark: seeding the large demo practice (20,000 clients, 12 months, 200 clinicians) on PostgreSQL.

Usage: .venv/bin/python tests/benchmarks/bench_seed.py [--clients N] [--clinicians N] [--keep] [--fingerprint]
       [--url postgresql+psycopg://...]

1. Drops and creates a dedicated PostgreSQL database (default rapport_bench_seed on 127.0.0.1, or
   RAPPORT_BENCH_SEED_DATABASE_URL) and migrates it with `schema.upgrade`.
2. Times `services.demo.seed.seed_demo(clients=20000, months=12, clinicians=200, seed=7, today=2026-11-20)`: the
   clients, episodes, appointments, invitations and scored administrations, the evaluation of every episode's
   history (signals and alerts) and the first invitation dispatch.
3. With --fingerprint, prints a digest of everything the seed wrote (row counts, and an md5 per table over the rows
   in id order, leaving out wall-clock columns and password hashes), so that two versions of the seed can be
   compared: the same seed must give the same fingerprint.
The database is dropped at the end unless --keep. Goal: under 300 s for 20,000 clients. The last line is one JSON
object: seed_s, clients, administrations, signals, alerts, administrations_per_s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness import drop_database, recreate_database  # noqa: E402

CLIENTS, MONTHS, CLINICIANS, SEED = 20_000, 12, 200, 7
TODAY = date(2026, 11, 20)
GOAL_S = 300.0
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/rapport_bench_seed"
# Columns whose values depend on the wall clock or on fresh randomness (salted hashes), not on the seed.
VOLATILE = {"created_at", "updated_at", "password_hash"}
# Wall-clock columns whose presence is part of the result: compared as NULL / NOT NULL.
STAMPS = {"evaluated_at"}


def recreate(url: str) -> None:
    """Drop and create the benchmark database, then migrate it."""
    from services import schema
    from services.db import Database

    recreate_database(url)
    database = Database(url)
    schema.upgrade(database.engine)
    database.dispose()


def fingerprint(database: Any) -> dict[str, Any]:
    """Row counts and an md5 per table over its rows in id order (volatile columns left out)."""
    from sqlalchemy import text

    from services.models import Base

    out: dict[str, Any] = {}
    with database.engine.connect() as connection:
        for table in sorted(Base.metadata.tables.values(), key=lambda t: t.name):
            if table.name == "alembic_version":
                continue
            columns = []
            for column in table.columns:
                if column.name in VOLATILE:
                    continue
                if column.name in STAMPS:
                    columns.append(f'("{column.name}" IS NULL) AS "{column.name}_null"')
                else:
                    columns.append(f'"{column.name}"')
            order = "id" if "id" in table.columns else ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
            row = connection.execute(
                text(
                    f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY {order}), '')) "
                    f'FROM (SELECT {", ".join(columns)} FROM "{table.name}") t'
                )
            ).one()
            out[table.name] = [int(row[0]), str(row[1])]
        # The same without ids (natural keys only), in case insertion order ever changes ids.
        out["signals_by_content"] = str(
            connection.execute(
                text(
                    "SELECT md5(coalesce(string_agg(x, '|' ORDER BY x), '')) FROM ("
                    "SELECT concat_ws(',', c.code, a.instrument_code, a.completed_at, s.kind, s.session,"
                    " s.evidence::text) AS x FROM signals s JOIN administrations a ON a.id = s.administration_id"
                    " JOIN episodes e ON e.id = a.episode_id JOIN clients c ON c.id = e.client_id) q"
                )
            ).scalar_one()
        )
        out["alerts_by_content"] = str(
            connection.execute(
                text(
                    "SELECT md5(coalesce(string_agg(x, '|' ORDER BY x), '')) FROM ("
                    "SELECT concat_ws(',', c.code, al.kind, al.status, al.severity, al.baseline, al.opened_session,"
                    " al.opened_at, al.repaired_at, al.resolved_at, al.sessions_open, al.summary, al.evidence::text)"
                    " AS x FROM alerts al JOIN episodes e ON e.id = al.episode_id"
                    " JOIN clients c ON c.id = e.client_id) q"
                )
            ).scalar_one()
        )
    return out


def run(url: str, clients: int, months: int, clinicians: int) -> tuple[float, Any, dict[str, int]]:
    """Seed into a fresh database; returns seconds, the summary and signal/alert counts."""
    from sqlalchemy import func, select

    from services.alerts.models import Alert, SignalRecord
    from services.db import Database
    from services.demo.seed import seed_demo

    recreate(url)
    database = Database(url)
    print(f"seeding {clients} clients, {months} months, {clinicians} clinicians ...", flush=True)
    started = time.perf_counter()
    summary = seed_demo(database, clients=clients, months=months, clinicians=clinicians, seed=SEED, today=TODAY)
    seed_s = time.perf_counter() - started
    with database.session() as session:
        counts = {
            "signals": session.scalar(select(func.count()).select_from(SignalRecord)) or 0,
            "alerts": session.scalar(select(func.count()).select_from(Alert)) or 0,
        }
    database.dispose()
    return seed_s, summary, counts


def main() -> None:
    """Seed, time, optionally fingerprint; print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("RAPPORT_BENCH_SEED_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--months", type=int, default=MONTHS)
    parser.add_argument("--clinicians", type=int, default=CLINICIANS)
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--fingerprint", action="store_true", help="Print a digest of the seeded rows.")
    args = parser.parse_args()

    seed_s, summary, counts = run(args.url, args.clients, args.months, args.clinicians)
    if args.fingerprint:
        from services.db import Database

        database = Database(args.url)
        print(json.dumps({"fingerprint": fingerprint(database)}, indent=1, sort_keys=True))
        database.dispose()
    if not args.keep:
        drop_database(args.url)
    per_s = summary.administrations / seed_s if seed_s else 0.0
    rows = [
        ("demo", str(summary)),
        ("signals, alerts", f"{counts['signals']}, {counts['alerts']}"),
        ("seed time", f"{seed_s:.1f} s   (goal < {GOAL_S:.0f} s for 20,000 clients)"),
        ("per 1,000 clients", f"{seed_s * 1000 / max(1, args.clients):.1f} s"),
        ("administrations per second", f"{per_s:.0f}"),
    ]
    width = max(len(name) for name, _ in rows)
    print("-" * (width + 60))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("-" * (width + 60))
    print(
        json.dumps(
            {
                "seed_s": round(seed_s, 1),
                "clients": args.clients,
                "administrations": summary.administrations,
                "signals": counts["signals"],
                "alerts": counts["alerts"],
                "administrations_per_s": round(per_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
