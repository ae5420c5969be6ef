"""Reading an episode CSV: header checks, one validated `EpisodeRow` per line, or row errors.

Streams the file (csv module, row by row) so memory stays flat whatever its size; only the
set of episode_refs seen is kept, to reject duplicates. Row numbers are the ones a spreadsheet
shows: the header is row 1, the first episode row 2.

Everything a user may read (reasons and how to fix them) is in `tracker/import_messages.py`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from tracker import import_messages as msg
from tracker.domain import Pattern
from tracker.phone import PhoneError, mask, normalise_mobile

REQUIRED_COLUMNS = (
    "episode_ref",
    "patient_ref",
    "phone",
    "birth_year",
    "gender",
    "imd_quintile",
    "site",
    "referral_date",
    "discharge_date",
    "sessions",
    "connected_external",
    "consent_sms",
)
BASELINE_COLUMNS = (
    "baseline_life_satisfaction",
    "baseline_worthwhile",
    "baseline_happy",
    "baseline_anxious",
    "baseline_lonely",
    "baseline_gp_visits",
)
OPTIONAL_COLUMNS = ("pattern", *BASELINE_COLUMNS)
ALL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

# Inclusive ranges of the baseline answers (DESIGN section 6).
BASELINE_RANGES = {
    "baseline_life_satisfaction": (0, 10),
    "baseline_worthwhile": (0, 10),
    "baseline_happy": (0, 10),
    "baseline_anxious": (0, 10),
    "baseline_lonely": (1, 5),
    "baseline_gp_visits": (0, 99),
}
MAX_SESSIONS = 500
OLDEST_AGE = 115
YOUNGEST_AGE = 11
MAX_TEXT = 64

_TRUE = frozenset({"yes", "y", "true", "t", "1"})
_FALSE = frozenset({"no", "n", "false", "f", "0"})
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]00:00(?::00)?)?")
_UK = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{2,4})")
_PATTERNS = {p.value: p for p in Pattern}


class ImportFileError(Exception):
    """The file as a whole cannot be read (missing columns, not CSV, not UTF-8)."""


@dataclass(frozen=True)
class RowError:
    """One problem on one row: where it is, what was there, and how to fix it."""

    row: int
    column: str | None
    value: str | None
    message: str

    def __str__(self) -> str:
        if self.column is None:
            return f"row {self.row}: {self.message}"
        if self.value is None or self.value == "":
            return f"row {self.row}, {self.column}: {self.message}"
        return f"row {self.row}, {self.column}: {self.value!r} {self.message}"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def parse_date(value: str) -> date:
    """ISO (2026-03-01) or UK (01/03/2026, 1.3.2026) dates; raises ValueError with the fix."""
    text = value.strip()
    iso = _ISO.fullmatch(text)
    if iso:
        y, m, d = (int(g) for g in iso.groups())
    else:
        uk = _UK.fullmatch(text)
        if not uk:
            raise ValueError(msg.NOT_A_DATE)
        d, m, y = (int(g) for g in uk.groups())
        if y < 100:
            raise ValueError(msg.TWO_DIGIT_YEAR)
    try:
        return date(y, m, d)
    except ValueError:
        raise ValueError(msg.NOT_A_DATE) from None


def parse_bool(value: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(msg.NOT_YES_NO)


def parse_int(value: str) -> int:
    """Whole numbers, also as spreadsheets write them ('3.0')."""
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise ValueError(msg.NOT_A_NUMBER) from None
    if not number.is_integer():
        raise ValueError(msg.NOT_WHOLE)
    return int(number)


def parse_pattern(value: str) -> Pattern:
    key = re.sub(r"[\s-]+", "_", value.strip().lower())
    if key not in _PATTERNS:
        raise ValueError(msg.UNKNOWN_PATTERN)
    return _PATTERNS[key]


def normalise_gender(value: str) -> str:
    text = " ".join(value.split()).lower()
    return msg.GENDER_ALIASES.get(text, text)


# --- one value per column: text (or an already typed value) -> value, or ValueError(fix) ---


def _text(value: Any, *, limit: int = MAX_TEXT) -> str:
    if _blank(value):
        raise ValueError(msg.REQUIRED)
    text = str(value).strip()
    if len(text) > limit:
        raise ValueError(msg.TOO_LONG.format(limit=limit))
    return text


def _gender(value: Any) -> str | None:
    if _blank(value):
        return None
    text = normalise_gender(str(value))
    if len(text) > 32:
        raise ValueError(msg.TOO_LONG.format(limit=32))
    return text


def _phone(value: Any) -> str | None:
    if _blank(value):
        return None  # allowed only without consent: see _cross_checks
    raw = str(value)
    try:
        return normalise_mobile(raw)
    except PhoneError as exc:
        # The message starts with the value; the row error shows it masked instead.
        raise ValueError(str(exc).replace(repr(raw) + " ", "", 1)) from None


def _date(value: Any) -> date:
    if isinstance(value, date):
        return value
    if _blank(value):
        raise ValueError(msg.REQUIRED_DATE)
    return parse_date(str(value))


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if _blank(value):
        raise ValueError(msg.REQUIRED_YES_NO)
    return parse_bool(str(value))


def _pattern(value: Any) -> Pattern | None:
    if _blank(value):
        return None
    if isinstance(value, Pattern):
        return value
    return parse_pattern(str(value))


def _integer(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return parse_int(str(value))


def _sessions(value: Any) -> int:
    if _blank(value):
        raise ValueError(msg.REQUIRED_NUMBER)
    number = _integer(value)
    if number < 0:
        raise ValueError(msg.NEGATIVE_SESSIONS)
    if number > MAX_SESSIONS:
        raise ValueError(msg.TOO_MANY_SESSIONS.format(limit=MAX_SESSIONS))
    return number


def _imd(value: Any) -> int | None:
    if _blank(value):
        return None
    number = _integer(value)
    if not 1 <= number <= 5:
        raise ValueError(msg.IMD_RANGE)
    return number


def _birth_year(value: Any) -> int | None:
    return None if _blank(value) else _integer(value)


def _baseline(low: int, high: int) -> Callable[[Any], int | None]:
    def convert(value: Any) -> int | None:
        if _blank(value):
            return None
        number = _integer(value)
        if not low <= number <= high:
            raise ValueError(msg.BASELINE_RANGE.format(low=low, high=high))
        return number

    return convert


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "episode_ref": _text,
    "patient_ref": _text,
    "phone": _phone,
    "birth_year": _birth_year,
    "gender": _gender,
    "imd_quintile": _imd,
    "site": _text,
    "referral_date": _date,
    "discharge_date": _date,
    "sessions": _sessions,
    "connected_external": _bool,
    "consent_sms": _bool,
    "pattern": _pattern,
    **{name: _baseline(*limits) for name, limits in BASELINE_RANGES.items()},
}


def convert_row(
    data: Mapping[str, Any], today: date | None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Typed values for every column, and (column, message) for each problem found."""
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for name, convert in CONVERTERS.items():
        try:
            values[name] = convert(data.get(name))
        except ValueError as exc:
            problems.append((name, str(exc)))
    if not problems:
        problems = _cross_checks(values, today)
    return values, problems


def _cross_checks(values: dict[str, Any], today: date | None) -> list[tuple[str, str]]:
    checks: list[tuple[str, str]] = []
    referral, discharge = values["referral_date"], values["discharge_date"]
    if discharge < referral:
        checks.append(
            (
                "discharge_date",
                msg.DISCHARGE_BEFORE_REFERRAL.format(referral=referral.isoformat()),
            )
        )
    if today is not None and discharge > today:
        checks.append(("discharge_date", msg.DISCHARGE_IN_FUTURE.format(today=today.isoformat())))
    birth_year = values["birth_year"]
    if today is not None and birth_year is not None:
        low, high = today.year - OLDEST_AGE, today.year - YOUNGEST_AGE
        if not low <= birth_year <= high:
            checks.append(("birth_year", msg.BIRTH_YEAR_RANGE.format(low=low, high=high)))
    if values["phone"] is None and values["consent_sms"]:
        checks.append(("phone", msg.PHONE_REQUIRED_WITH_CONSENT))
    return checks


# Problems travel inside one pydantic error, one "column<RS>message" per unit.
_UNIT, _RECORD = "\x1f", "\x1e"


class EpisodeRow(BaseModel):
    """One validated row of the import file (also what the JSON API accepts).

    Accepts text as people write it (or already typed values). Validation needs
    `context={"today": date}` (the service's local date) to reject discharges in the future and
    implausible birth years; without it those two checks are skipped. Conversion happens in one
    pass over the CONVERTERS table (`convert_row`), so every problem on a row is found at once.
    """

    model_config = ConfigDict(frozen=True)

    episode_ref: str
    patient_ref: str
    phone: str | None  # E.164; None only when consent_sms is no and no number was given
    birth_year: int | None = None
    gender: str | None = None
    imd_quintile: int | None = None
    site: str
    referral_date: date
    discharge_date: date
    sessions: int
    connected_external: bool
    pattern: Pattern | None = None
    consent_sms: bool
    baseline_life_satisfaction: int | None = None
    baseline_worthwhile: int | None = None
    baseline_happy: int | None = None
    baseline_anxious: int | None = None
    baseline_lonely: int | None = None
    baseline_gp_visits: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        values, problems = convert_row(data, (info.context or {}).get("today"))
        if problems:
            raise PydanticCustomError(
                "tracker_row", _UNIT.join(f"{col}{_RECORD}{text}" for col, text in problems)
            )
        return values


def validate_row(
    raw: Mapping[str, Any], *, row: int, today: date | None
) -> EpisodeRow | list[RowError]:
    """The validated row, or every problem on it (one RowError per column)."""
    try:
        return EpisodeRow.model_validate(raw, context={"today": today})
    except ValidationError as exc:
        return _row_errors(exc, raw, row)


def _row_errors(exc: ValidationError, raw: Mapping[str, Any], row: int) -> list[RowError]:
    errors: list[RowError] = []
    for err in exc.errors(include_url=False):
        if err["type"] == "tracker_row":
            for unit in err["msg"].split(_UNIT):
                column, message = unit.split(_RECORD, 1)
                errors.append(RowError(row, column, _shown(column, raw.get(column)), message))
            continue
        column = str(err["loc"][0]) if err["loc"] else None
        value = _shown(column, raw.get(column)) if column else None
        errors.append(RowError(row, column, value, f"is not valid ({err['msg']})"))
    return errors


def _shown(column: str | None, value: Any) -> str | None:
    """The value as it appears in a message; phone numbers only by their last digits."""
    if value is None:
        return None
    text = str(value)
    if column == "phone" and text.strip():
        digits = "".join(ch for ch in text if ch.isdigit())
        return mask(digits) if digits else text
    return text


# --- the file -----------------------------------------------------------------------------


def _normal_header(name: str) -> str:
    return re.sub(r"[\s-]+", "_", (name or "").strip().lower())


@dataclass
class EpisodeFile:
    """An open import file: checked header, then `rows()` streams (row number, raw dict)."""

    path: Path
    handle: IO[str]
    reader: Any
    columns: list[str]  # normalised names, e.g. "discharge_date"
    header: list[str]  # the header cells as the user wrote them (used for the rejects file)
    unknown_columns: list[str]
    size: int
    consumed: int = 0
    _on_progress: Callable[[int], None] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: Path) -> EpisodeFile:
        path = Path(path)
        if not path.is_file():
            raise ImportFileError(msg.FILE_NOT_FOUND.format(path=path))
        handle = path.open(encoding="utf-8-sig", newline="")
        try:
            header_line = handle.readline()
        except UnicodeDecodeError:
            handle.close()
            raise ImportFileError(msg.NOT_UTF8.format(row=1)) from None
        if not header_line.strip():
            handle.close()
            raise ImportFileError(msg.EMPTY_FILE)
        delimiter = _delimiter(header_line)
        header = next(csv.reader([header_line], delimiter=delimiter))
        columns = [_normal_header(name) for name in header]
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            handle.close()
            raise ImportFileError(
                msg.MISSING_COLUMNS.format(
                    columns=", ".join(missing), expected=", ".join(ALL_COLUMNS)
                )
            )
        doubled = sorted({c for c in columns if c and columns.count(c) > 1})
        if doubled:
            handle.close()
            raise ImportFileError(msg.DOUBLED_COLUMNS.format(columns=", ".join(doubled)))
        unknown = [c for c in columns if c not in ALL_COLUMNS and c]
        instance = cls(
            path=path,
            handle=handle,
            reader=None,
            columns=columns,
            header=[cell.strip() for cell in header],
            unknown_columns=unknown,
            size=path.stat().st_size,
            consumed=len(header_line.encode("utf-8")),
        )
        instance.reader = csv.reader(instance._lines(), delimiter=delimiter)
        return instance

    def _lines(self) -> Iterator[str]:
        for line in self.handle:
            # Characters, not bytes: close enough for a progress bar and far cheaper.
            self.consumed += len(line)
            yield line

    def rows(self) -> Iterator[tuple[int, dict[str, str], list[str]]]:
        """(spreadsheet row number, {known column: value}, original cells) per record."""
        known = [(i, c) for i, c in enumerate(self.columns) if c in ALL_COLUMNS]
        width = len(self.columns)
        row = 1
        try:
            for cells in self.reader:
                row += 1
                if not cells or all(not c.strip() for c in cells):
                    continue  # blank line (spreadsheets often leave some at the end)
                if len(cells) < width:
                    cells = cells + [""] * (width - len(cells))
                yield row, {c: cells[i] for i, c in known}, cells
        except UnicodeDecodeError:
            raise ImportFileError(msg.NOT_UTF8.format(row=row + 1)) from None
        except csv.Error as exc:
            raise ImportFileError(msg.BAD_CSV.format(row=row + 1, problem=exc)) from None

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> EpisodeFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _delimiter(header_line: str) -> str:
    """Comma by default; semicolon or tab when a spreadsheet in another locale used those."""
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


@dataclass
class CheckedRow:
    """A row as read: its number, original cells, and either the validated row or errors."""

    row: int
    cells: list[str]
    episode: EpisodeRow | None
    errors: list[RowError]


def checked_rows(source: EpisodeFile, *, today: date | None) -> Iterator[CheckedRow]:
    """Validate every row, rejecting an episode_ref already seen earlier in the file."""
    seen: dict[str, int] = {}
    for row, raw, cells in source.rows():
        result = validate_row(raw, row=row, today=today)
        if isinstance(result, list):
            yield CheckedRow(row, cells, None, result)
            continue
        first = seen.get(result.episode_ref)
        if first is not None:
            error = RowError(
                row, "episode_ref", result.episode_ref, msg.DUPLICATE_EPISODE.format(first=first)
            )
            yield CheckedRow(row, cells, None, [error])
            continue
        seen[result.episode_ref] = row
        yield CheckedRow(row, cells, result, [])


class RejectsWriter:
    """Rejected rows, written beside the input: the original cells plus a `reason` column."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.count = 0
        self._width = len(columns)
        # With a byte-order mark, as Excel's "CSV UTF-8": accented names survive a round trip.
        self._handle = path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._handle)
        self._writer.writerow([*columns, "reason"])

    def write(self, item: CheckedRow) -> None:
        reason = "; ".join(
            e.message if e.column is None else f"{e.column}: {e.message}" for e in item.errors
        )
        self._writer.writerow([*item.cells[: self._width], reason])
        self.count += 1

    def close(self) -> None:
        self._handle.close()


def rejects_path(path: Path) -> Path:
    """`episodes.csv` -> `episodes.rejects.csv`, beside the input."""
    return path.with_name(path.stem + ".rejects" + (path.suffix or ".csv"))
