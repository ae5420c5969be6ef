"""`tracker import` and `tracker checkins`: enrol discharged episodes, see when texts go out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tracker import import_messages as msg
from tracker.cli.common import UserError, app_for, console, out
from tracker.domain import CheckInState
from tracker.importing import ImportFileError
from tracker.services.checkins import list_checkins
from tracker.services.enrolment import ImportReport, import_csv

# Files at least this large get a progress bar even when stderr is not a terminal.
LARGE_FILE_BYTES = 20 * 1024 * 1024
# At most this many row errors are printed; the rest are counted (--skip-invalid lists all).
MAX_PRINTED_ERRORS = 500


def import_episodes(
    file: Path = typer.Argument(..., help="CSV file of discharged episodes (DESIGN columns)."),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="Import the valid rows and write the others to FILE.rejects.csv with a reason.",
    ),
) -> None:
    """Enrol discharged episodes from a CSV file and plan their 6- and 12-month check-ins.

    All-or-nothing by default: if any row has a problem nothing is imported and every problem is
    listed with its row number. Re-importing the same file changes nothing; a corrected
    discharge date moves the check-ins that have not been sent yet.
    """
    with app_for() as app:
        size = file.stat().st_size if file.is_file() else 0
        show = size > 0 and (console.is_terminal or size >= LARGE_FILE_BYTES)
        try:
            if show:
                with Progress(
                    TextColumn("importing {task.fields[name]}"),
                    BarColumn(),
                    TextColumn("{task.percentage:>3.0f}%"),
                    TimeRemainingColumn(),
                    console=console,
                    transient=True,
                ) as progress:
                    task = progress.add_task("import", total=size, name=file.name)
                    report = import_csv(
                        app,
                        file,
                        skip_invalid=skip_invalid,
                        on_progress=lambda done, total: progress.update(task, completed=done),
                    )
            else:
                report = import_csv(app, file, skip_invalid=skip_invalid)
        except ImportFileError as exc:
            raise UserError(str(exc)) from exc
    _print_report(report, skip_invalid=skip_invalid)
    if not report.imported:
        raise typer.Exit(1)


def _print_report(report: ImportReport, *, skip_invalid: bool) -> None:
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", markup=True)
    for error in report.errors[:MAX_PRINTED_ERRORS]:
        console.print(str(error), markup=False)
    if len(report.errors) > MAX_PRINTED_ERRORS:
        console.print(
            f"... and {len(report.errors) - MAX_PRINTED_ERRORS} more problems "
            "(--skip-invalid writes every rejected row with its reason to a rejects file)",
            markup=False,
        )
    if not report.imported:
        console.print(msg.NOTHING_IMPORTED.format(count=report.rejected), markup=False)
        return
    c = report.counts
    out.print(
        f"Imported {report.path.name}: {c.episodes_created} created, {c.episodes_updated} "
        f"updated, {c.episodes_unchanged} unchanged, {report.rejected} rejected.",
        markup=False,
    )
    out.print(
        f"Check-ins: {c.checkins_scheduled} scheduled, {c.checkins_missed} missed, "
        f"{c.checkins_rescheduled} re-planned"
        + (f", {c.checkins_cancelled} not sent (patient opted out)" if c.checkins_cancelled else "")
        + ".",
        markup=False,
    )
    if c.rows_erased:
        console.print(msg.ERASED_ROWS.format(count=c.rows_erased), markup=False)
    if report.rejects_file is not None:
        console.print(
            msg.REJECTS_WRITTEN.format(count=report.rejected, path=report.rejects_file),
            markup=False,
        )


def checkins(
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per line: episode_ref, wave, due_at, state."
    ),
    state: list[str] = typer.Option(
        None, "--state", help="Only check-ins in this state (repeatable), e.g. --state scheduled."
    ),
    site: str | None = typer.Option(None, "--site", help="Only episodes from this site."),
) -> None:
    """List check-ins with their local send times (service time zone, with UTC offset)."""
    states = [s.lower() for s in state or []]
    known = {s.value for s in CheckInState}
    unknown = [s for s in states if s not in known]
    if unknown:
        raise UserError(
            f"unknown state {', '.join(unknown)} (use one of: {', '.join(sorted(known))})", 2
        )
    with app_for() as app:
        zone = app.settings.zone
        with app.sessions() as session:
            rows = list_checkins(session, states=states or None, site=site)
            if as_json:
                write = sys.stdout.write
                for row in rows:
                    write(json.dumps(row.as_json(zone)) + "\n")
                sys.stdout.flush()
                return
            table = Table(title="Check-ins", show_lines=False)
            for name in ("episode", "site", "wave", "due (local)", "state", "note"):
                table.add_column(name)
            count = 0
            for row in rows:
                local = row.due_at.astimezone(zone)
                table.add_row(
                    row.episode_ref,
                    row.site,
                    f"{row.wave} months",
                    local.strftime("%a %d %b %Y %H:%M %Z"),
                    row.state,
                    row.reason or "",
                )
                count += 1
    if count == 0:
        out.print("No check-ins yet: enrol episodes with `tracker import FILE.csv`.")
        return
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("import")(import_episodes)
    app.command("checkins")(checkins)
