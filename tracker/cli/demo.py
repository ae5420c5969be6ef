"""`tracker demo`: the whole loop on a simulated cohort, ending with a report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from tracker.cli.common import UserError, console, out
from tracker.demo import DemoError, DemoResult, run_demo
from tracker.demo import Progress as DemoProgress

PHASE_UNITS = {"simulated months": "months"}


class RichProgress(DemoProgress):
    """The demo's phases as rich progress bars (on stderr, so stdout stays the summary)."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.tasks: dict[str, TaskID] = {}

    def start(self, phase: str, total: float) -> None:
        self.tasks[phase] = self.bars.add_task(phase, total=total)

    def update(self, phase: str, completed: float) -> None:
        self.bars.update(self.tasks[phase], completed=completed)

    def finish(self, phase: str) -> None:
        task = self.tasks[phase]
        self.bars.update(task, completed=self.bars.tasks[task].total)


def demo(
    patients: Annotated[
        int, typer.Option("--patients", help="Simulated patients to enrol.", min=10, max=100_000)
    ] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same story.")] = 2026,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder for demo.db, the export and the report (default: here). "
            "Re-running replaces what an earlier demo wrote there.",
        ),
    ] = Path("."),
) -> None:
    """Run the whole loop on a simulated cohort (SQLite, simulated texts, 13 simulated months)
    and end with the research export and the analysis report."""
    started = time.perf_counter()
    cpu_started = time.process_time()
    bars = Progress(
        TextColumn("{task.description:<17}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    try:
        with bars:
            result = run_demo(out_dir, patients=patients, seed=seed, progress=RichProgress(bars))
    except DemoError as exc:
        raise UserError(str(exc)) from exc
    print_summary(result, time.perf_counter() - started, time.process_time() - cpu_started)


def print_summary(result: DemoResult, elapsed: float, cpu: float) -> None:
    s = result.summary
    table = Table(title="Demo: 13 simulated months", show_header=False, title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("patients enrolled", str(s.patients))
    table.add_row("texts sent / received", f"{s.texts_sent} / {s.texts_received}")
    states = ", ".join(f"{k} {v}" for k, v in sorted(s.checkins_by_state.items()))
    table.add_row("check-ins", states)
    table.add_row("most opening texts for one check-in", str(s.opening_texts_per_checkin_max))
    for pattern, (answered, texted) in s.answered_by_pattern.items():
        rate = answered / texted if texted else 0.0
        table.add_row(f"answered: {pattern}", f"{answered}/{texted} ({rate:.0%})")
    alerts = ", ".join(f"{k} {v}" for k, v in sorted(s.alerts_by_kind.items())) or "none"
    table.add_row("alerts raised", alerts)
    resolved = sum(s.alerts_by_kind.values()) - s.alerts_open
    table.add_row("alerts still open", f"{s.alerts_open} ({resolved} resolved by a link worker)")
    out.print(table)

    if s.contrasts:
        contrasts = Table(
            title="Headline contrasts: change to 12 months, each pattern vs rapid (95% CI)",
            title_justify="left",
        )
        contrasts.add_column("outcome")
        contrasts.add_column("contrast")
        contrasts.add_column("estimate", justify="right")
        contrasts.add_column("95% CI", justify="right")
        for outcome, contrast, estimate, interval in s.contrasts:
            contrasts.add_row(outcome, contrast.split(":")[0], estimate, interval)
        out.print(contrasts)
    elif result.analysis_problem:
        out.print(f"analysis not run: {result.analysis_problem}")

    timings = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    out.print(f"took {elapsed:.1f}s, {cpu:.1f}s of CPU ({timings})")
    if result.report_html is not None:
        out.print(f"report:   {result.report_html}")
    for fmt, path in result.exports.items():
        out.print(f"export:   {path} ({fmt})")
    out.print(f"database: {result.database}")
    out.print(
        f"dashboard: cd {result.out_dir} && export TRACKER_DATABASE_URL=sqlite:///demo.db, then "
        "`tracker user add you@example.org --role admin` and `tracker serve`"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
