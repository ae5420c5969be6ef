"""ASGI entry point for uvicorn/gunicorn: `uvicorn --factory tracker.web.asgi:create`."""

from __future__ import annotations

import logging
import sys

from fastapi import FastAPI

from tracker.app import build
from tracker.config import load_settings
from tracker.web.app import create_app


def create() -> FastAPI:
    """Build the tracker App from the environment and wrap it in the web app."""
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    app = build(settings)
    _ = app.crypto  # a missing key fails at start-up, not on the first text
    return create_app(app)  # connections close with the worker process
