"""Writers for the export tables: CSV, Parquet, Stata .dta, SPSS .sav and FHIR NDJSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from surveys import fhir
from tracker.export.codebook import Column
from tracker.export.dataset import StudyDataset

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXTENSIONS = {"csv": "csv", "parquet": "parquet", "stata": "dta", "spss": "sav", "fhir": "csv"}


def neutralise_formulas(series: pd.Series) -> pd.Series:
    """Prefix text cells that a spreadsheet would evaluate with a single quote."""
    text = series.astype("string")
    risky = text.str.startswith(FORMULA_STARTS, na=False)
    if not risky.any():
        return series
    return text.where(~risky, "'" + text)


def _string_columns(columns: list[Column]) -> list[str]:
    return [c.name for c in columns if c.type == "string"]


def write_csv(frame: pd.DataFrame, columns: list[Column], path: Path) -> None:
    """UTF-8 CSV; numbers stay numbers, only text cells are guarded against formulas."""
    safe = frame.copy(deep=False)
    for name in _string_columns(columns):
        safe[name] = neutralise_formulas(safe[name])
    options = pa_csv.WriteOptions(include_header=True, quoting_style="needed")
    with pa_csv.CSVWriter(path, _arrow_schema(columns), write_options=options) as writer:
        for start in range(0, len(safe), SLICE_ROWS):
            writer.write_table(_arrow_table(safe.iloc[start : start + SLICE_ROWS], columns))


def _arrow_type(col: Column) -> pa.DataType:
    return {"string": pa.string(), "integer": pa.int64(), "number": pa.float64()}[col.type]


def _arrow_schema(columns: list[Column]) -> pa.Schema:
    return pa.schema(
        [pa.field(c.name, _arrow_type(c), metadata={"label": c.label}) for c in columns]
    )


def _arrow_table(frame: pd.DataFrame, columns: list[Column]) -> pa.Table:
    arrays = [pa.Array.from_pandas(frame[c.name], type=_arrow_type(c)) for c in columns]
    return pa.Table.from_arrays(arrays, schema=_arrow_schema(columns))


# Rows converted and written at a time (one Parquet row group): a national export is
# converted slice by slice, never as a second full copy of the table.
SLICE_ROWS = 1 << 20


def write_parquet(frame: pd.DataFrame, columns: list[Column], path: Path) -> None:
    """Parquet with nullable integer columns and the column labels as field metadata."""
    with pq.ParquetWriter(path, _arrow_schema(columns), compression="zstd") as writer:
        for start in range(0, max(len(frame), 1), SLICE_ROWS):
            part = _arrow_table(frame.iloc[start : start + SLICE_ROWS], columns)
            writer.write_table(part, row_group_size=SLICE_ROWS)


def _for_readstat(frame: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """Stata/SPSS have no nullable ints: numbers become float64 (NaN = missing), text str."""
    data = {}
    for c in columns:
        values = frame[c.name]
        if c.type == "string":
            data[c.name] = values.astype("string").fillna("").to_numpy(dtype=object)
        else:
            data[c.name] = values.to_numpy(dtype="float64", na_value=np.nan)
    return pd.DataFrame(data)


def _value_labels(columns: list[Column]) -> dict[str, dict[int, str]]:
    return {
        c.name: {int(k): v for k, v in c.value_labels.items()}
        for c in columns
        if c.value_labels and c.type != "string"
    }


def write_stata(frame: pd.DataFrame, columns: list[Column], path: Path) -> None:
    import pyreadstat

    pyreadstat.write_dta(
        _for_readstat(frame, columns),
        str(path),
        column_labels=[c.label[:80] for c in columns],
        variable_value_labels=_value_labels(columns),
        version=15,
    )


def write_spss(frame: pd.DataFrame, columns: list[Column], path: Path) -> None:
    import pyreadstat

    measure = {
        c.name: "nominal" if c.type == "string" or c.allowed_values else "scale" for c in columns
    }
    pyreadstat.write_sav(
        _for_readstat(frame, columns),
        str(path),
        column_labels=[c.label for c in columns],
        variable_value_labels=_value_labels(columns),
        variable_measure=measure,
    )


TableWriter = Callable[[pd.DataFrame, list[Column], Path], None]
WRITERS: dict[str, TableWriter] = {
    "csv": write_csv,
    "parquet": write_parquet,
    "stata": write_stata,
    "spss": write_spss,
    "fhir": write_csv,  # the FHIR folder keeps CSV tables so it stays analysable
}


def write_fhir(data: StudyDataset, folder: Path) -> tuple[list[Path], int]:
    """questionnaire.json (a Bundle, one Questionnaire per wave) and one QuestionnaireResponse
    per patient x follow-up wave whose check-in was opened. Returns paths and response count."""
    waves = sorted({6, 12})
    q_path = folder / "questionnaire.json"
    document = fhir.bundle([fhir.questionnaire(data.survey, w) for w in waves])
    q_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")

    keys = [q.key for q in data.survey.questions]
    out = data.outcomes.loc[data.opened, ["pid", "wave", "checkin_state", *keys]]
    r_path = folder / "questionnaire_responses.ndjson"
    count = 0
    columns = {k: out[k].to_numpy(dtype=object, na_value=None) for k in keys}
    pids = out["pid"].to_numpy(dtype=object)
    wave_values = out["wave"].to_numpy(dtype="int64")
    states = out["checkin_state"].to_numpy(dtype=object)
    with r_path.open("w", encoding="utf-8") as handle:
        for i in range(len(out)):
            resource = fhir.questionnaire_response(
                data.survey,
                wave=int(wave_values[i]),
                pid=str(pids[i]),
                study=data.study,
                checkin_state=str(states[i]),
                answers={k: columns[k][i] for k in keys},
            )
            handle.write(json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
    return [q_path, r_path], count
