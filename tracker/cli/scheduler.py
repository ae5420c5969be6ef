"""`tracker tick` (one pass, for cron) and `tracker worker` (long-running)."""

from __future__ import annotations

import json

import typer

from tracker.cli.common import UserError, app_for, out
from tracker.services.dispatch import tick
from tracker.worker import (
    Worker,
    WorkerAlreadyRunning,
    default_worker_id,
    single_worker_lock,
)


def register(app: typer.Typer) -> None:
    @app.command("tick")
    def tick_command(
        now: str | None = typer.Option(
            None, "--now", help="Act as if it were this ISO-8601 instant (simulations, replays)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the counts as one JSON object."),
    ) -> None:
        """One scheduler pass: reconcile, expire, send due check-ins and reminders. Cron-friendly."""
        with app_for(now) as application:
            try:
                with single_worker_lock(application.settings):
                    report = tick(application, worker_id=default_worker_id("tick"))
            except WorkerAlreadyRunning:
                # A worker is already ticking this SQLite database: nothing for cron to do.
                out.print("skipped: a tracker worker is running on this database")
                return
        out.print(json.dumps(report.as_dict()) if as_json else report.summary())

    @app.command("worker")
    def worker_command(
        interval: float | None = typer.Option(
            None,
            "--interval",
            min=0.1,
            help="Seconds between ticks (default TRACKER_WORKER_INTERVAL_SECONDS, 60).",
        ),
    ) -> None:
        """Run the scheduler until SIGTERM/SIGINT (finishes the batch in hand, then exits)."""
        with app_for(None) as application:
            every = interval or application.settings.worker_interval_seconds
            try:
                Worker(application, interval=every).run()
            except WorkerAlreadyRunning as exc:
                raise UserError(str(exc)) from None
