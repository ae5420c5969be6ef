"""Import rows and files: every accept/reject case, one table row per case."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from tracker.domain import Pattern
from tracker.importing import (
    ALL_COLUMNS,
    REQUIRED_COLUMNS,
    EpisodeFile,
    EpisodeRow,
    ImportFileError,
    checked_rows,
    validate_row,
)

TODAY = date(2026, 11, 26)

GOOD = {
    "episode_ref": "E1",
    "patient_ref": "P1",
    "phone": "07911 123456",
    "birth_year": "1960",
    "gender": "female",
    "imd_quintile": "3",
    "site": "North",
    "referral_date": "2026-01-10",
    "discharge_date": "2026-05-20",
    "sessions": "6",
    "connected_external": "yes",
    "consent_sms": "yes",
    "pattern": "",
    "baseline_life_satisfaction": "",
    "baseline_worthwhile": "",
    "baseline_happy": "",
    "baseline_anxious": "",
    "baseline_lonely": "",
    "baseline_gp_visits": "",
}

# (case, changed columns, attribute to check, expected value)
ACCEPTED = [
    ("iso dates", {}, "discharge_date", date(2026, 5, 20)),
    ("uk date", {"discharge_date": "20/05/2026"}, "discharge_date", date(2026, 5, 20)),
    ("uk date single digits", {"referral_date": "1/2/2026"}, "referral_date", date(2026, 2, 1)),
    ("uk date with dots", {"referral_date": "01.02.2026"}, "referral_date", date(2026, 2, 1)),
    (
        "excel iso datetime",
        {"discharge_date": "2026-05-20 00:00:00"},
        "discharge_date",
        date(2026, 5, 20),
    ),
    (
        "leap day",
        {"discharge_date": "29/02/2024", "referral_date": "2024-01-01"},
        "discharge_date",
        date(2024, 2, 29),
    ),
    ("discharge today", {"discharge_date": "2026-11-26"}, "discharge_date", TODAY),
    ("same day referral", {"referral_date": "2026-05-20"}, "referral_date", date(2026, 5, 20)),
    ("phone national", {"phone": "07911 123456"}, "phone", "+447911123456"),
    ("phone international", {"phone": "+44 7911 123456"}, "phone", "+447911123456"),
    ("phone without plus", {"phone": "447911123456"}, "phone", "+447911123456"),
    ("phone brackets dash", {"phone": "(07911) 123-456"}, "phone", "+447911123456"),
    ("phone (0) form", {"phone": "+44 (0)7911 123456"}, "phone", "+447911123456"),
    ("phone spaces around", {"phone": "  07911123456 "}, "phone", "+447911123456"),
    ("no consent no phone", {"consent_sms": "no", "phone": ""}, "phone", None),
    ("bool yes", {"connected_external": "Yes"}, "connected_external", True),
    ("bool y", {"connected_external": "y"}, "connected_external", True),
    ("bool true", {"connected_external": "TRUE"}, "connected_external", True),
    ("bool 1", {"connected_external": "1"}, "connected_external", True),
    ("bool no", {"connected_external": "No"}, "connected_external", False),
    ("bool n", {"consent_sms": "n"}, "consent_sms", False),
    ("bool false", {"consent_sms": "false"}, "consent_sms", False),
    ("bool 0", {"consent_sms": "0"}, "consent_sms", False),
    ("pattern recorded", {"pattern": "Anchored"}, "pattern", Pattern.ANCHORED),
    ("pattern with space", {"pattern": "with only"}, "pattern", Pattern.WITH_ONLY),
    ("pattern blank", {"pattern": ""}, "pattern", None),
    ("sessions zero", {"sessions": "0"}, "sessions", 0),
    ("sessions spreadsheet float", {"sessions": "4.0"}, "sessions", 4),
    ("imd blank", {"imd_quintile": ""}, "imd_quintile", None),
    ("imd 1", {"imd_quintile": "1"}, "imd_quintile", 1),
    ("imd 5", {"imd_quintile": "5"}, "imd_quintile", 5),
    ("birth year blank", {"birth_year": ""}, "birth_year", None),
    ("gender alias", {"gender": "M"}, "gender", "male"),
    ("gender blank", {"gender": " "}, "gender", None),
    ("ons4 top", {"baseline_happy": "10"}, "baseline_happy", 10),
    ("ons4 bottom", {"baseline_anxious": "0"}, "baseline_anxious", 0),
    ("lonely 1", {"baseline_lonely": "1"}, "baseline_lonely", 1),
    ("lonely 5", {"baseline_lonely": "5"}, "baseline_lonely", 5),
    ("gp 99", {"baseline_gp_visits": "99"}, "baseline_gp_visits", 99),
    ("refs trimmed", {"episode_ref": "  E1  "}, "episode_ref", "E1"),
]

# (case, changed columns, column named in the error, words the message must contain)
REJECTED = [
    (
        "impossible date",
        {"discharge_date": "2026-02-30"},
        "discharge_date",
        "is not a date (use YYYY-MM-DD or DD/MM/YYYY)",
    ),
    ("impossible uk date", {"discharge_date": "31/04/2026"}, "discharge_date", "is not a date"),
    ("not a leap year", {"discharge_date": "29/02/2026"}, "discharge_date", "is not a date"),
    ("us date", {"discharge_date": "05/20/2026"}, "discharge_date", "is not a date"),
    ("two digit year", {"discharge_date": "20/05/26"}, "discharge_date", "two-digit year"),
    ("words for date", {"referral_date": "last May"}, "referral_date", "is not a date"),
    ("empty date", {"discharge_date": ""}, "discharge_date", "is empty"),
    (
        "discharge before referral",
        {"referral_date": "2026-06-01"},
        "discharge_date",
        "before the referral date 2026-06-01",
    ),
    (
        "discharge in future",
        {"discharge_date": "2026-11-27"},
        "discharge_date",
        "in the future (today is 2026-11-26)",
    ),
    ("unknown pattern", {"pattern": "fast"}, "pattern", "use rapid, anchored or with_only"),
    ("negative sessions", {"sessions": "-2"}, "sessions", "is negative"),
    ("sessions not a number", {"sessions": "six"}, "sessions", "is not a number"),
    ("sessions fraction", {"sessions": "2.5"}, "sessions", "not a whole number"),
    ("sessions empty", {"sessions": ""}, "sessions", "is empty"),
    ("imd 0", {"imd_quintile": "0"}, "imd_quintile", "1 = most deprived to 5"),
    ("imd 6", {"imd_quintile": "6"}, "imd_quintile", "not an IMD quintile"),
    ("landline", {"phone": "020 7946 0018"}, "phone", "landline"),
    ("landline national", {"phone": "0161 496 0000"}, "phone", "not a mobile number"),
    ("phone too short", {"phone": "07911 1234"}, "phone", "not a valid phone number"),
    ("phone letters", {"phone": "call me"}, "phone", "not a phone number"),
    ("phone missing with consent", {"phone": ""}, "phone", "consent_sms is yes"),
    ("birth year future", {"birth_year": "2030"}, "birth_year", "not a plausible year of birth"),
    ("birth year ancient", {"birth_year": "1890"}, "birth_year", "from 1911 to 2015"),
    ("birth year two digits", {"birth_year": "60"}, "birth_year", "plausible year"),
    (
        "ons4 above 10",
        {"baseline_life_satisfaction": "11"},
        "baseline_life_satisfaction",
        "from 0 to 10",
    ),
    ("ons4 negative", {"baseline_worthwhile": "-1"}, "baseline_worthwhile", "from 0 to 10"),
    ("lonely 0", {"baseline_lonely": "0"}, "baseline_lonely", "from 1 to 5"),
    ("lonely 6", {"baseline_lonely": "6"}, "baseline_lonely", "from 1 to 5"),
    ("gp 100", {"baseline_gp_visits": "100"}, "baseline_gp_visits", "from 0 to 99"),
    (
        "bool maybe",
        {"connected_external": "maybe"},
        "connected_external",
        "yes/no, y/n, true/false or 1/0",
    ),
    ("consent empty", {"consent_sms": ""}, "consent_sms", "write yes or no"),
    ("episode_ref empty", {"episode_ref": " "}, "episode_ref", "must have a value"),
    ("patient_ref empty", {"patient_ref": ""}, "patient_ref", "must have a value"),
    ("site empty", {"site": ""}, "site", "must have a value"),
    ("ref too long", {"episode_ref": "E" * 65}, "episode_ref", "at most 64 characters"),
]


@pytest.mark.parametrize(
    ("case", "changes", "attribute", "expected"), ACCEPTED, ids=[c[0] for c in ACCEPTED]
)
def test_accepted_rows(
    case: str, changes: dict[str, str], attribute: str, expected: object
) -> None:
    result = validate_row({**GOOD, **changes}, row=2, today=TODAY)
    assert isinstance(result, EpisodeRow), [str(e) for e in result]  # type: ignore[union-attr]
    assert getattr(result, attribute) == expected


@pytest.mark.parametrize(
    ("case", "changes", "column", "words"), REJECTED, ids=[c[0] for c in REJECTED]
)
def test_rejected_rows(case: str, changes: dict[str, str], column: str, words: str) -> None:
    result = validate_row({**GOOD, **changes}, row=14, today=TODAY)
    assert isinstance(result, list), f"{case} was accepted"
    assert [e.column for e in result] == [column]
    text = str(result[0])
    assert text.startswith(f"row 14, {column}: ")
    assert words in text


def test_error_format_matches_the_documented_example() -> None:
    [error] = validate_row({**GOOD, "discharge_date": "2026-02-30"}, row=14, today=TODAY)  # type: ignore[misc]
    assert (
        str(error)
        == "row 14, discharge_date: '2026-02-30' is not a date (use YYYY-MM-DD or DD/MM/YYYY)"
    )


def test_every_problem_on_a_row_is_reported_at_once() -> None:
    bad = {**GOOD, "sessions": "-1", "imd_quintile": "9", "pattern": "x", "phone": "020 7946 0018"}
    result = validate_row(bad, row=3, today=TODAY)
    assert isinstance(result, list)
    assert {e.column for e in result} == {"sessions", "imd_quintile", "pattern", "phone"}


def test_phone_numbers_are_masked_in_messages() -> None:
    [error] = validate_row({**GOOD, "phone": "020 7946 0018"}, row=2, today=TODAY)  # type: ignore[misc]
    assert "7946" not in str(error)
    assert "018" in str(error)


def test_without_today_the_clock_dependent_checks_are_skipped() -> None:
    row = validate_row({**GOOD, "discharge_date": "2099-01-01"}, row=2, today=None)
    assert isinstance(row, EpisodeRow)


# --- files ---------------------------------------------------------------------------------


def _write(
    path: Path,
    rows: list[dict[str, str]],
    *,
    columns: list[str] | None = None,
    encoding: str = "utf-8",
    newline: str = "\n",
    delimiter: str = ",",
) -> Path:
    columns = columns or list(ALL_COLUMNS)
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.DictWriter(
            handle,
            fieldnames=columns,
            lineterminator=newline,
            delimiter=delimiter,
            extrasaction="ignore",
        )
        writer.writeheader()
        writer.writerows(rows)
    return path


def _read(path: Path) -> list:
    with EpisodeFile.open(path) as source:
        return list(checked_rows(source, today=TODAY))


def test_bom_crlf_and_semicolons_are_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "a.csv",
        [GOOD, {**GOOD, "episode_ref": "E2"}],
        encoding="utf-8-sig",
        newline="\r\n",
        delimiter=";",
    )
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = _read(path)
    assert [r.episode.episode_ref for r in rows] == ["E1", "E2"]
    assert rows[1].episode.consent_sms is True


def test_headers_are_matched_loosely(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    header = [c.upper().replace("_", " ") for c in ALL_COLUMNS]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerow([GOOD[c] for c in ALL_COLUMNS])
    [row] = _read(path)
    assert row.episode is not None


def test_missing_required_columns_are_all_named_before_reading_rows(tmp_path: Path) -> None:
    columns = [c for c in ALL_COLUMNS if c not in ("phone", "site", "consent_sms")]
    path = _write(tmp_path / "a.csv", [GOOD], columns=columns)
    with pytest.raises(ImportFileError) as info:
        EpisodeFile.open(path)
    assert "phone, site, consent_sms" in str(info.value)


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.csv", [GOOD], columns=list(REQUIRED_COLUMNS))
    [row] = _read(path)
    assert row.episode is not None and row.episode.pattern is None


def test_unknown_columns_are_reported_not_fatal(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "a.csv",
        [{**GOOD, "nhs_number": "x", "notes": "y"}],
        columns=[*ALL_COLUMNS, "nhs_number", "notes"],
    )
    with EpisodeFile.open(path) as source:
        assert source.unknown_columns == ["nhs_number", "notes"]
        assert len(list(checked_rows(source, today=TODAY))) == 1


def test_duplicate_episode_ref_in_the_file_is_rejected_with_the_first_row(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.csv", [GOOD, {**GOOD, "episode_ref": "E2"}, GOOD])
    rows = _read(path)
    assert rows[0].episode and rows[1].episode and rows[2].episode is None
    assert str(rows[2].errors[0]) == (
        "row 4, episode_ref: 'E1' appears more than once in the file (first on row 2): "
        "keep one row per episode"
    )


def test_row_numbers_are_spreadsheet_rows(tmp_path: Path) -> None:
    # Header is row 1; a quoted cell with a line break is still one spreadsheet row.
    path = _write(
        tmp_path / "a.csv",
        [
            {**GOOD, "gender": "non-binary\nperson"},
            {**GOOD, "episode_ref": "E2"},
            {**GOOD, "episode_ref": "E3", "sessions": "-1"},
        ],
    )
    rows = _read(path)
    assert [r.row for r in rows] == [2, 3, 4]
    assert rows[2].errors[0].row == 4


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        ",".join(ALL_COLUMNS) + "\n\n" + ",".join(GOOD[c] for c in ALL_COLUMNS) + "\n,,,\n"
    )
    [row] = _read(path)
    assert row.row == 3


def test_not_utf8_says_how_to_save(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.csv", [{**GOOD, "gender": "fémale"}], encoding="cp1252")
    with pytest.raises(ImportFileError, match="CSV UTF-8"):
        _read(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ImportFileError, match="empty"):
        EpisodeFile.open(tmp_path / "empty.csv")
    with pytest.raises(ImportFileError, match="does not exist"):
        EpisodeFile.open(tmp_path / "nope.csv")


def test_short_rows_are_padded_and_then_validated(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        ",".join(ALL_COLUMNS) + "\n" + ",".join(GOOD[c] for c in REQUIRED_COLUMNS) + "\n"
    )
    [row] = _read(path)
    assert row.episode is not None
