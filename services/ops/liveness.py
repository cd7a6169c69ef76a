"""Which worker process holds a claim, and whether it is still alive (its own heartbeat row, written every few s).

Each worker process (a prefork child, or a solo worker's main process) writes a heartbeat named by process_name
from a thread of its own, and every claim it makes records that name. A claim whose process's heartbeat is older
than PROCESS_DEAD_AFTER belongs to a process that died: it may be taken again at once, rather than after the task's
hard time limit. A claim with no heartbeat row (an in-process run from the command line, or a process that died
before its first beat) falls back to the time limit.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists
from sqlalchemy.orm import InstrumentedAttribute

from services.ops.models import Heartbeat

PROCESS_ROLE = "worker-process"
# A worker process beats this often; one whose heartbeat is older than PROCESS_DEAD_AFTER is taken for dead.
PROCESS_BEAT_EVERY = timedelta(seconds=15)
PROCESS_DEAD_AFTER = timedelta(seconds=90)


def process_name(hostname: str | None = None, pid: int | None = None) -> str:
    """This process's heartbeat and claim name: host and pid."""
    return f"{hostname or socket.gethostname()}:{pid or os.getpid()}"[:120]


def claimer_dead(claimed_by: InstrumentedAttribute[str | None], now: datetime) -> ColumnElement[bool]:
    """True where the claiming process has a heartbeat row that has gone quiet for PROCESS_DEAD_AFTER."""
    return exists().where(Heartbeat.name == claimed_by, Heartbeat.at < now - PROCESS_DEAD_AFTER)


def pid_gone_here(claimed_by: str | None) -> bool:
    """True when claimed_by names a process on this host that no longer exists (a reused pid reads as alive)."""
    if not claimed_by or ":" not in claimed_by:
        return False
    host, _, pid_text = claimed_by.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
