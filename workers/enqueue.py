"""Enqueue work after the caller's transaction commits, without ever making the caller wait on the broker.

Publishing happens on one background thread per process. A request only puts (task, ids) on an in-process queue
after its commit and returns. If the broker is down, the publisher logs, stops trying for a short while and drops
what comes in meanwhile: every task here has a row that says it is pending, so `reconcile` (beat, every 30 s)
re-drives it. A lost message delays work; it never loses it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time

from sqlalchemy.orm import Session

from services.db import after_commit

log = logging.getLogger(__name__)

# After a failed publish, skip publishing for this long rather than pay a connection timeout per message.
BROKER_DOWN_BACKOFF = 5.0
_STOP = ("", ())
# Tasks whose arguments are a list of ids handled one by one, so queued messages can be merged; and the largest merge.
BATCH_TASKS = frozenset({"alerts.evaluate_batch"})
BATCH_IDS = 12
# How long the first message of a batch task waits for others: a busy web process then sends a few submissions'
# evaluations in one message instead of paying the broker round trip for each (a tenth of a submission's CPU);
# an alert arrives at most this much later.
BATCH_LINGER = 0.05
DRAIN_AT_MOST = 200


class _Publisher:
    """One daemon thread per process that hands queued tasks to Celery."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[str, tuple[int, ...]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._down_until = 0.0
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, task_name: str, args: tuple[int, ...]) -> None:
        """Queue a publish; starts the thread in this process on first use (also after a fork)."""
        with self._lock:
            if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
                self._queue = queue.SimpleQueue()
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="rapport-publisher", daemon=True)
                self._thread.start()
            self._idle.clear()
            self._queue.put((task_name, args))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far was published or dropped (tests, CLI commands, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.empty() and self._idle.wait(0.05):
                return True
            time.sleep(0.01)
        return False

    def forget_failures(self) -> None:
        """Publish again at once (the broker configuration changed)."""
        self._down_until = 0.0

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first == _STOP:
                return
            waiting = [first]
            # A batch task waits a moment for company; anything else goes at once with whatever is already queued.
            deadline = time.monotonic() + (BATCH_LINGER if first[0] in BATCH_TASKS else 0.0)
            while len(waiting) < DRAIN_AT_MOST and waiting[-1] != _STOP:
                remaining = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                waiting.append(item)
            stop = _STOP in waiting
            for task_name, args in coalesce([item for item in waiting if item != _STOP]):
                self._send(task_name, args)
            if self._queue.empty():
                self._idle.set()
            if stop:
                return

    def _send(self, task_name: str, args: tuple[int, ...]) -> None:
        try:
            if time.monotonic() < self._down_until:
                log.warning("broker recently unreachable: left %s%r to reconcile", task_name, args)
                return
            _publish_now(task_name, args)
        except Exception:
            self._down_until = time.monotonic() + BROKER_DOWN_BACKOFF
            log.warning("could not publish %s%r; reconcile will re-drive it", task_name, args, exc_info=True)


def coalesce(items: list[tuple[str, tuple[int, ...]]]) -> list[tuple[str, tuple[int, ...]]]:
    """Merge queued messages of a batch task into fewer messages (at most BATCH_IDS ids each), in order.

    A quiet practice still sends one message per submission (BATCH_LINGER later); a busy one sends fewer, larger
    ones.
    """
    out: list[tuple[str, tuple[int, ...]]] = []
    open_batch: dict[str, int] = {}  # task name -> index in out of the batch still taking ids
    for task_name, args in items:
        if task_name not in BATCH_TASKS:
            out.append((task_name, args))
            continue
        index = open_batch.get(task_name)
        if index is not None and len(out[index][1]) + len(args) <= BATCH_IDS:
            out[index] = (task_name, out[index][1] + args)
            continue
        open_batch[task_name] = len(out)
        out.append((task_name, args))
    return out


def _publish_now(task_name: str, args: tuple[int, ...]) -> None:
    from workers.app import celery_app

    celery_app.send_task(task_name, args=list(args))


_publisher = _Publisher()


def _publish(task_name: str, *args: int) -> None:
    """Hand a task to the background publisher (returns at once). Tests replace this to record publishes."""
    _publisher.submit(task_name, args)


def flush_publisher(timeout: float = 10.0) -> bool:
    """Wait for queued publishes to go out; True when the queue drained in time."""
    return _publisher.flush(timeout)


def broker_changed() -> None:
    """Called when the broker configuration changes: earlier failures say nothing about the new one."""
    _publisher.forget_failures()


def send_notification_after_commit(session: Session, notification_id: int) -> None:
    """Send a queued notification once the current transaction commits."""
    after_commit(session, lambda: _publish("notifications.send", notification_id))


def enqueue_after_commit(session: Session, task_name: str, *args: int) -> None:
    """Publish any named task with id arguments after commit."""
    after_commit(session, lambda: _publish(task_name, *args))
