"""Which worker process holds a claim, whether it is still alive, and the one rule for taking a claim again.

Each worker process (a prefork child, or a solo worker's main process) writes a heartbeat named by process_name
from a thread of its own every PROCESS_BEAT_EVERY, and every claim it makes records that name: reports
(reports.claimed_by), outbox messages (notifications.claimed_by) and evaluations (administrations.eval_claimed_by).
A held claim may be taken again (claim_takeable) when

- its process's heartbeat is older than PROCESS_DEAD_AFTER: the process died (SIGKILL, OOM, a lost machine);
- or a task on the same host finds that pid gone (dead_claimer): at once;
- or, whatever the heartbeat says, the claim is older than the task's hard time limit plus a margin: Celery has
  killed the task by then, and a claim with no heartbeat row (an in-process run from the command line, or a
  process that died before its first beat) is judged by this alone.

Worst case after a SIGKILL: the heartbeat goes stale at most PROCESS_DEAD_AFTER later (the last beat was at most
PROCESS_BEAT_EVERY before the kill, so less), and reconcile, every RECONCILE_EVERY, re-drives it at the next pass:
60 + 30 s, plus the re-run itself, which keeps the recovery under two minutes. Sixty seconds is six missed beats: a
busy or briefly disconnected process is not taken for dead (and if it were, its late writes are refused, because
every write checks that the claim is still its own).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Executable, Select, exists, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from services.ops.models import Heartbeat

PROCESS_ROLE = "worker-process"
# A worker process beats this often; one whose heartbeat is older than PROCESS_DEAD_AFTER is taken for dead.
PROCESS_BEAT_EVERY = timedelta(seconds=10)
PROCESS_DEAD_AFTER = timedelta(seconds=60)
# How often beat runs reconcile (workers/schedule.py), which re-drives the claims of dead processes.
RECONCILE_EVERY = timedelta(seconds=30)
# The worst case from a kill to its work being re-driven (before the re-run itself).
WORST_REDRIVE = PROCESS_DEAD_AFTER + RECONCILE_EVERY


def process_name(hostname: str | None = None, pid: int | None = None) -> str:
    """This process's heartbeat and claim name: host and pid."""
    return f"{hostname or socket.gethostname()}:{pid or os.getpid()}"[:120]


def claimer_dead(claimed_by: InstrumentedAttribute[str | None], now: datetime) -> ColumnElement[bool]:
    """True where the claiming process has a heartbeat row that has gone quiet for PROCESS_DEAD_AFTER."""
    return exists().where(Heartbeat.name == claimed_by, Heartbeat.at < now - PROCESS_DEAD_AFTER)


def claim_takeable(
    claimed_by: InstrumentedAttribute[str | None],
    claimed_at: InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None],
    *,
    now: datetime,
    stale_after: timedelta,
    dead_claimer: str | None = None,
    taker: str | None = None,
) -> ColumnElement[bool]:
    """Where a held claim may be taken again: its process is dead (or is dead_claimer), it is past stale_after, or
    it is taker's own (a process runs one task at a time, so its earlier attempt is over: a retry takes it back)."""
    takeable = or_(claimed_at < now - stale_after, claimer_dead(claimed_by, now))
    for name in (dead_claimer, taker):
        if name is not None:
            takeable = or_(takeable, claimed_by == name)
    return takeable


def take_claim(session: Session, claim: Callable[[str | None], Executable], holder: Select[str | None]) -> bool:
    """Run the conditional UPDATE claim(None); when it takes nothing and holder names a pid gone on this host,
    run claim(that name), which may take that dead process's claim at once. True when a row was claimed.

    The pid look-up costs a query only when the first UPDATE found the row held (a redelivery, a re-drive).
    """
    if session.execute(claim(None)).rowcount:  # type: ignore[attr-defined]
        return True
    dead = session.scalar(holder)
    if not pid_gone_here(dead):
        return False
    return bool(session.execute(claim(dead)).rowcount)  # type: ignore[attr-defined]


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
