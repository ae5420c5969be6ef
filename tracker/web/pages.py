"""Shared page rendering: one Jinja2 environment, the signed-in principal and CSRF token
added to every template, and the <5 suppression filter used on aggregate pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

# Counts under this are shown as "<5" to researchers (statistical disclosure control).
SMALL_COUNT = 5

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def suppress(value: int | None, active: bool = True) -> str:
    """'<5' for 1-4 when suppression is active; zero stays 0 (nothing to disclose)."""
    if value is None:
        return "-"
    if active and 0 < value < SMALL_COUNT:
        return f"<{SMALL_COUNT}"
    return f"{value:,}"


templates.env.filters["suppress"] = suppress


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    from tracker.web.auth import csrf_token, principal_from_request

    ctx: dict[str, Any] = {
        "user": principal_from_request(request),
        "csrf_token": csrf_token(request),
        "path": request.url.path,
    }
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
