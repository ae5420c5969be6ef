"""Pseudonymised research export (DESIGN section 6): database -> folder of tables + codebook.

    report = export_study(app, fmt="parquet", out_dir=Path("export"), study="main")

The folder holds `outcomes.<ext>`, `contacts.<ext>`, `codebook.json` and `codebook.csv` (and,
for `fhir`, `questionnaire.json` and `questionnaire_responses.ndjson` beside CSV tables). Patient
ids are keyed HMACs under a per-study key; the key is never written. Each export leaves an
audit event with counts only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from tracker.app import App
from tracker.export.codebook import codebook, write_codebook
from tracker.export.dataset import StudyDataset, build_dataset
from tracker.export.formats import EXTENSIONS, WRITERS, write_fhir
from tracker.services import audit

FORMATS = tuple(EXTENSIONS)
DEFAULT_STUDY = "main"


class ExportError(ValueError):
    """The export cannot be written; the message says why and what to do."""


@dataclass
class ExportReport:
    format: str
    study: str
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    patients: int = 0
    outcome_rows: int = 0
    contact_rows: int = 0
    responses: int = 0  # FHIR QuestionnaireResponses written
    seconds: dict[str, float] = field(default_factory=dict)


def software_version() -> str:
    try:
        return metadata.version("followup-tracker")
    except metadata.PackageNotFoundError:
        try:
            import tracker

            return str(getattr(tracker, "__version__", "unknown"))
        except ImportError:  # pragma: no cover
            return "unknown"


def _check_args(fmt: str, study: str, out_dir: Path) -> None:
    if fmt not in EXTENSIONS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(EXTENSIONS)}")
    if not study.strip():
        raise ExportError("the study name is empty; pass --study NAME (e.g. the study acronym)")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} exists and is not a folder; pass a folder to --out")


def export_study(
    app: App,
    *,
    fmt: str,
    out_dir: Path,
    study: str = DEFAULT_STUDY,
    include_free_text: bool = False,
    actor: str = "cli",
    on_stage: Callable[[str], None] | None = None,
) -> ExportReport:
    """Write the study's export folder in `fmt` and record an audit event.

    `on_stage`, if given, is told what the export is doing ("reading ...", "writing ...")."""
    say = on_stage or (lambda _stage: None)
    out_dir = Path(out_dir)
    _check_args(fmt, study, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ExportReport(format=fmt, study=study, out_dir=out_dir)
    created_at = app.clock.now()

    started = time.perf_counter()
    say("reading the database and building the tables")
    key = app.crypto.study_key(study)
    with app.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Both tables from one snapshot, even while the worker keeps writing.
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            data = build_dataset(
                conn,
                study=study,
                study_key=key,
                zone=app.settings.timezone,
                instruments=list(app.settings.instruments),
                include_free_text=include_free_text,
                timings=report.seconds,
            )
    report.seconds["build"] = time.perf_counter() - started

    started = time.perf_counter()
    say(f"writing {fmt} files to {out_dir}")
    report.files = _write(data, fmt, out_dir, report)
    report.patients = data.patients
    report.outcome_rows = len(data.outcomes)
    report.contact_rows = len(data.contacts)
    document = codebook(
        study=study,
        created_at=created_at.isoformat(),
        software_version=software_version(),
        survey=data.survey,
        outcomes=data.outcome_columns,
        contacts=data.contact_columns,
        row_counts={"outcomes": report.outcome_rows, "contacts": report.contact_rows},
    )
    report.files += write_codebook(out_dir, document)
    report.seconds["write"] = time.perf_counter() - started

    with app.sessions.begin() as session:
        audit.record(
            session,
            at=created_at,
            actor=actor,
            action="export",
            entity="study",
            entity_ref=study[:64],
            detail={
                "format": fmt,
                "study": study,
                "patients": report.patients,
                "outcome_rows": report.outcome_rows,
                "contact_rows": report.contact_rows,
                "free_text": include_free_text,
                "files": [p.name for p in report.files],
            },
        )
    return report


_THREADED_WRITERS = frozenset({"parquet", "csv", "fhir"})


def _write(data: StudyDataset, fmt: str, out_dir: Path, report: ExportReport) -> list[Path]:
    ext = EXTENSIONS[fmt]
    writer = WRITERS[fmt]
    outcomes = out_dir / f"outcomes.{ext}"
    contacts = out_dir / f"contacts.{ext}"
    if fmt in _THREADED_WRITERS:
        # pyarrow writes without the GIL: the two tables use both cores.
        with ThreadPoolExecutor(1, thread_name_prefix="export-write") as pool:
            side = pool.submit(writer, data.contacts, data.contact_columns, contacts)
            writer(data.outcomes, data.outcome_columns, outcomes)
            side.result()
    else:
        writer(data.outcomes, data.outcome_columns, outcomes)
        writer(data.contacts, data.contact_columns, contacts)
    files = [outcomes, contacts]
    if fmt == "fhir":
        fhir_files, report.responses = write_fhir(data, out_dir)
        files += fhir_files
    return files


__all__ = ["FORMATS", "ExportError", "ExportReport", "export_study", "StudyDataset"]
