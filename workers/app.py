"""The Celery app, built from Settings. `celery -A workers.app worker` and `celery -A workers.app beat` use it."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import kombu.pools
from celery import Celery
from celery.signals import worker_process_init, worker_ready

from services.config import Settings
from services.ops.liveness import PROCESS_BEAT_EVERY, PROCESS_ROLE, process_name
from services.ops.operations import beat
from workers import runtime
from workers.schedule import beat_schedule

TASK_MODULES = ["workers.tasks"]
log = logging.getLogger(__name__)


def broker_options(settings: Settings) -> dict[str, Any]:
    """Transport options for the configured broker."""
    if settings.broker_url.startswith("filesystem"):
        queue = settings.broker_dir / "queue"
        processed = settings.broker_dir / "processed"
        control = settings.broker_dir / "control"  # exchange tables; kombu's default is ./control in the cwd
        for folder in (queue, processed, control):
            folder.mkdir(parents=True, exist_ok=True)
        return {
            "control_folder": str(control),
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "processed_folder": str(processed),
            "store_processed": False,
            "polling_interval": settings.broker_polling_interval,
        }
    if settings.broker_url.startswith("redis"):
        # Above the longest task (reports), so a slow task is not handed to a second worker.
        return {
            "visibility_timeout": settings.report_time_limit * 2,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
            "retry_on_timeout": False,
        }
    return {}


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery configuration derived from Settings."""
    return dict(
        broker_url=settings.broker_url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_backend=settings.result_backend,
        task_ignore_result=settings.result_backend is None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        broker_transport_options=broker_options(settings),
        broker_connection_retry_on_startup=True,
        # Publishing happens after a commit inside a web request: never make a client wait on the broker.
        task_publish_retry=False,
        broker_connection_timeout=2,
        # Workers reconnect for as long as the broker is away; publishing never blocks a request (see enqueue.py).
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        timezone=settings.timezone,
        enable_utc=True,
        beat_schedule=beat_schedule(settings),
        # Exactly one beat sends: the others stand by on a database (or file) lock.
        beat_scheduler="workers.beat:RapportScheduler",
        beat_schedule_filename=str(settings.var_dir / "celerybeat-schedule"),
        beat_max_loop_interval=5,
    )


def create_celery(settings: Settings) -> Celery:
    """A Celery app configured for Rapport's reliability rules."""
    app = Celery("rapport", include=TASK_MODULES)
    app.conf.update(celery_config(settings))
    return app


def beat_process_once(name: str | None = None) -> bool:
    """Write this process's own heartbeat (services.ops.liveness); False, logged, when the database refused it."""
    try:
        with runtime.database().unit_of_work() as session:
            beat(session, name=name or process_name(), role=PROCESS_ROLE, detail={"pid": os.getpid()})
    except Exception:
        log.warning("could not write this worker process's heartbeat", exc_info=True)
        return False
    return True


_heartbeat_pid: int | None = None


def start_process_heartbeat(every: float = PROCESS_BEAT_EVERY.total_seconds()) -> threading.Event:
    """Beat now and then every `every` seconds from a daemon thread of this process; set the event to stop it."""
    global _heartbeat_pid
    stop = threading.Event()
    if _heartbeat_pid == os.getpid():
        return stop  # already beating (a thread does not survive a fork, so a child starts its own)
    _heartbeat_pid = os.getpid()
    name = process_name()

    def loop() -> None:
        while True:
            beat_process_once(name)
            if stop.wait(every):
                return

    threading.Thread(target=loop, name="rapport-process-heartbeat", daemon=True).start()
    return stop


@worker_process_init.connect
def _reset_connections(**_: Any) -> None:
    runtime.reset_after_fork()
    # A prefork child runs the tasks and records their claims under its own name: it beats for itself.
    start_process_heartbeat()


@worker_ready.connect
def _main_process_heartbeat(**_: Any) -> None:
    # A solo or threads pool runs tasks in the main process.
    start_process_heartbeat()


celery_app = create_celery(runtime.settings())
app = celery_app


def configure(settings: Settings) -> Celery:
    """Point this process's Celery app (and task runtime) at settings; call before the first publish."""
    runtime.use_settings(settings)
    config = celery_config(settings)
    if all(celery_app.conf.get(key) == value for key, value in config.items()):
        return celery_app  # already configured so: keep the live connection pools
    celery_app.conf.update(config)
    from workers.enqueue import broker_changed, flush_publisher

    flush_publisher()
    broker_changed()
    pool = getattr(celery_app, "_pool", None)
    if pool is not None:
        pool.force_close_all()
        celery_app._pool = None
        # The producer pool wraps the connection pool just closed: drop it too, or the next publish fails.
        celery_app.amqp._producer_pool = None
        # kombu keeps a registry of pools per connection; it would hand the closed one back.
        kombu.pools.reset()  # type: ignore[no-untyped-call]
    return celery_app
