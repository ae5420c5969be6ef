"""`analyse(path, out_dir)`: load, validate, describe, fit every model, write the outputs.

Outputs in `out_dir`: report.html, results.json, and CSV tables (response_rates, outcome_means,
response_funnel, contrasts, coefficients). Files are written to a temporary folder inside
`out_dir` and moved into place only when everything succeeded, so a failed run never leaves a
half-written report.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis import descriptives, messages, report
from analysis.contrasts import pattern_wave_contrasts
from analysis.dataset import (
    AnalysisInputError,
    StudyData,
    complete_covariates,
    load_study,
    validate_outcomes,
)
from analysis.models import ModelData, fit_all
from analysis.results import ModelResult

CONTRAST_MODELS = (
    "life_satisfaction_mixed",
    "worthwhile_mixed",
    "happy_mixed",
    "anxious_mixed",
    "lonely_gee",
    "gp_visits_gee_poisson",
    "gp_visits_gee_negbin",
)
OUTPUT_FILES = (
    "report.html",
    "results.json",
    "response_rates.csv",
    "outcome_means.csv",
    "response_funnel.csv",
    "contrasts.csv",
    "coefficients.csv",
)


@dataclass(frozen=True)
class AnalysisResult:
    """What `analyse` wrote and fitted."""

    out_dir: Path
    report_path: Path
    results_path: Path
    table_paths: list[Path]
    models: dict[str, ModelResult]
    contrasts: pd.DataFrame
    n_patients: int
    n_rows: int
    seconds: dict[str, float] = field(default_factory=dict)


def analyse(
    path: str | Path,
    out_dir: str | Path,
    *,
    suppression: bool = True,
    progress: Callable[[str], None] | None = None,
) -> AnalysisResult:
    """Analyse an export folder or a long-format CSV/Parquet file; write the report to `out_dir`.

    Raises `analysis.dataset.AnalysisInputError` (message names file, row, column and value)
    when the data cannot be analysed; nothing is written in that case.
    `progress` receives a short text before each step (for a CLI spinner or log).
    """
    note = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    note(f"reading {path}")
    study = load_study(path)
    return analyse_study(study, out_dir, suppression=suppression, progress=progress, _t0=t0)


def analyse_frame(
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    suppression: bool = True,
    progress: Callable[[str], None] | None = None,
    source: str = "data frame",
) -> AnalysisResult:
    """The same analysis for an in-memory long-format table (demo, power checks)."""
    t0 = time.perf_counter()
    study = StudyData(outcomes=validate_outcomes(frame, source=source), source=source)
    return analyse_study(study, out_dir, suppression=suppression, progress=progress, _t0=t0)


def analyse_study(
    study: StudyData,
    out_dir: str | Path,
    *,
    suppression: bool = True,
    progress: Callable[[str], None] | None = None,
    _t0: float | None = None,
) -> AnalysisResult:
    note = progress or (lambda _msg: None)
    seconds: dict[str, float] = {}
    t0 = _t0 if _t0 is not None else time.perf_counter()
    seconds["load"] = time.perf_counter() - t0
    frame = study.outcomes
    t = time.perf_counter()
    note("descriptives")
    tables = descriptives.describe(frame)
    shown = descriptives.suppress_all(tables) if suppression else tables
    seconds["descriptives"] = time.perf_counter() - t

    answered = frame.loc[frame["responded"] == 1, "wave"].unique()
    absent = [str(w) for w in (6, 12) if w not in set(answered)]
    if absent:
        raise AnalysisInputError(
            messages.NO_FOLLOW_UP.format(source=Path(study.source).name, waves=" or ".join(absent))
        )
    t = time.perf_counter()
    model_frame, left_out = complete_covariates(frame)
    if left_out:
        note(
            f"{left_out} patients with unknown age, gender, IMD quintile or sessions left out of the models"
        )
    data = ModelData(model_frame)
    models = fit_all(data, progress=note)
    seconds["models"] = time.perf_counter() - t

    contrast_rows = [
        row
        for name in CONTRAST_MODELS
        if name in models
        for row in pattern_wave_contrasts(models[name])
    ]
    contrasts = pd.DataFrame(contrast_rows)
    n_patients = int(frame["pid"].nunique())
    versions = report.software_versions()
    meta = {
        "source": Path(study.source).name,
        "study": study.study,
        "pattern_rule_version": study.pattern_rule_version,
        "n_patients": n_patients,
        "n_rows": len(frame),
        "n_sites": int(frame["site"].nunique()),
        "n_patients_left_out_of_models_for_unknown_covariates": left_out,
        "reference_levels": {"pattern": "rapid", "wave": 0},
        "small_cell_suppression": suppression,
        "software": versions,
    }

    t = time.perf_counter()
    note("writing report")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".analysis-", dir=out))
    try:
        report.write_json(tmp / "results.json", report.results_json(models, contrast_rows, meta))
        for name in ("response_rates", "outcome_means", "response_funnel"):
            shown[name].to_csv(tmp / f"{name}.csv", index=False)
        contrasts.to_csv(tmp / "contrasts.csv", index=False)
        report.coefficients_table(models).to_csv(tmp / "coefficients.csv", index=False)
        summary = {
            "data": Path(study.source).name,
            "study": study.study or "(not named)",
            "patients": f"{n_patients:,}",
            "rows (patient x wave)": f"{len(frame):,}",
            "sites": meta["n_sites"],
        }
        if left_out:
            summary["left out of the models (unknown age, gender, IMD quintile or sessions)"] = (
                f"{left_out:,} patients"
            )
        if study.pattern_rule_version:
            summary["pattern rule version"] = study.pattern_rule_version
        html_text = report.render_html(
            title="Outcomes after social prescribing by engagement pattern",
            summary=summary,
            tables=shown,
            models=models,
            contrasts=_contrast_display(contrasts),
            versions=versions,
            suppression=suppression,
        )
        (tmp / "report.html").write_text(html_text, encoding="utf-8")
        for name in OUTPUT_FILES:
            (tmp / name).replace(out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds["report"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    return AnalysisResult(
        out_dir=out,
        report_path=out / "report.html",
        results_path=out / "results.json",
        table_paths=[out / n for n in OUTPUT_FILES if n.endswith(".csv")],
        models=models,
        contrasts=contrasts,
        n_patients=n_patients,
        n_rows=len(frame),
        seconds=seconds,
    )


def _contrast_display(contrasts: pd.DataFrame) -> pd.DataFrame:
    cols = ["model", "contrast", "estimate", "ci_low", "ci_high", "p"]
    extra = [c for c in ("ratio", "ratio_ci_low", "ratio_ci_high") if c in contrasts.columns]
    return contrasts[cols + extra]
