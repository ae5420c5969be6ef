"""The web application factory: one FastAPI app assembled from routers of each area.

Areas add a module exposing `router` (an APIRouter) and list it in ROUTER_MODULES.
"""

from __future__ import annotations

import importlib

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from tracker import __version__
from tracker.app import App

ROUTER_MODULES = (
    "tracker.web.sms",  # POST /sms/inbound, POST /sms/status
    "tracker.web.auth",  # login/logout, sessions, CSRF
    "tracker.web.api",  # JSON API under /api/
    "tracker.web.dashboard",  # server-rendered pages under /
)


def create_app(app: App) -> FastAPI:
    """Build the ASGI app around an already-built tracker App (tests pass one with fakes)."""
    web = FastAPI(
        title="Follow-up tracker",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    web.state.tracker = app

    @web.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        try:
            with app.engine.connect() as conn:
                conn.execute(text("select 1"))
        except Exception:  # noqa: BLE001 - health checks report, they do not raise
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__})

    for name in ROUTER_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        setup = getattr(module, "install", None)
        if setup is not None:
            setup(web, app)  # routers that need middleware or exception handlers
        else:
            web.include_router(module.router)
    return web
