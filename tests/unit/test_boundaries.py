"""Architecture rules that keep the core pure (DESIGN section 2) and time injectable (section 3)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Pure modules may not import these (directly or by submodule).
IO_PACKAGES = (
    "sqlalchemy",
    "alembic",
    "psycopg",
    "fastapi",
    "starlette",
    "uvicorn",
    "twilio",
    "apscheduler",
    "httpx",
    "tracker.db",
    "tracker.web",
    "tracker.sms",
    "tracker.services",
    "tracker.app",
    "tracker.cli",
)
PURE = [
    "tracker/domain.py",
    "tracker/schedule.py",
    "tracker/conversation.py",
    *[str(p.relative_to(ROOT)) for p in (ROOT / "surveys").rglob("*.py")],
]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("relative", PURE)
def test_pure_core_imports_no_io(relative: str) -> None:
    path = ROOT / relative
    if not path.exists():
        pytest.skip(f"{relative} not written yet")
    bad = {
        name
        for name in imported_modules(path)
        if any(name == pkg or name.startswith(pkg + ".") for pkg in IO_PACKAGES)
    }
    assert not bad, f"{relative} is pure but imports {sorted(bad)}"


def test_analysis_never_imports_tracker() -> None:
    for path in (ROOT / "analysis").rglob("*.py"):
        bad = {n for n in imported_modules(path) if n == "tracker" or n.startswith("tracker.")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_surveys_never_imports_tracker() -> None:
    for path in (ROOT / "surveys").rglob("*.py"):
        bad = {n for n in imported_modules(path) if n == "tracker" or n.startswith("tracker.")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_only_the_twilio_adapter_imports_twilio() -> None:
    for path in (ROOT / "tracker").rglob("*.py"):
        if path.relative_to(ROOT).as_posix() == "tracker/sms/twilio.py":
            continue
        bad = {n for n in imported_modules(path) if n == "twilio" or n.startswith("twilio.")}
        assert not bad, f"{path.relative_to(ROOT)} imports twilio; only tracker/sms/twilio.py may"


WALL_CLOCK = re.compile(r"datetime\.(now|utcnow|today)\(|date\.today\(|time\.time\(\)")


def test_nothing_reads_the_wall_clock_outside_clock_py() -> None:
    offenders = []
    for package in ("tracker", "surveys", "analysis"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "clock.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if WALL_CLOCK.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "use the injected Clock instead:\n" + "\n".join(offenders)


def test_no_pickled_scheduler_state() -> None:
    for path in (ROOT / "tracker").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "SQLAlchemyJobStore" not in text and "import pickle" not in text, path
