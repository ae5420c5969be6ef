"""Find, load and assemble instruments from YAML files.

Packaged instruments live in ``surveys/instruments/<id>.yaml``. A deployment adds its own by
passing extra folders (``extra_dirs``); an id may be defined only once, so a local file can
never silently replace official wording. Reading these files is the package's only I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from surveys.model import Instrument, Survey

PACKAGED_DIR = Path(__file__).with_name("instruments")

CORE_SURVEY: tuple[str, ...] = ("ons4", "loneliness_direct", "gp_visits", "community", "recontact")
"""Default instrument ids, in asking order (DESIGN section 5)."""

EXTENDED_INSTRUMENTS: tuple[str, ...] = ("ucla3",)
"""Instruments a deployment may switch on in addition to the core set."""


class InstrumentError(ValueError):
    """An instrument id is unknown, defined twice, or its file is not a valid instrument."""


def _search_dirs(extra_dirs: Iterable[Path | str]) -> list[Path]:
    return [PACKAGED_DIR, *(Path(d) for d in extra_dirs)]


def _files_by_id(extra_dirs: Iterable[Path | str]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in _search_dirs(extra_dirs):
        if not folder.is_dir():
            raise InstrumentError(f"instrument folder {folder} does not exist")
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            if path.stem in found and found[path.stem] != path:
                raise InstrumentError(
                    f"instrument {path.stem!r} is defined in both {found[path.stem]} and {path}; "
                    "give the local one a new id (file name)"
                )
            found[path.stem] = path
    return found


def available_instruments(extra_dirs: Sequence[Path | str] = ()) -> list[str]:
    """Ids of every instrument found (packaged plus ``extra_dirs``), sorted."""
    return sorted(_files_by_id(extra_dirs))


@lru_cache(maxsize=64)
def _load_file(path: Path, mtime_ns: int) -> Instrument:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InstrumentError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise InstrumentError(f"{path}: expected a mapping with id, title, questions")
    try:
        instrument = Instrument.model_validate(data)
    except ValidationError as exc:
        raise InstrumentError(f"{path}: {exc}") from exc
    if instrument.id != path.stem:
        raise InstrumentError(f"{path}: id {instrument.id!r} must match the file name")
    return instrument


def load_instrument(instrument_id: str, extra_dirs: Sequence[Path | str] = ()) -> Instrument:
    """Load and validate one instrument by id (InstrumentError if unknown or invalid)."""
    files = _files_by_id(extra_dirs)
    path = files.get(instrument_id)
    if path is None:
        raise InstrumentError(
            f"unknown instrument {instrument_id!r}; available: {', '.join(sorted(files))}"
        )
    return _load_file(path, path.stat().st_mtime_ns)


def build_survey(ids: Sequence[str] = CORE_SURVEY, extra_dirs: Sequence[Path | str] = ()) -> Survey:
    """Assemble a Survey from instrument ids in the given order."""
    if not ids:
        raise InstrumentError("a survey needs at least one instrument id")
    if len(set(ids)) != len(ids):
        raise InstrumentError(f"instrument ids repeat in {list(ids)}")
    try:
        return Survey(instruments=[load_instrument(i, extra_dirs) for i in ids])
    except ValidationError as exc:
        raise InstrumentError(str(exc)) from exc
