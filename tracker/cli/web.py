"""`tracker serve`: the web app (webhooks, API, dashboard) under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from tracker.cli.common import UserError


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[
        int, typer.Option(help="Worker processes (PostgreSQL only; SQLite needs 1).", min=1)
    ] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Run the web app: SMS webhooks, JSON API and dashboard."""
    import uvicorn

    from tracker.config import load_settings

    settings = load_settings()  # fail here, with a readable message, not inside a worker
    if workers > 1 and settings.is_embedded_sqlite:
        raise UserError("SQLite serves one worker; use --workers 1 or PostgreSQL")
    uvicorn.run(
        "tracker.web.asgi:create",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,  # access lines carry query strings; keep logs free of identifiers
        proxy_headers=True,
        server_header=False,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
