"""The long-running worker: APScheduler 3 as a ticker only.

APScheduler keeps no state here: a memory job store with one interval job that calls
`tracker.services.dispatch.tick`; nothing is pickled, so renaming code never loses a job, and
the database stays the only schedule. `max_instances=1` and `coalesce=True` mean a slow tick
is never run twice at once, and missed ticks collapse into one.

SIGTERM/SIGINT: the tick in hand finishes its current batch (checked between batches), then
the process exits 0. On SQLite only one worker may run: an exclusive lock file beside the
database refuses a second one (SQLite has no row locks to share out work safely and fast).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import IO

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from tracker.app import App
from tracker.clock import SystemClock
from tracker.config import Settings
from tracker.services.dispatch import TickReport, tick
from tracker.services.pacing import Pacer

log = logging.getLogger(__name__)


class WorkerAlreadyRunning(Exception):
    """Another worker holds this SQLite database."""


def default_worker_id(role: str = "worker") -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}"[:64]


def lock_path(settings: Settings) -> Path | None:
    db = settings.sqlite_path
    return db.with_name(db.name + ".worker.lock") if db is not None else None


@contextmanager
def single_worker_lock(settings: Settings) -> Iterator[None]:
    """On SQLite: hold an exclusive lock file for the worker's lifetime. PostgreSQL: no-op."""
    path = lock_path(settings)
    if path is None:
        yield
        return
    handle: IO[str] = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the lifetime
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkerAlreadyRunning(
                f"another tracker worker is already running on the SQLite database "
                f"{settings.sqlite_path} (lock file {path}). SQLite supports one worker only; "
                "stop the other one, or move to PostgreSQL (TRACKER_DATABASE_URL=postgresql://...) "
                "to run several workers side by side."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


class Worker:
    """Runs `tick` every `interval` seconds until told to stop."""

    def __init__(self, app: App, *, interval: float, worker_id: str | None = None) -> None:
        self.app = app
        self.interval = interval
        self.worker_id = worker_id or default_worker_id()
        self.pacer = Pacer(app.settings.send_rate_per_second)  # shared by all ticks
        self._stopping = threading.Event()
        self.ticks = 0

    def stop(self, *_: object) -> None:
        self._stopping.set()

    def run_once(self) -> TickReport | None:
        """One tick; errors are logged (without parameters) and the worker carries on."""
        try:
            report = tick(
                self.app,
                worker_id=self.worker_id,
                pacer=self.pacer,
                should_stop=self._stopping.is_set,
            )
        except Exception as exc:  # noqa: BLE001 - a database blip must not kill the worker
            cause = getattr(exc, "orig", None) or exc
            first_line = (str(cause).splitlines() or [""])[0][:200]
            log.error("tick failed: %s: %s (will retry next tick)", type(exc).__name__, first_line)
            return None
        self.ticks += 1
        log.info("tick %s", report.summary())
        return report

    def run(self, *, install_signal_handlers: bool = True) -> None:
        log.setLevel(min(log.getEffectiveLevel(), logging.INFO))  # one line per tick, always
        with single_worker_lock(self.app.settings):
            if install_signal_handlers:
                signal.signal(signal.SIGTERM, self.stop)
                signal.signal(signal.SIGINT, self.stop)
            scheduler = BackgroundScheduler(
                jobstores={"default": MemoryJobStore()},
                executors={"default": ThreadPoolExecutor(1)},
                job_defaults={"max_instances": 1, "coalesce": True},
                timezone="UTC",
            )
            scheduler.add_job(
                self.run_once,
                IntervalTrigger(seconds=self.interval, timezone="UTC"),
                id="tick",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,  # a late tick still runs (once)
                next_run_time=SystemClock().now() + timedelta(milliseconds=10),
            )
            log.info(
                "worker %s started: tick every %ss (pid %s)",
                self.worker_id,
                self.interval,
                os.getpid(),
            )
            scheduler.start()
            try:
                while not self._stopping.wait(0.5):
                    pass
            finally:
                scheduler.shutdown(wait=True)  # the tick in hand ends after its batch
            log.info("worker %s stopped after %d ticks", self.worker_id, self.ticks)
