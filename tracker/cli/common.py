"""What every command shares: building the app from the environment, errors at the edge."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from tracker.app import App, build
from tracker.clock import FrozenClock, parse_instant
from tracker.config import ConfigError, load_settings
from tracker.domain import DomainError

console = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)


class UserError(Exception):
    """Something the user can fix; printed without a traceback, exit code 1 (or `code`)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def make_app(now: str | None = None) -> App:
    """The app for this process; `--now ISO` freezes its clock (simulations, cron replays)."""
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    clock = None
    if now is not None:
        try:
            clock = FrozenClock(parse_instant(now))
        except ValueError as exc:
            raise UserError(str(exc), 2) from exc
    return build(settings, clock=clock)


@contextmanager
def app_for(now: str | None = None) -> Iterator[App]:
    app = make_app(now)
    try:
        yield app
    finally:
        app.close()


def fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def run_guarded(app: typer.Typer) -> None:
    """Run the CLI, turning expected errors into one readable line and a non-zero exit."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        # Outside standalone mode click *returns* the code of a `typer.Exit(n)` instead of
        # exiting with it: pass it on, or `raise typer.Exit(1)` would end with status 0.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code != 0:
            raise SystemExit(code)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except (ConfigError, DomainError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(1) from None
    except UserError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(exc.code) from None
    except (OperationalError, ProgrammingError) as exc:
        text = str(exc.orig) if exc.orig is not None else str(exc)
        hint = (
            "run `tracker init` first"
            if "no such table" in text or "does not exist" in text
            else "check TRACKER_DATABASE_URL and that the database server is running"
        )
        console.print(f"[red]error:[/red] database problem: {text.splitlines()[0]} ({hint})")
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except typer.Abort:
        raise SystemExit(1) from None
    except Exception as exc:
        # Usage errors (unknown option, bad value) arrive here in non-standalone mode; Typer
        # vendors its own click, so recognise them by their interface.
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        raise
