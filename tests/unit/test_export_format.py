"""Export writers and codebook, on small hand-made tables (no database)."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyreadstat
import pytest

from surveys.catalogue import build_survey
from tracker.export.codebook import (
    OUTCOME_QUESTION_KEYS,
    codebook,
    contact_columns,
    outcome_columns,
    write_codebook,
)
from tracker.export.dataset import pseudonyms, redact_phone_numbers
from tracker.export.formats import (
    neutralise_formulas,
    write_csv,
    write_parquet,
    write_spss,
    write_stata,
)
from tracker.privacy import Crypto, decode_key

from ..conftest import TEST_KEY

SURVEY = build_survey()
COLUMNS = outcome_columns(SURVEY)


def table(rows: int = 3) -> pd.DataFrame:
    data: dict[str, object] = {}
    for c in COLUMNS:
        if c.type == "string":
            data[c.name] = [f"{c.name}{i}" for i in range(rows)]
        else:
            values = pd.array(np.arange(rows, dtype="int64"), dtype="Int64")
            values[0] = pd.NA
            data[c.name] = values
    return pd.DataFrame(data)


def test_outcome_columns_follow_the_design_contract() -> None:
    names = [c.name for c in COLUMNS]
    assert names[:18] == [
        "pid", "site", "pattern", "sessions", "age", "gender", "imd_quintile", "wave",
        "responded", "days_from_due", *OUTCOME_QUESTION_KEYS,
    ]  # fmt: skip
    assert names[18] == "checkin_state"
    lonely = next(c for c in COLUMNS if c.name == "lonely")
    assert lonely.allowed_values == [1, 2, 3, 4, 5]
    assert lonely.value_labels[5] == "often or always"
    happy = next(c for c in COLUMNS if c.name == "happy")
    assert (happy.min, happy.max) == (0, 10)
    assert happy.question_text == "Overall, how happy did you feel yesterday?"
    assert all(len(c.label) <= 80 for c in COLUMNS)


def test_extended_instruments_add_columns_after_the_core_ones() -> None:
    extended = outcome_columns(build_survey([*SURVEY.instrument_ids, "ucla3"]))
    names = [c.name for c in extended]
    assert names[:19] == [c.name for c in COLUMNS]
    assert names[19:] == ["ucla_companionship", "ucla_left_out", "ucla_isolated"]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("north", "north"),
        ("a=b", "a=b"),
    ],
)
def test_formula_cells_are_quoted(cell: str, expected: str) -> None:
    assert neutralise_formulas(pd.Series([cell, None])).tolist()[0] == expected


def test_csv_keeps_negative_numbers_numeric(tmp_path: Path) -> None:
    frame = table()
    frame.loc[1, "days_from_due"] = -3
    frame.loc[2, "site"] = "=1+1"
    write_csv(frame, COLUMNS, tmp_path / "o.csv")
    with (tmp_path / "o.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[1]["days_from_due"] == "-3"
    assert rows[2]["site"] == "'=1+1"
    assert rows[0]["days_from_due"] == ""  # missing stays empty, not NaN or <NA>
    back = pd.read_csv(tmp_path / "o.csv")
    assert back["days_from_due"].tolist()[1] == -3


def test_parquet_keeps_nullable_integers_and_labels(tmp_path: Path) -> None:
    write_parquet(table(), COLUMNS, tmp_path / "o.parquet")
    schema = pq.read_schema(tmp_path / "o.parquet")
    assert schema.field("lonely").type == pa.int64()
    assert schema.field("pid").type == pa.string()
    assert schema.field("lonely").metadata[b"label"] == b"How often do you feel lonely?"
    back = pd.read_parquet(tmp_path / "o.parquet", dtype_backend="numpy_nullable")
    assert back["lonely"].isna().tolist() == [True, False, False]


def test_stata_and_spss_carry_variable_and_value_labels(tmp_path: Path) -> None:
    frame = table()
    write_stata(frame, COLUMNS, tmp_path / "o.dta")
    write_spss(frame, COLUMNS, tmp_path / "o.sav")
    for reader, path in ((pyreadstat.read_dta, "o.dta"), (pyreadstat.read_sav, "o.sav")):
        data, meta = reader(str(tmp_path / path))
        assert list(data.columns) == [c.name for c in COLUMNS]
        assert meta.variable_value_labels["wave"] == {0: "baseline", 6: "6 months", 12: "12 months"}
        assert meta.variable_value_labels["life_satisfaction"][10] == "10 completely"
        assert meta.column_names_to_labels["pid"] == "Pseudonymous patient id"
        assert np.isnan(data["lonely"][0])


def test_codebook_json_and_csv(tmp_path: Path) -> None:
    contacts = contact_columns(include_free_text=False)
    doc = codebook(
        study="alpha",
        created_at="2026-11-26T10:00:00+00:00",
        software_version="0.1.0",
        survey=SURVEY,
        outcomes=COLUMNS,
        contacts=contacts,
        row_counts={"outcomes": 3, "contacts": 0},
    )
    write_codebook(tmp_path, doc)
    back = json.loads((tmp_path / "codebook.json").read_text("utf-8"))
    assert back["study"] == "alpha" and back["pattern_rule_version"] == "2026.1"
    assert [c["name"] for c in back["tables"]["outcomes"]["columns"]] == [c.name for c in COLUMNS]
    assert back["columns"] == back["tables"]["outcomes"]["columns"]
    assert "body" not in [c["name"] for c in back["tables"]["contacts"]["columns"]]
    rows = list(csv.DictReader((tmp_path / "codebook.csv").open(encoding="utf-8")))
    assert len(rows) == len(COLUMNS) + len(contacts)
    lonely = next(r for r in rows if r["name"] == "lonely")
    assert lonely["allowed_values"] == "1|2|3|4|5"
    assert lonely["question_text"] == "How often do you feel lonely?"


def test_pseudonyms_match_crypto_and_differ_by_study() -> None:
    crypto = Crypto(decode_key(TEST_KEY))
    refs = pd.Series(["P1", "P2"])
    alpha = pseudonyms(crypto.study_key("alpha"), refs)
    assert list(alpha) == [crypto.pseudonym("alpha", "P1"), crypto.pseudonym("alpha", "P2")]
    beta = pseudonyms(crypto.study_key("beta"), refs)
    assert not set(alpha) & set(beta)
    # The key is the HKDF-derived study key, never the bare reference hash.
    assert alpha[0] != hmac.new(b"", b"P1", hashlib.sha256).hexdigest()[:16]


@pytest.mark.parametrize(
    "text",
    [
        "ring me on 07700 900123 please",
        "my number is +44 7700 900123",
        "(0161) 496 0000 anytime",
        "07700-900-123",
    ],
)
def test_phone_numbers_are_removed_from_free_text(text: str) -> None:
    out = redact_phone_numbers(pd.Series([text], dtype="string"))[0]
    assert "[number removed]" in out
    assert not any(ch.isdigit() for ch in out.replace("[number removed]", ""))


def test_short_numbers_in_free_text_survive() -> None:
    text = "8, saw GP 3 times; Samaritans 116 123"
    assert redact_phone_numbers(pd.Series([text], dtype="string"))[0] == text
