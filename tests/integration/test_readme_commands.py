"""The README's "Trying it by hand" commands, run as written in an empty folder.

Each line of that block is run through the real CLI (without the `.venv/bin/` prefix), on the
embedded SQLite default, except `tracker serve`, which would not return: its options are parsed.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from tracker.cli import app
from tracker.clock import SystemClock
from tracker.sample import write_sample_csv

README = Path(__file__).resolve().parents[2] / "README.md"


def by_hand_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Trying it by hand", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "README's 'Trying it by hand' section lost its shell block"
    commands = []
    for line in block.group(1).splitlines():
        line = line.split("  #")[0].strip()
        if line:
            argv = shlex.split(line)
            assert argv[0].endswith("tracker"), line
            commands.append(argv[1:])
    return commands


@pytest.fixture
def clean_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith(("TRACKER_", "TWILIO_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_commands_run_as_written(clean_folder: Path) -> None:
    commands = by_hand_commands()
    assert [c[0] for c in commands] == ["init", "import", "tick", "sms", "user", "serve"]
    today = SystemClock().now().date()
    write_sample_csv(clean_folder / "episodes.csv", 30, seed=1, today=today)
    runner = CliRunner()
    for argv in commands:
        if argv[0] == "serve":
            serve = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
            serve.make_context("serve", argv[1:])
            continue
        prompt_input = "a long demo password 1\n" * 2 if argv[0] == "user" else None
        result = runner.invoke(app, argv, input=prompt_input)
        assert result.exit_code == 0, f"`tracker {' '.join(argv)}` failed:\n{result.output}"
    assert (clean_folder / "tracker.db").exists()
    assert (clean_folder / "tracker.key").exists()
