"""Benchmark: the monthly practice report on the large demo practice (200 clinicians, 20,000 clients, 12 months).

Usage: .venv/bin/python tests/benchmarks/bench_report.py [--repeat 3] [--rebuild] [--url postgresql+psycopg://...]

1. A dedicated PostgreSQL database (default rapport_bench_report on 127.0.0.1, or RAPPORT_BENCH_DATABASE_URL) holds
   the large demo, built once by `services.demo.seed.seed_demo` and then given a month of human follow-up
   (acknowledgements, resolutions, escalations, case reviews) by plain SQL, since the seed has no clinicians
   clicking. A job_runs row (job "bench.report.demo") marks a finished build: later runs reuse it.
2. Each measurement runs in a fresh child process, so its peak RSS (ru_maxrss) is the report's and nothing else's:
   one child times the whole generation (queries, assembly, templates, PDF) for the whole practice; another child
   times WeasyPrint alone rendering the very HTML the first one produced.
Goal: wall < 20 s, peak RSS < 1 GB, wall <= 1.5 x render-only, at most 25 pages (MAX_PRACTICE_PAGES). The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness import recreate_database  # noqa: E402

CLIENTS, MONTHS, CLINICIANS = 20_000, 12, 200
TODAY = date(2026, 11, 20)  # fixed, so the demo and the report month (October 2026) never move
PERIOD = "2026-10"
MARKER_JOB = "bench.report.demo"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/rapport_bench_report"


def marker_key(clients: int, months: int, clinicians: int) -> str:
    """The build's identity: size, reference day, and the seed's version of the world."""
    return f"{clients}x{months}x{clinicians}@{TODAY.isoformat()}/v1"


# ---------------------------------------------------------------------------------------------------------------
# Building the practice


def _built(url: str, key: str) -> dict[str, Any] | None:
    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from services.db import Database
    from services.ops.models import JobRun

    database = Database(url)
    try:
        with database.session() as session:
            result = session.scalar(select(JobRun.result).where(JobRun.job == MARKER_JOB, JobRun.period_key == key))
            return dict(result) if result is not None else None
    except (OperationalError, ProgrammingError):
        return None
    finally:
        database.dispose()


FOLLOW_UP_SQL = [
    # Clinicians acknowledge most alerts within two days; risk alerts within minutes to a couple of hours.
    """UPDATE alerts SET acknowledged_at = opened_at + (random() * interval '46 hours') + interval '20 minutes'
       WHERE kind <> 'risk' AND acknowledged_at IS NULL AND random() < 0.85""",
    """UPDATE alerts SET acknowledged_at = opened_at + (random() * interval '110 minutes') + interval '3 minutes'
       WHERE kind = 'risk' AND acknowledged_at IS NULL""",
    # An acknowledgement never comes after the alert closed.
    """UPDATE alerts SET acknowledged_at = resolved_at
       WHERE resolved_at IS NOT NULL AND acknowledged_at > resolved_at""",
    """UPDATE alerts SET status = 'acknowledged' WHERE status = 'open' AND acknowledged_at IS NOT NULL""",
    # Unacknowledged after two days: escalated to the supervisor.
    """UPDATE alerts SET escalated_at = opened_at + interval '48 hours', escalation_level = 1
       WHERE acknowledged_at IS NULL AND opened_at < TIMESTAMPTZ '2026-11-18'""",
    # Outcome and risk alerts close when the episode ends; a few alliance alerts are closed by hand.
    """UPDATE alerts a SET status = 'resolved', resolution_reason = 'client_ended',
              resolved_at = GREATEST(a.opened_at, (e.ended_on + 1)::timestamp AT TIME ZONE 'Europe/London')
       FROM episodes e
       WHERE e.id = a.episode_id AND a.status <> 'resolved' AND e.ended_on IS NOT NULL
         AND a.kind IN ('outcome', 'risk')""",
    """UPDATE alerts SET status = 'resolved', resolution_reason = 'not_a_rupture',
              resolved_at = COALESCE(acknowledged_at, opened_at) + interval '1 day'
       WHERE kind = 'alliance' AND status <> 'resolved' AND random() < 0.25""",
    # A case review for every unrepaired rupture, due a week later; most are completed, some late.
    """INSERT INTO reviews (key, alert_id, episode_id, reason, status, created_at, due_at, completed_at, form)
       SELECT 'bench:' || s.id, (s.evidence ->> 'alert_id')::int, s.episode_id, 'UNREPAIRED',
              CASE WHEN r < 0.75 THEN 'completed' ELSE 'open' END,
              a.completed_at, a.completed_at + interval '7 days',
              CASE WHEN r < 0.75 THEN a.completed_at + (r * interval '12 days') END,
              '{}'::json
       FROM (SELECT signals.*, random() AS r FROM signals WHERE kind = 'UNREPAIRED') s
       JOIN administrations a ON a.id = s.administration_id
       WHERE s.evidence ->> 'alert_id' IS NOT NULL
       ON CONFLICT (key) DO NOTHING""",
]


def build(url: str, clients: int, months: int, clinicians: int) -> dict[str, Any]:
    """Create the database afresh, seed the demo, add the follow-up, and write the marker."""
    from services import schema
    from services.db import Database
    from services.demo.seed import seed_demo
    from services.ops.models import JobRun

    name = recreate_database(url)
    database = Database(url)
    schema.upgrade(database.engine)
    print(f"seeding {clients} clients, {months} months, {clinicians} clinicians into {name} ...", flush=True)
    started = time.perf_counter()
    summary = seed_demo(database, clients=clients, months=months, clinicians=clinicians, seed=7, today=TODAY)
    seed_s = time.perf_counter() - started
    print(f"  {summary} in {seed_s:.1f} s", flush=True)
    started = time.perf_counter()
    with database.engine.begin() as connection:
        from sqlalchemy import text

        connection.execute(text("SELECT setseed(0.42)"))
        for statement in FOLLOW_UP_SQL:
            connection.execute(text(statement))
    vacuum_analyze(database)
    follow_up_s = time.perf_counter() - started
    result = {
        "seed_s": round(seed_s, 1),
        "follow_up_s": round(follow_up_s, 1),
        "administrations": summary.administrations,
        "summary": str(summary),
    }
    with database.unit_of_work() as session:
        session.add(JobRun(job=MARKER_JOB, period_key=marker_key(clients, months, clinicians), result=result))
    database.dispose()
    return result


def vacuum_analyze(database: Any) -> None:
    """VACUUM ANALYZE, as autovacuum would have done by the time a month ends (statistics, visibility map)."""
    from sqlalchemy import text

    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


def upgrade_and_analyze(url: str) -> None:
    """Bring a reused database to the current migration head (new indexes) and refresh its statistics."""
    from services import schema
    from services.db import Database

    database = Database(url)
    if schema.current_revision(database.engine) != schema.heads()[0]:
        schema.upgrade(database.engine)
        vacuum_analyze(database)
    database.dispose()


# ---------------------------------------------------------------------------------------------------------------
# Measuring (in child processes)


def child_generate(url: str, out_dir: Path) -> dict[str, Any]:
    """Time the whole practice report (queries, assembly, templates, PDF); write its HTML and PDF."""
    from reports.assemble import render_monthly_report
    from services.config import load_settings
    from services.db import Database
    from services.reporting.periods import ReportScope

    settings = load_settings().with_overrides(database_url=url, practice_name="Rapport demo practice")
    database = Database(url)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    now = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    started = time.perf_counter()
    with database.session() as session:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        rendered = render_monthly_report(session, settings, ReportScope("practice"), PERIOD, now=now)
    wall = time.perf_counter() - started
    (out_dir / "report.html").write_text(rendered.html, encoding="utf-8")
    (out_dir / "report.pdf").write_bytes(rendered.pdf)
    data = rendered.data
    return {
        "wall_s": wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": rss_before / 1024,
        "timings": rendered.timings,
        "pdf_bytes": len(rendered.pdf),
        "clinicians": len(data.clinicians),
        "not_on_track": len(data.not_on_track),
        "active_clients": data.workflow.active_clients,
        "sessions": data.trend[-1].sessions,
        "ruptures": data.alliance.ruptures,
        "alerts": sum(k.opened for k in data.workflow.alerts),
    }


def child_render_only(html_path: Path) -> dict[str, Any]:
    """Time WeasyPrint alone on the final HTML, through the same safe fetcher."""
    from reports.pdf import render_pdf

    html = html_path.read_text(encoding="utf-8")
    started = time.perf_counter()
    pdf = render_pdf(html)
    return {
        "render_only_s": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "pdf_bytes": len(pdf),
    }


def _run_child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True, cwd=ROOT)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _pages(pdf: Path) -> int | None:
    try:
        out = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in out.splitlines():
        if line.startswith("Pages:"):
            return int(line.split()[1])
    return None


def main() -> None:
    """Build or reuse the large demo, measure, print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("RAPPORT_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--months", type=int, default=MONTHS)
    parser.add_argument("--clinicians", type=int, default=CLINICIANS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="Build the demo again even if it is there.")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench-report")
    parser.add_argument("--child", choices=["generate", "render"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.child == "generate":
        print(json.dumps(child_generate(args.url, args.out)))
        return
    if args.child == "render":
        print(json.dumps(child_render_only(args.out / "report.html")))
        return

    key = marker_key(args.clients, args.months, args.clinicians)
    built = None if args.rebuild else _built(args.url, key)
    if built is None:
        built = build(args.url, args.clients, args.months, args.clinicians)
        built["built_now"] = True
    else:
        upgrade_and_analyze(args.url)
    runs, renders = [], []
    with tempfile.TemporaryDirectory():
        for _ in range(max(1, args.repeat)):
            runs.append(_run_child(["--child", "generate", "--url", args.url, "--out", str(args.out)]))
            renders.append(_run_child(["--child", "render", "--url", args.url, "--out", str(args.out)]))
    wall = statistics.median(r["wall_s"] for r in runs)
    render_only = statistics.median(r["render_only_s"] for r in renders)
    peak = max(r["peak_rss_mb"] for r in runs)
    last = runs[-1]
    timings = last["timings"]
    pages = _pages(args.out / "report.pdf")

    rows = [
        ("demo", built.get("summary", "")),
        ("seed time (when built)", f"{built.get('seed_s', '?')} s (+ {built.get('follow_up_s', '?')} s follow-up SQL)"),
        (
            "report",
            f"practice, {PERIOD}: {last['active_clients']} active clients, {last['sessions']} sessions, "
            f"{last['alerts']} alerts, {last['clinicians']} clinicians, {last['not_on_track']} not on track",
        ),
        ("PDF", f"{pages} pages (goal <= 25), {last['pdf_bytes'] / 1024:.0f} KB -> {args.out / 'report.pdf'}"),
    ]
    for name, seconds in sorted(timings.items(), key=lambda kv: kv[0]):
        rows.append((f"  {name}", f"{seconds:.3f} s"))
    rows += [
        ("runs (wall s)", ", ".join(f"{r['wall_s']:.2f}" for r in runs)),
        ("runs (render-only s)", ", ".join(f"{r['render_only_s']:.2f}" for r in renders)),
        ("wall time, median", f"{wall:.2f} s   (goal < 20 s)"),
        ("peak RSS", f"{peak:.0f} MB   (goal < 1024 MB; {last['rss_before_mb']:.0f} MB before the report)"),
        ("WeasyPrint alone, median", f"{render_only:.2f} s"),
        ("ratio wall / render-only", f"{wall / render_only:.2f}   (goal <= 1.5)"),
    ]
    width = max(len(name) for name, _ in rows)
    print("-" * (width + 60))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("-" * (width + 60))
    print(
        json.dumps(
            {
                "wall_s": round(wall, 3),
                "peak_rss_mb": round(peak, 1),
                "render_only_s": round(render_only, 3),
                "ratio": round(wall / render_only, 3),
                "pages": pages,
                "administrations": built.get("administrations"),
            }
        )
    )


if __name__ == "__main__":
    main()
