"""`rapport audit verify` on PostgreSQL with a million chained audit rows: goal under 5 s per million rows.

Run with `make bench-audit` (or `.venv/bin/python tests/benchmarks/bench_audit.py [--rows N] [--runs R] [--keep]`).

1. Creates a fresh PostgreSQL database (dropped at the end unless --keep) and migrates it; loads 100 staff and
   20,000 clients, then `rows` audit events shaped like the practice's own (client views, logins, alert actions,
   with actors, clients, addresses and a small JSON detail), each hashed into the chain by the writer's own
   `services.audit.chain.event_hash` and bulk-loaded with COPY; the chain's head is set to the last row; VACUUM
   ANALYZE.
2. Times `verify_chain` (what `rapport audit verify` runs) `runs` times, with the CPU it took here and in the
   PostgreSQL backend (wall time on a shared machine mostly measures the others' load), and, to show where the
   time goes, a walk that only fetches the same rows without hashing.
3. Alters one row in the middle (the append-only trigger paused inside a transaction that is rolled back) and
   checks that verify names it.

The last line is one JSON object: rows, verify_s (best run), rows_per_s, the CPU split and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import text

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT))

from harness import drop_database, recreate_database  # noqa: E402

from services import schema  # noqa: E402
from services.audit import chain  # noqa: E402
from services.db import Database  # noqa: E402

GOAL_S_PER_MILLION = 5.0
STAFF = 100
CLIENTS = 20_000
ACTIONS = ("client_viewed", "client_viewed", "client_viewed", "login", "alert_acknowledged", "invitation_sent")


def load_people(conn: psycopg.Connection) -> None:
    """Staff and clients for the events to name (the foreign keys hold)."""
    conn.execute(
        f"""
        INSERT INTO teams (name, created_at) VALUES ('Bench Team', now());
        INSERT INTO users (email, name, role, team_id, password_hash, active, on_call, notify_mode, language,
                           created_at)
        SELECT 'clinician' || g || '@bench.test', 'Clinician ' || g, 'clinician', 1, 'x', true, false,
               'immediate', 'en', now()
        FROM generate_series(1, {STAFF}) g;
        INSERT INTO clients (code, first_name, last_name, language, consent_email, consent_sms, created_at)
        SELECT 'B' || lpad(g::text, 7, '0'), 'Bench', 'Client ' || g, 'en', true, false, now()
        FROM generate_series(1, {CLIENTS}) g;
        """
    )


def load_events(conn: psycopg.Connection, rows: int) -> str:
    """COPY rows chained audit events in; returns the last hash (the chain's head is set to it)."""
    rng = random.Random(12)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    last = chain.GENESIS
    with conn.cursor() as cursor:
        # The UTC session zone makes PostgreSQL read the ISO text below as the UTC instant it names.
        cursor.execute("SET TIME ZONE 'UTC'")
        copy_sql = (
            "COPY audit_events (at, actor_id, actor_label, action, subject_type, subject_id, client_id, ip, detail, "
            "seq, row_hash) FROM STDIN"
        )
        with cursor.copy(copy_sql) as copy:
            for seq in range(1, rows + 1):
                at = start + timedelta(seconds=seq * 30, microseconds=rng.randrange(1_000_000))
                action = ACTIONS[seq % len(ACTIONS)]
                client_id = 1 + rng.randrange(CLIENTS) if action != "login" else None
                actor_id = 1 + rng.randrange(STAFF)
                detail = {"what": "chart"} if action == "client_viewed" else {"via": "web", "n": seq % 7}
                detail_json = chain.detail_text(detail)
                subject_type = "client" if client_id is not None else None
                ip = f"10.0.{seq % 250}.{seq % 199}"
                last = chain.event_hash(
                    last,
                    seq=seq,
                    at=at,
                    actor_id=actor_id,
                    actor_label=None,
                    action=action,
                    subject_type=subject_type,
                    subject_id=client_id,
                    client_id=client_id,
                    ip=ip,
                    detail_json=detail_json,
                )
                copy.write_row(
                    (
                        at.isoformat(),
                        actor_id,
                        None,
                        action,
                        subject_type,
                        client_id,
                        client_id,
                        ip,
                        detail_json,
                        seq,
                        last,
                    )
                )
    conn.execute("UPDATE audit_chain SET seq = %s, last_hash = %s WHERE id = 1", (rows, last))
    return last


def backend_cpu(pid: int) -> float:
    """User + system CPU seconds of a PostgreSQL backend on this machine (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(function: object, *args: object) -> tuple[float, object]:
    """Seconds one call of function takes, and what it returned."""
    started = time.perf_counter()
    result = function(*args)  # type: ignore[operator]
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    options = parser.parse_args()

    name = f"rapport_bench_audit_{secrets.token_hex(4)}"
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    recreate_database(url)
    database = Database(url)
    try:
        schema.upgrade(database.engine)
        with psycopg.connect(dsn, autocommit=True) as conn:
            load_people(conn)
            started = time.perf_counter()
            with conn.transaction():
                load_events(conn, options.rows)
            print(f"database {name}: {options.rows:,} chained rows loaded in {time.perf_counter() - started:.1f}s")
            conn.execute("VACUUM ANALYZE audit_events")

        verify_runs: list[tuple[float, float, float]] = []
        for _run in range(options.runs):
            with database.read_only_session() as session:
                backend = int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
                server_before, client_before = backend_cpu(backend), time.process_time()
                started = time.perf_counter()
                report = chain.verify_chain(session)
                seconds = time.perf_counter() - started
                client_cpu, server_cpu = time.process_time() - client_before, backend_cpu(backend) - server_before
            assert report.ok, report
            assert report.rows == options.rows, report
            verify_runs.append((seconds, client_cpu, server_cpu))
            print(
                f"  verify_chain: {seconds:.2f}s wall ({options.rows / seconds:,.0f} rows/s), CPU {client_cpu:.2f}s "
                f"here and {server_cpu:.2f}s in the PostgreSQL backend"
            )
        with database.read_only_session() as session:
            fetch_s, fetched = timed(lambda s: sum(1 for _ in chain.stream_chain_rows(s)), session)
        print(f"  fetch only (no hashing): {fetch_s:.2f}s for {fetched:,} rows")

        bad_seq = options.rows // 2
        with database.session() as session:
            session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            session.execute(text("UPDATE audit_events SET ip = '10.9.9.9' WHERE seq = :seq").bindparams(seq=bad_seq))
            report = chain.verify_chain(session)
            session.rollback()
        assert report.bad_seq == bad_seq, report
        print(f"  an altered row at position {bad_seq:,} is named: {report.problem}")

        best, client_cpu, server_cpu = min(verify_runs)
        result = {
            "rows": options.rows,
            "verify_s": round(best, 3),
            "rows_per_s": round(options.rows / best),
            "verify_s_per_million": round(best * 1_000_000 / options.rows, 3),
            "goal_s_per_million": GOAL_S_PER_MILLION,
            "client_cpu_s": round(client_cpu, 3),
            "server_cpu_s": round(server_cpu, 3),
            "fetch_only_s": round(fetch_s, 3),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "runs_s": [round(run[0], 3) for run in verify_runs],
        }
        print(json.dumps(result))
    finally:
        database.dispose()
        if not options.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
