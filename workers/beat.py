"""The beat scheduler Rapport runs: `celery -A workers.app beat --scheduler workers.beat:RapportScheduler`.

It adds three things to Celery's PersistentScheduler:

1. The beat lock (services.ops.beat_lock): the schedule is sent only while this process holds it. Any other beat
   ticks as a standby, trying for the lock every couple of seconds and sending nothing; when the holder dies its
   lock is released (PostgreSQL ends its session, the kernel drops its flock) and a standby takes over within a
   tick. A holder that loses its lock (its connection dropped) stops sending until it holds it again. The schedule
   file is opened only once the lock is held, so a standby never writes the file the leader uses.
2. Period keys: an entry whose kwargs carry `period: None` (workers.schedule.PERIOD) is sent with the key of the
   period it is sent for, so the task claims exactly that period in job_runs; a send that slips through in the
   moment a lock changes hands, or a repeat, is then a no-op.
3. A heartbeat row (role "beat" for the holder, "beat-standby" otherwise) at least every HEARTBEAT_EVERY seconds:
   the operations page and `rapport health beat` read it.
4. A broker that is down does not end the beat: Celery's scheduler lets the connection error out of its tick (and
   the beat process dies with it); this one logs it, drops the broken connection and tries again a couple of seconds
   later. Jobs skipped meanwhile lose nothing: the rows they work from are still there for the next period.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import time
from datetime import timedelta
from typing import Any

from celery.beat import PersistentScheduler, ScheduleEntry
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import SQLAlchemyError

from services.db import utcnow
from services.ops.beat_lock import BeatLock, beat_lock_for
from services.ops.operations import beat, period_key
from services.ops.queries import BEAT, BEAT_STANDBY
from workers import runtime
from workers.schedule import PERIOD

log = logging.getLogger(__name__)

# How often a standby tries for the lock.
STANDBY_INTERVAL = 2.0
HEARTBEAT_EVERY = 10.0


class RapportScheduler(PersistentScheduler):  # type: ignore[misc]  # Celery ships no type information
    """Celery's persistent scheduler, sending only while it holds the beat lock, with period keys and a heartbeat."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = runtime.settings()
        self._tz = settings.tz
        self._lock: BeatLock = beat_lock_for(settings.database_url, settings.var_dir)
        self._leading = False
        self._last_heartbeat: tuple[float, bool] | None = None
        self._name = f"beat@{socket.gethostname()}:{os.getpid()}"
        super().__init__(*args, **kwargs)

    # The lock --------------------------------------------------------------------------------------------------

    def setup_schedule(self) -> None:
        """Open the schedule file only once this beat leads (a standby leaves the leader's file alone)."""
        if self._leading:
            super().setup_schedule()

    def _lead(self) -> bool:
        if self._leading:
            if self._lock.held():
                return True
            log.error("beat: lost the beat lock; sending nothing until it is held again")
            self._step_down()
        if not self._lock.try_acquire():
            return False
        self._leading = True
        log.info("beat: holding the beat lock (%s); sending the schedule", self._lock.kind)
        super().setup_schedule()
        self._heap = None  # rebuilt from the schedule on the next tick
        return True

    def _step_down(self) -> None:
        self._leading = False
        store: Any = getattr(self, "_store", None)
        self._store = None
        if store is not None:
            try:
                store.sync()
                store.close()
            except Exception:
                log.warning("beat: could not close the schedule file cleanly", exc_info=True)
        self._heap = None

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """One scheduler pass: as the lock holder, Celery's; as a standby, a try for the lock."""
        leading = self._lead()
        self._heartbeat(leading)
        if not leading:
            return float(min(STANDBY_INTERVAL, self.max_interval))
        try:
            return float(super().tick(*args, **kwargs))
        except BrokerError as exc:
            log.error("beat: the broker is unreachable (%s); trying again in %s s", exc, STANDBY_INTERVAL)
            self._forget_broker()
            self._heap = None  # the entry being sent was taken off the heap: rebuild it from the schedule
            return float(min(STANDBY_INTERVAL, self.max_interval))

    def _forget_broker(self) -> None:
        """Drop the cached producer and connection, so the next send connects afresh."""
        self.__dict__.pop("producer", None)
        connection = self.__dict__.pop("connection", None)
        if connection is not None:
            try:
                connection.release()
            except Exception:
                log.debug("beat: releasing a broken broker connection", exc_info=True)

    def close(self) -> None:
        """Sync the schedule (when leading) and give the lock up."""
        try:
            super().close()
        finally:
            self._lock.release()

    # Period keys -----------------------------------------------------------------------------------------------

    def apply_async(self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        """Send entry, with its period key filled in when its kwargs ask for one."""
        if advance:
            entry = self.reserve(entry)
        try:
            return super().apply_async(self.with_period(entry), producer=producer, advance=False, **kwargs)
        except Exception:
            self._forget_broker()  # a publish that failed leaves a dead channel behind: reconnect next time
            raise

    def with_period(self, entry: ScheduleEntry) -> ScheduleEntry:
        """A copy of entry carrying the current period's key (the stored entry keeps its placeholder)."""
        wanted = entry.kwargs or {}
        every = getattr(entry.schedule, "run_every", None)
        if PERIOD not in wanted or wanted[PERIOD] is not None or not isinstance(every, timedelta):
            return entry
        filled = copy.copy(entry)
        filled.kwargs = {**wanted, PERIOD: period_key(utcnow(), every, self._tz)}
        return filled

    # Heartbeat -------------------------------------------------------------------------------------------------

    def _heartbeat(self, leading: bool) -> None:
        now = time.monotonic()
        if self._last_heartbeat is not None:
            at, was_leading = self._last_heartbeat
            if was_leading == leading and now - at < HEARTBEAT_EVERY:
                return
        try:
            with runtime.database().unit_of_work() as session:
                beat(
                    session,
                    name=self._name,
                    role=BEAT if leading else BEAT_STANDBY,
                    detail={"lock": self._lock.kind, "pid": os.getpid()},
                )
        except SQLAlchemyError:
            log.warning("beat: could not record the heartbeat", exc_info=True)
            return
        self._last_heartbeat = (now, leading)

    @property
    def info(self) -> str:
        """Shown in beat's start-up banner."""
        return f"    . lock -> {self._lock.kind}\n    . db -> {self.schedule_filename}"
