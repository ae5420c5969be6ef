"""`tracker analyse`: a thin Typer skin over `analysis.run.analyse` and `analysis.power`.

Mount it with `app.add_typer(analysis.cli.app, name="analyse")`. Then both of these work:

    tracker analyse PATH --out DIR [--no-suppression]      (the `run` command is the default)
    tracker analyse power --patients 2000 --effect 0.5 [--sims 200] [--seed 0] [--json]

A group with a positional argument of its own would swallow the word `power`, so the group
instead inserts `run` when the first word is not one of its commands (`_DefaultToRun`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer
from typer.core import TyperGroup

from analysis.dataset import AnalysisInputError


class _DefaultToRun(TyperGroup):
    def parse_args(self, ctx, args):  # type: ignore[override]
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_DefaultToRun,
    help="Analyse a research export: models, figures, report.html and results.json.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("run")
def run_command(
    path: Path = typer.Argument(
        ..., help="Export folder (outcomes.* + codebook.json) or one long-format CSV/Parquet file."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Folder for report.html, results.json and CSV tables."
    ),
    suppression: bool = typer.Option(
        True,
        "--suppression/--no-suppression",
        help="Show counts under 5 as <5 in the report and tables (default on).",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="Do not print progress."),
) -> None:
    """Analyse PATH and write the report to --out (the default command)."""
    from analysis.run import analyse

    start = time.perf_counter()

    def progress(msg: str) -> None:
        if not quiet:
            typer.echo(f"[{time.perf_counter() - start:6.1f}s] {msg}", err=True)

    try:
        result = analyse(path, out, suppression=suppression, progress=progress)
    except AnalysisInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(
        f"analysed {result.n_patients:,} patients ({result.n_rows:,} rows) in "
        f"{result.seconds['total']:.1f}s: {result.report_path} and {result.results_path}"
    )


@app.command("power")
def power_command(
    patients: int = typer.Option(..., "--patients", help="Planned number of patients."),
    effect: float = typer.Option(
        0.5,
        "--effect",
        help="Difference in change from baseline between --pattern and rapid, in points.",
    ),
    sims: int = typer.Option(200, "--sims", help="Number of simulated cohorts."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same answer)."),
    outcome: str = typer.Option("life_satisfaction", "--outcome", help="ONS4 item to power for."),
    pattern: str = typer.Option(
        "anchored", "--pattern", help="anchored or with_only (compared with rapid)."
    ),
    wave: int = typer.Option(12, "--wave", help="Follow-up month: 6 or 12."),
    alpha: float = typer.Option(0.05, "--alpha", help="Two-sided significance level."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Estimate power for a planned cohort size by simulation."""
    from analysis.power import estimate_power

    try:
        res = estimate_power(
            patients,
            effect=effect,
            sims=sims,
            seed=seed,
            outcome=outcome,
            pattern=pattern,
            wave=wave,
            alpha=alpha,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    if as_json:
        json.dump(res.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    typer.echo(
        f"power {res.power:.1%} (95% CI {res.power_ci_low:.1%} to {res.power_ci_high:.1%}) to detect "
        f"a difference of {effect} points in {outcome} change to month {wave}, {pattern} vs rapid, "
        f"with {patients:,} patients ({sims} simulations, alpha {alpha}); mean SE {res.mean_se:.3f}"
    )


if __name__ == "__main__":  # python -m analysis.cli PATH --out DIR (same as tracker analyse)
    app()
