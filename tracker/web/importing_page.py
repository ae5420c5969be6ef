"""The import page: an uploaded CSV goes through the same checks and enrolment as
`tracker import`; row errors come back as a table. Staff may only import their own site."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tracker.app import App
from tracker.web.auth import Principal

MAX_ERRORS_SHOWN = 500


def _other_site_rows(path: Path, site: str, today: Any) -> list[dict[str, Any]]:
    from tracker.importing import EpisodeFile, checked_rows

    problems = []
    with EpisodeFile.open(path) as source:
        for item in checked_rows(source, today=today):
            if item.episode is not None and item.episode.site != site:
                problems.append(
                    {
                        "row": item.row,
                        "column": "site",
                        "value": item.episode.site,
                        "message": f"you may only import episodes for your site ({site})",
                    }
                )
    return problems


def run_import(
    app: App, data: bytes, *, filename: str, skip_invalid: bool, user: Principal
) -> dict[str, Any]:
    """Import the uploaded bytes; returns what the template shows (never phone numbers)."""
    from tracker.importing import ImportFileError
    from tracker.services.enrolment import import_csv, service_today

    with tempfile.TemporaryDirectory(prefix="tracker-import-") as folder:
        path = Path(folder) / "upload.csv"
        path.write_bytes(data)
        try:
            if user.site_scope is not None:
                wrong = _other_site_rows(path, user.site_scope, service_today(app))
                if wrong:
                    return {
                        "imported": False,
                        "filename": filename,
                        "errors": wrong[:MAX_ERRORS_SHOWN],
                        "error_count": len(wrong),
                        "rows_read": None,
                        "warnings": [],
                        "counts": None,
                        "skip_invalid": skip_invalid,
                    }
            report = import_csv(app, path, skip_invalid=skip_invalid, actor=user.actor)
        except ImportFileError as exc:
            return {"imported": False, "filename": filename, "file_error": str(exc), "errors": []}
    errors = [
        {"row": e.row, "column": e.column, "value": e.value, "message": e.message}
        for e in report.errors[:MAX_ERRORS_SHOWN]
    ]
    return {
        "imported": report.imported,
        "filename": filename,
        "errors": errors,
        "error_count": len(report.errors),
        "rows_read": report.rows_read,
        "rejected": report.rejected,
        "warnings": report.warnings,
        "counts": report.counts.as_dict() if report.imported else None,
        "skip_invalid": skip_invalid,
    }
