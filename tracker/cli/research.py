"""Research commands: `tracker export` (pseudonymised dataset) and `tracker analyse`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracker.cli.common import UserError, app_for, console, out
from tracker.export import DEFAULT_STUDY, FORMATS, ExportError, export_study


def export(
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="csv, parquet, stata (.dta), spss (.sav) or fhir."),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write (created if missing).")],
    study: Annotated[
        str,
        typer.Option(
            "--study",
            help="Study name: pseudonymous ids are stable within a study, unlinkable across studies.",
        ),
    ] = DEFAULT_STUDY,
    include_free_text: Annotated[
        bool,
        typer.Option(
            "--include-free-text",
            help="Also export message texts (phone-number-like digits removed). Off by default.",
        ),
    ] = False,
) -> None:
    """Pseudonymised research export: outcomes, contact attempts and a codebook."""
    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", 2)
    with app_for() as app, console.status("exporting") as status:
        try:
            report = export_study(
                app,
                fmt=fmt,
                out_dir=out_dir,
                study=study,
                include_free_text=include_free_text,
                on_stage=lambda stage: status.update(stage),
            )
        except ExportError as exc:
            raise UserError(str(exc)) from exc
    out.print(
        f"exported study {report.study!r} ({report.format}): {report.patients} patients, "
        f"{report.outcome_rows} outcome rows, {report.contact_rows} contact rows -> {report.out_dir}"
    )
    for path in report.files:
        out.print(f"  {path.name}")


def _analyse_fallback(
    path: Annotated[
        Path, typer.Argument(help="Export folder, or one long-format CSV/Parquet file.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.html, results.json.")],
    no_suppression: Annotated[
        bool, typer.Option("--no-suppression", help="Show counts under 5 in the report.")
    ] = False,
) -> None:
    """Models, figures, report.html and results.json from an export."""
    try:
        from analysis.run import analyse
    except ImportError as exc:
        raise UserError("the analysis package is not installed in this environment") from exc
    analyse(path, out_dir, suppression=not no_suppression)
    console.print(f"report written to {out_dir}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    try:
        from analysis.cli import app as analyse_app
    except ImportError:
        app.command("analyse")(_analyse_fallback)
    else:
        app.add_typer(analyse_app, name="analyse")
