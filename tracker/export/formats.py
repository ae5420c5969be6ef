"""Writers for the export tables: CSV, Parquet, Stata .dta, SPSS .sav and FHIR NDJSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from surveys import fhir
from tracker.export.codebook import Column
from tracker.export.dataset import FOLLOW_UP_WAVES, Contacts, StudyDataset

# A finished table, or the contacts table that is built slice by slice as it is written.
Table = pd.DataFrame | Contacts

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


def write_csv(table: Table, columns: list[Column], path: Path) -> None:
    """UTF-8 CSV; numbers stay numbers, only text cells are guarded against formulas."""
    options = pa_csv.WriteOptions(include_header=True, quoting_style="needed")
    with pa_csv.CSVWriter(path, _arrow_schema(columns), write_options=options) as writer:
        for frame in _chunks(table):
            safe = frame.copy(deep=False)
            for name in _string_columns(columns):
                safe[name] = neutralise_formulas(safe[name])
            writer.write_table(_arrow_table(safe, columns))


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


def _chunks(table: Table) -> Iterator[pd.DataFrame]:
    """The table's rows in order, at most about SLICE_ROWS at a time (at least one chunk)."""
    if isinstance(table, Contacts):
        yield from table.slices()
        return
    for start in range(0, max(len(table), 1), SLICE_ROWS):
        yield table.iloc[start : start + SLICE_ROWS]


def _whole(table: Table) -> pd.DataFrame:
    return table.frame() if isinstance(table, Contacts) else table


def write_parquet(table: Table, columns: list[Column], path: Path) -> None:
    """Parquet with nullable integer columns and the column labels as field metadata.

    Each slice is written (in C++, without the GIL) while the next one is being built."""
    with (
        pq.ParquetWriter(path, _arrow_schema(columns), compression="zstd") as writer,
        ThreadPoolExecutor(1, thread_name_prefix="parquet-write") as pool,
    ):
        pending: Future[None] | None = None
        for frame in _chunks(table):
            part = _arrow_table(frame, columns)
            if pending is not None:
                pending.result()
            pending = pool.submit(writer.write_table, part, row_group_size=SLICE_ROWS)
        if pending is not None:
            pending.result()


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


def write_stata(table: Table, columns: list[Column], path: Path) -> None:
    import pyreadstat

    pyreadstat.write_dta(
        _for_readstat(_whole(table), columns),
        str(path),
        column_labels=[c.label[:80] for c in columns],
        variable_value_labels=_value_labels(columns),
        version=15,
    )


def write_spss(table: Table, columns: list[Column], path: Path) -> None:
    import pyreadstat

    measure = {
        c.name: "nominal" if c.type == "string" or c.allowed_values else "scale" for c in columns
    }
    pyreadstat.write_sav(
        _for_readstat(_whole(table), columns),
        str(path),
        column_labels=[c.label for c in columns],
        variable_value_labels=_value_labels(columns),
        variable_measure=measure,
    )


TableWriter = Callable[[Table, list[Column], Path], None]
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
    q_path = write_questionnaires(data, folder)
    out = opened_responses(data)
    r_path = folder / "questionnaire_responses.ndjson"
    keys = [q.key for q in data.survey.questions]
    if all(pd.api.types.is_integer_dtype(out[k]) for k in keys):
        _write_responses(data, out, r_path)
    else:  # answers that are not integers: the per-resource mapping decides what they become
        _write_responses_one_by_one(data, out, r_path)
    return [q_path, r_path], len(out)


def write_questionnaires(data: StudyDataset, folder: Path) -> Path:
    """questionnaire.json: a Bundle with one Questionnaire per follow-up wave."""
    path = folder / "questionnaire.json"
    document = fhir.bundle([fhir.questionnaire(data.survey, w) for w in FOLLOW_UP_WAVES])
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return path


def opened_responses(data: StudyDataset) -> pd.DataFrame:
    """The outcome rows that become QuestionnaireResponses: follow-up waves whose check-in
    was opened, with the columns a response needs."""
    keys = [q.key for q in data.survey.questions]
    return data.outcomes.loc[data.opened, ["pid", "wave", "checkin_state", *keys]]


def _write_responses_one_by_one(data: StudyDataset, out: pd.DataFrame, path: Path) -> None:
    """One QuestionnaireResponse dict per row (the reference for `_write_responses`)."""
    keys = [q.key for q in data.survey.questions]
    columns = {k: out[k].to_numpy(dtype=object, na_value=None) for k in keys}
    pids = out["pid"].to_numpy(dtype=object)
    wave_values = out["wave"].to_numpy(dtype="int64")
    states = out["checkin_state"].to_numpy(dtype=object)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(len(out)):
            resource = fhir.questionnaire_response(
                data.survey,
                wave=int(wave_values[i]),
                pid=str(pids[i]),
                study=data.study,
                checkin_state=str(states[i]),
                answers={k: columns[k][i] for k in keys},
            )
            handle.write(fhir.ndjson(resource) + "\n")


# Responses assembled and written at a time: each slice's lines are one Arrow string buffer
# (about 1 kB a line) written straight to the file, never a Python object per line.
FHIR_SLICE_ROWS = 1 << 15
# Characters json.dumps(ensure_ascii=False) escapes inside a string; pids without them are
# written as they are (16 hex digits in a real export).
_JSON_ESCAPED = r'["\\\x00-\x1f]'


def _write_responses(data: StudyDataset, out: pd.DataFrame, path: Path) -> None:
    """The same lines as `_write_responses_one_by_one`, from fixed pieces: per (wave, check-in
    state) the text around the pid (`fhir.response_template`), per (question, value) the item
    text (`fhir.response_item`), concatenated row by row by Arrow in C++."""
    if out.empty:
        path.write_bytes(b"")
        return
    templates, which = _templates(data, out)
    head, middle, tail = (
        pa.array([getattr(t, name) for t in templates]) for name in ("head", "middle", "tail")
    )
    # The item list's brackets and the closing brace are the same in every template.
    ((items_open, items_close, end),) = {(t.items_open, t.items_close, t.end) for t in templates}
    answered = ~np.column_stack([out[q.key].isna().to_numpy() for q in data.survey.questions])
    first = np.where(answered.any(axis=1), answered.argmax(axis=1), -1)
    items = [
        _item_texts(data, k, out[q.key], first, items_open)
        for k, q in enumerate(data.survey.questions)
    ]
    closing = pa.array([end + "\n", items_close + end + "\n"])
    has_items = (first >= 0).astype("int32")
    pids = _pid_texts(out["pid"])
    with path.open("wb") as handle:
        for start in range(0, len(out), FHIR_SLICE_ROWS):
            part = slice(start, start + FHIR_SLICE_ROWS)
            rows, pid = pa.array(which[part]), pids[part]
            # No nulls anywhere: Arrow's null_handling="skip" drops all-null rows (26.0.1).
            line = pc.binary_join_element_wise(
                head.take(rows), pid, middle.take(rows), pid, tail.take(rows),
                *[texts.take(pa.array(codes[part])) for texts, codes in items],
                closing.take(pa.array(has_items[part])), "",
            )  # fmt: skip
            _write_text(handle, line)


def _item_texts(
    data: StudyDataset, k: int, column: pd.Series, first: np.ndarray, items_open: str
) -> tuple[pa.Array, np.ndarray]:
    """Question k's piece of each line and each row's index into them: the item text of its
    answer, after the opening of the item list (first answered question of the row) or after
    a comma (a later one); "" where not answered."""
    question = data.survey.questions[k]
    missing = column.isna().to_numpy()
    values = column.to_numpy(dtype="int64", na_value=0)
    distinct, codes = np.unique(values[~missing], return_inverse=True)
    texts = [fhir.response_item(data.survey, question, int(v)) for v in distinct]
    pieces = pa.array([*(items_open + t for t in texts), *("," + t for t in texts), ""])
    index = np.full(len(values), 2 * len(texts), dtype="int32")
    later = (first != k)[~missing]
    index[~missing] = codes + later * len(texts)
    return pieces, index


def _templates(
    data: StudyDataset, out: pd.DataFrame
) -> tuple[list[fhir.ResponseTemplate], np.ndarray]:
    """One template per (wave, check-in state) present, and each row's template index."""
    wave_codes, wave_values = pd.factorize(out["wave"].to_numpy(dtype="int64"))
    # A missing state is kept as a value of its own: str() of it is no known state (stopped).
    state_codes, state_values = pd.factorize(out["checkin_state"], use_na_sentinel=False)
    pairs = wave_codes.astype("int64") * len(state_values) + state_codes
    used, which = np.unique(pairs, return_inverse=True)
    templates = [
        fhir.response_template(
            data.survey,
            wave=int(wave_values[u // len(state_values)]),
            study=data.study,
            checkin_state=str(state_values[u % len(state_values)]),
        )
        for u in used
    ]
    return templates, which.astype("int32")


def _pid_texts(pids: pd.Series) -> pa.Array:
    """Each row's pid as escaped inside a JSON string (str(pid), as the one-by-one writer)."""
    if pd.api.types.is_string_dtype(pids.dtype) and not pids.hasnans and pids.dtype != object:
        texts = pa.array(pids.array, type=pa.string())
    else:
        texts = pa.array([str(p) for p in pids.to_numpy(dtype=object)], type=pa.string())
    odd = pc.match_substring_regex(texts, _JSON_ESCAPED).to_numpy(zero_copy_only=False)
    if odd.any():
        values = texts.to_numpy(zero_copy_only=False).copy()
        values[odd] = [fhir.json_text(v) for v in values[odd]]
        texts = pa.array(values, type=pa.string())
    return texts


def _write_text(handle: BinaryIO, lines: pa.StringArray) -> None:
    """Write the UTF-8 bytes of every string of `lines` back to back, straight from Arrow."""
    _, offsets, text = lines.buffers()
    ends = np.frombuffer(offsets, dtype=np.int32, count=len(lines) + 1, offset=4 * lines.offset)
    handle.write(text[int(ends[0]) : int(ends[-1])])
