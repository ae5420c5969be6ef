"""The `tracker` command: thin Typer commands over service functions.

Each area registers its commands from its own module (setup, enrolment, sms, scheduler,
research, admin, demo) so that the commands stay short and easy to find.
"""

from __future__ import annotations

import importlib

import typer

from tracker.cli.common import run_guarded

app = typer.Typer(
    name="tracker",
    help="Follow-up tracker: SMS check-ins 6 and 12 months after social prescribing discharge.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that define `register(app)`; a missing optional module is skipped.
COMMAND_MODULES = (
    "tracker.cli.setup",
    "tracker.cli.enrolment",
    "tracker.cli.sms",
    "tracker.cli.scheduler",
    "tracker.cli.research",
    "tracker.cli.admin",
    "tracker.cli.web",
    "tracker.cli.demo",
)


@app.callback()
def _root() -> None:
    """Follow-up tracker: SMS check-ins 6 and 12 months after social prescribing discharge."""


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise
        continue
    _module.register(app)


def main() -> None:
    run_guarded(app)
