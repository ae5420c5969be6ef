"""The documentation keeps up with the code.

- every CLI command has help text and is documented in README.md or docs/;
- README opens with the two commands a new user runs, and both are Makefile targets;
- relative links in README, docs/ and deploy/ point at files that exist;
- the tests the hazard log cites as evidence exist.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main

from tracker.cli import app as cli_app

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").rglob("*.md"))
DEPLOY_DOCS = sorted((ROOT / "deploy").glob("*.md"))


def cli_commands() -> Iterator[tuple[str, object]]:
    """('tracker user add', click command) for every leaf command."""

    def walk(command: object, path: list[str]) -> Iterator[tuple[str, object]]:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in sorted(subcommands.items()):
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), command

    yield from walk(typer.main.get_command(cli_app), ["tracker"])


COMMANDS = dict(cli_commands())


def documentation() -> str:
    texts = [README.read_text(encoding="utf-8")]
    texts += [path.read_text(encoding="utf-8") for path in DOCS]
    return "\n".join(texts)


def test_the_cli_has_the_documented_core_commands() -> None:
    for name in ("tracker init", "tracker import", "tracker export", "tracker demo"):
        assert name in COMMANDS


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name: str) -> None:
    command = COMMANDS[name]
    text = (getattr(command, "help", None) or "").strip()
    assert len(text) >= 15, f"`{name}` needs a help text (a docstring on its function)"
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") == "option" and not param.hidden:
            assert (param.help or "").strip(), f"`{name}` option {param.opts} has no help"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_documented(name: str) -> None:
    assert re.search(rf"`{re.escape(name)}[ `]", documentation()), (
        f"`{name}` is not documented in README.md or docs/"
    )


def readme_first_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None, "README.md should open with a shell block"
    assert block.start() < 400, "the two commands should be at the top of README.md"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_make_demo_and_make_test() -> None:
    assert readme_first_commands() == ["make demo", "make test"]


def test_readme_commands_are_makefile_targets() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for command in readme_first_commands():
        target = command.split()[1]
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no `{target}` target"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target", ["demo", "test"])
def test_readme_commands_expand_as_written(target: str) -> None:
    """`make -n` prints what the target would run, without running it."""
    done = subprocess.run(
        ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    if target == "demo":
        assert "tracker demo" in done.stdout
    else:
        assert "pytest" in done.stdout


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize(
    "page", [README, *DOCS, *DEPLOY_DOCS], ids=lambda p: str(p.relative_to(ROOT))
)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto
        if not (page.parent / target).resolve().exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_hazard_log_evidence_exists() -> None:
    text = (ROOT / "docs" / "clinical-safety" / "hazard-log.md").read_text(encoding="utf-8")
    cited = re.findall(r"`(tests/[\w/*.]+\.py)((?:::\w+)?)`", text)
    assert cited, "the hazard log should cite tests as evidence"
    for path, function in cited:
        files = sorted(ROOT.glob(path))
        assert files, f"hazard log cites {path}, which does not exist"
        if function:
            name = function.removeprefix("::")
            assert any(f"def {name}(" in f.read_text(encoding="utf-8") for f in files), (
                f"hazard log cites {path}{function}, which does not exist"
            )
    # Continuation lines cite more tests of the same file as `::name`.
    for match in re.finditer(r"`(tests/[\w/]+\.py)::\w+`((?:,?\s*`::\w+`)+)", text):
        source = (ROOT / match.group(1)).read_text(encoding="utf-8")
        for name in re.findall(r"`::(\w+)`", match.group(2)):
            assert f"def {name}(" in source, f"hazard log cites {match.group(1)}::{name}"
