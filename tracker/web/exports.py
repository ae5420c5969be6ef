"""Research exports started from the dashboard or the API: run synchronously into a
server-side folder (`exports/` beside the SQLite database, or in the working directory),
one sub-folder per export, listed and downloadable by researchers and admins."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.app import App

FORMATS = ("csv", "parquet", "stata", "spss", "fhir")
_EXPORT_ID = re.compile(r"^[0-9]{8}T[0-9]{6}-[a-z]+-[0-9a-f]{6}$")
_STUDY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ExportUnavailable(Exception):
    """The export cannot run; the message says why and what to do."""


@dataclass(frozen=True)
class ExportRecord:
    id: str
    fmt: str
    path: Path
    files: list[str]


def exports_root(app: App) -> Path:
    if app.settings.exports_dir is not None:
        return Path(app.settings.exports_dir)
    db = app.settings.sqlite_path
    return (db.parent if db is not None else Path.cwd()) / "exports"


def run_export(app: App, *, fmt: str, study: str, actor: str) -> ExportRecord:
    if fmt not in FORMATS:
        raise ExportUnavailable(f"unknown format {fmt!r} (use one of: {', '.join(FORMATS)})")
    if not _STUDY.match(study or ""):
        raise ExportUnavailable("the study name may use letters, digits, '.', '_' and '-' only")
    try:
        from tracker.export import export_study  # type: ignore[attr-defined]
    except ImportError as exc:
        raise ExportUnavailable(
            "exports are not available in this installation (tracker.export is missing)"
        ) from exc
    stamp = app.clock.now().strftime("%Y%m%dT%H%M%S")
    export_id = f"{stamp}-{fmt}-{secrets.token_hex(3)}"
    folder = exports_root(app) / export_id
    folder.mkdir(parents=True, exist_ok=False)
    export_study(app, fmt=fmt, out_dir=folder, study=study, actor=actor)
    return _record(export_id, folder)


def _record(export_id: str, folder: Path) -> ExportRecord:
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    return ExportRecord(id=export_id, fmt=export_id.split("-")[1], path=folder, files=files)


def list_exports(app: App) -> list[ExportRecord]:
    root = exports_root(app)
    if not root.is_dir():
        return []
    records = [
        _record(p.name, p) for p in root.iterdir() if p.is_dir() and _EXPORT_ID.match(p.name)
    ]
    return sorted(records, key=lambda r: r.id, reverse=True)


def export_file(app: App, export_id: str, filename: str) -> Path | None:
    """The file if it belongs to a known export (no path tricks), else None."""
    if not _EXPORT_ID.match(export_id) or "/" in filename or "\\" in filename:
        return None
    folder = exports_root(app) / export_id
    path = folder / filename
    if filename.startswith(".") or not path.is_file():
        return None
    return path


def as_json(record: ExportRecord) -> dict[str, Any]:
    return {"id": record.id, "format": record.fmt, "path": str(record.path), "files": record.files}
