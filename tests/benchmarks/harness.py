"""What the benchmark scripts share: ports, process CPU, stopping servers, and their own PostgreSQL databases."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(root_pid: int) -> float:
    """User + system CPU of a process and its children (gunicorn's workers, Celery's pool), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [root_pid]
    children = Path(f"/proc/{root_pid}/task/{root_pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM a server and wait for it (SIGKILL after 30 s)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def admin_connection(url: str) -> tuple[Any, str]:
    """An autocommit psycopg connection to the server's postgres database, and the database name url names."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    connection = psycopg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        dbname="postgres",
        autocommit=True,
    )
    return connection, str(parsed.database)


def drop_database(url: str) -> None:
    """Drop the database url names (if it exists), closing its connections."""
    admin, name = admin_connection(url)
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def recreate_database(url: str) -> str:
    """Drop and create the database url names, empty; return its name."""
    drop_database(url)
    admin, name = admin_connection(url)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name
