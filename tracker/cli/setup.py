"""`tracker init`: create or upgrade the database and the embedded default's secret key."""

from __future__ import annotations

import typer

from tracker.cli.common import app_for, out
from tracker.config import load_settings
from tracker.db.migrate import current_revision, upgrade
from tracker.privacy import ensure_key_file


def init() -> None:
    """Create or upgrade the database (alembic) and, on the embedded default, the secret key."""
    settings = load_settings()
    if settings.secret_key is None and settings.is_embedded_sqlite:
        path = settings.default_key_path
        if ensure_key_file(path):
            out.print(
                f"Created secret key {path.resolve()} (readable only by you). Back it up: "
                "without it the stored phone numbers cannot be read."
            )
        else:
            out.print(f"Using secret key {path.resolve()}")
    with app_for() as app:
        _ = app.crypto  # fail now, with the fix, if no key can be found
        before = current_revision(app.engine)
        head = upgrade(app.engine)
        target = settings.sqlite_path.resolve() if settings.sqlite_path else "PostgreSQL"
        if before == head:
            out.print(f"Database {target} is up to date (revision {head}).")
        else:
            out.print(f"Database {target} upgraded from {before or 'empty'} to revision {head}.")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
