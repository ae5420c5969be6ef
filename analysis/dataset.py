"""Load and validate a long-format outcomes dataset (DESIGN section 6).

This and writing the report are the only I/O in `analysis`. PATH is an export folder
(`outcomes.parquet|csv|dta|sav`, optionally `codebook.json`) or a single long-format file.
Validation is vectorised and names the file, row, column, value and what is allowed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import messages

PATTERNS = ("rapid", "anchored", "with_only")
WAVES = (0, 6, 12)
ONS4 = ("life_satisfaction", "worthwhile", "happy", "anxious")
OUTCOME_FILES = ("outcomes.parquet", "outcomes.csv", "outcomes.dta", "outcomes.sav")
MAX_PROBLEMS = 10


class AnalysisInputError(ValueError):
    """The input dataset cannot be analysed; the message says what is wrong and where."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


@dataclass(frozen=True)
class ColumnRule:
    kind: str  # "id" | "text" | "number"
    required: bool = True
    allowed: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    whole: bool = False
    nullable: bool = False  # may be empty (answers are empty when nobody replied)
    per_patient: bool = False  # same value at every wave of a patient


RULES: dict[str, ColumnRule] = {
    "pid": ColumnRule("id"),
    "site": ColumnRule("text", per_patient=True),
    "pattern": ColumnRule("text", allowed=PATTERNS, per_patient=True),
    # Covariates may be unknown for some patients: they are described, but left out of the
    # models (analysis.run.analyse says how many).
    "sessions": ColumnRule("number", low=0, high=1000, whole=True, per_patient=True, nullable=True),
    "age": ColumnRule("number", low=0, high=120, per_patient=True, nullable=True),
    "gender": ColumnRule("text", per_patient=True, nullable=True),
    "imd_quintile": ColumnRule("number", allowed=(1, 2, 3, 4, 5), per_patient=True, nullable=True),
    "wave": ColumnRule("number", allowed=WAVES),
    "responded": ColumnRule("number", allowed=(0, 1)),
    "days_from_due": ColumnRule("number", required=False, nullable=True),
    **{name: ColumnRule("number", low=0, high=10, whole=True, nullable=True) for name in ONS4},
    "lonely": ColumnRule("number", allowed=(1, 2, 3, 4, 5), nullable=True),
    "gp_visits": ColumnRule("number", low=0, high=1000, whole=True, nullable=True),
    "community_activity": ColumnRule("number", required=False, allowed=(0, 1), nullable=True),
    "recontact_requested": ColumnRule("number", required=False, allowed=(0, 1), nullable=True),
}
ANSWER_COLUMNS = (*ONS4, "lonely", "gp_visits", "community_activity", "recontact_requested")
CATEGORICAL = ("site", "pattern", "gender")


@dataclass(frozen=True)
class StudyData:
    """A validated outcomes table, sorted by patient then wave, with its provenance."""

    outcomes: pd.DataFrame
    source: str
    codebook: dict[str, Any] | None = None
    study: str | None = None
    pattern_rule_version: str | None = None
    notes: list[str] = field(default_factory=list)


def load_study(path: str | Path) -> StudyData:
    """Read and validate an export folder or a single long-format CSV/Parquet/Stata/SPSS file."""
    path = Path(path)
    if not path.exists():
        raise AnalysisInputError(messages.PATH_NOT_FOUND.format(path=path))
    codebook = None
    if path.is_dir():
        folder = path
        candidates = [folder / name for name in OUTCOME_FILES if (folder / name).exists()]
        if not candidates:
            raise AnalysisInputError(messages.NO_OUTCOMES_FILE.format(path=path))
        data_path = candidates[0]
        cb = folder / "codebook.json"
        if cb.exists():
            try:
                codebook = json.loads(cb.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise AnalysisInputError(
                    messages.UNREADABLE_CODEBOOK.format(path=cb, reason=exc)
                ) from exc
    else:
        data_path = path
    frame = read_table(data_path)
    outcomes = validate_outcomes(frame, source=data_path.name, codebook=codebook)
    return StudyData(
        outcomes=outcomes,
        source=str(data_path),
        codebook=codebook,
        study=(codebook or {}).get("study") if isinstance(codebook, dict) else None,
        pattern_rule_version=(
            str(codebook.get("pattern_rule_version"))
            if isinstance(codebook, dict) and codebook.get("pattern_rule_version") is not None
            else None
        ),
    )


def read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            # Everything as text first, so bad cells can be reported by row, not as a crash.
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".dta":
            return pd.read_stata(path, convert_categoricals=False)
        if suffix == ".sav":
            import pyreadstat

            frame, _ = pyreadstat.read_sav(str(path), apply_value_formats=False)
            return frame
    except (OSError, ValueError) as exc:
        raise AnalysisInputError(messages.UNREADABLE_FILE.format(path=path, reason=exc)) from exc
    raise AnalysisInputError(messages.UNSUPPORTED_FILE.format(path=path, suffix=suffix))


def _codebook_columns(codebook: Any) -> dict[str, dict[str, Any]]:
    """Column specs from codebook.json, accepting a list of dicts or a name -> spec mapping."""
    if not isinstance(codebook, dict):
        return {}
    cols = codebook.get("columns")
    if cols is None and isinstance(codebook.get("outcomes"), dict):
        cols = codebook["outcomes"].get("columns")
    out: dict[str, dict[str, Any]] = {}
    if isinstance(cols, list):
        for spec in cols:
            if isinstance(spec, dict) and "name" in spec:
                out.setdefault(str(spec["name"]), spec)
    elif isinstance(cols, dict):
        for name, spec in cols.items():
            if isinstance(spec, dict):
                out[str(name)] = spec
    return out


def _rule_with_codebook(name: str, rule: ColumnRule, spec: dict[str, Any] | None) -> ColumnRule:
    if not spec or rule.kind == "id":
        return rule
    allowed = spec.get("allowed_values")
    if isinstance(allowed, dict):
        allowed = list(allowed)
    if allowed and rule.allowed is None and rule.kind == "text":
        return ColumnRule(**{**rule.__dict__, "allowed": tuple(str(a) for a in allowed)})
    return rule


class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[tuple[int, str]] = []
        self.count = 0

    def add_rows(self, rows: np.ndarray, make) -> None:
        self.count += len(rows)
        for r in rows[:MAX_PROBLEMS]:
            self.items.append((int(r), make(int(r))))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        self.items.sort(key=lambda t: t[0])
        shown = [m for _, m in self.items[:MAX_PROBLEMS]]
        extra = self.count - len(shown)
        text = "\n".join(shown)
        if extra > 0:
            text += "\n" + messages.MORE_PROBLEMS.format(
                count=extra, plural="s" if extra > 1 else ""
            )
        raise AnalysisInputError(text, shown)


def _fmt_allowed(allowed: tuple[Any, ...]) -> str:
    return ", ".join(str(a) for a in allowed)


def _as_number(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Numeric values and a mask of cells that were present but not numbers."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        raw = raw.astype(float)
    if pd.api.types.is_numeric_dtype(raw.dtype):
        vals = raw.to_numpy(dtype=float, na_value=np.nan)
        return vals, np.zeros(len(raw), dtype=bool)
    text = raw.astype("string").str.strip()
    # Spreadsheet-safe exports may prefix cells with a quote; undo it before parsing.
    text = text.str.replace(r"^'(?=[-+=@])", "", regex=True)
    present = text.notna() & (text != "")
    vals = pd.to_numeric(text.where(present), errors="coerce").to_numpy(
        dtype=float, na_value=np.nan
    )
    bad = present.to_numpy(dtype=bool, na_value=False) & np.isnan(vals)
    return vals, bad


def validate_outcomes(
    frame: pd.DataFrame, *, source: str = "outcomes", codebook: Any = None
) -> pd.DataFrame:
    """Check columns and values; return a typed copy sorted by pid and wave.

    Raises AnalysisInputError naming each problem (up to ten) by data row (1 = first row after
    the header), column, value and what is allowed.
    """
    frame = frame.reset_index(drop=True)
    missing = [name for name, rule in RULES.items() if rule.required and name not in frame.columns]
    if missing:
        required = ", ".join(n for n, r in RULES.items() if r.required)
        raise AnalysisInputError(
            messages.MISSING_COLUMNS.format(
                source=source,
                plural="s" if len(missing) > 1 else "",
                names=", ".join(missing),
                required=required,
            )
        )
    if len(frame) == 0:
        raise AnalysisInputError(messages.EMPTY.format(source=source))
    specs = _codebook_columns(codebook)
    problems = _Problems(source)
    out: dict[str, Any] = {}
    n = len(frame)
    for name, base_rule in RULES.items():
        if name not in frame.columns:
            if not base_rule.required:
                out[name] = np.full(n, np.nan)
            continue
        rule = _rule_with_codebook(name, base_rule, specs.get(name))
        raw = frame[name]
        if rule.kind in ("id", "text"):
            codes, uniques = _text_codes(raw, clean=name != "pid")
            empty = codes < 0
            problems.add_rows(
                np.flatnonzero(empty) if not rule.nullable else np.array([], dtype=np.int64),
                lambda r, name=name: messages.MISSING_VALUE.format(
                    source=source, row=r + 1, column=name
                ),
            )
            if rule.allowed is not None:
                ok_u = np.isin(uniques, np.asarray(rule.allowed, dtype=object))
                rows = np.flatnonzero(~empty & ~ok_u[np.maximum(codes, 0)])
                problems.add_rows(
                    rows,
                    lambda r, name=name, codes=codes, uniques=uniques, rule=rule: (
                        messages.NOT_ALLOWED.format(
                            source=source,
                            row=r + 1,
                            column=name,
                            value=uniques[codes[r]],
                            allowed=_fmt_allowed(rule.allowed),
                        )
                    ),
                )
            out[name] = (codes, uniques)
            continue
        vals, bad = _as_number(raw)
        problems.add_rows(
            np.flatnonzero(bad),
            lambda r, name=name, raw=raw: messages.NOT_A_NUMBER.format(
                source=source, row=r + 1, column=name, value=str(raw.iloc[r])
            ),
        )
        isnan = np.isnan(vals) & ~bad
        if not rule.nullable:
            problems.add_rows(
                np.flatnonzero(isnan),
                lambda r, name=name: messages.MISSING_VALUE.format(
                    source=source, row=r + 1, column=name
                ),
            )
        finite = ~np.isnan(vals)
        if rule.allowed is not None:
            ok = np.isin(vals, np.asarray(rule.allowed, dtype=float))
            problems.add_rows(
                np.flatnonzero(finite & ~ok),
                lambda r, name=name, vals=vals, rule=rule: messages.NOT_ALLOWED.format(
                    source=source,
                    row=r + 1,
                    column=name,
                    value=_num(vals[r]),
                    allowed=_fmt_allowed(rule.allowed),
                ),
            )
        low, high = rule.low, rule.high
        spec = specs.get(name) or {}
        if isinstance(spec.get("min"), int | float) and low is None:
            low = float(spec["min"])
        if isinstance(spec.get("max"), int | float) and high is None:
            high = float(spec["max"])
        if low is not None or high is not None:
            lo = -np.inf if low is None else low
            hi = np.inf if high is None else high
            outside = finite & ((vals < lo) | (vals > hi))
            problems.add_rows(
                np.flatnonzero(outside),
                lambda r, name=name, vals=vals, lo=lo, hi=hi: messages.OUT_OF_RANGE.format(
                    source=source,
                    row=r + 1,
                    column=name,
                    value=_num(vals[r]),
                    low=_num(lo),
                    high=_num(hi),
                ),
            )
        if rule.whole:
            frac = finite & (vals != np.round(vals))
            problems.add_rows(
                np.flatnonzero(frac),
                lambda r, name=name, vals=vals: messages.NOT_WHOLE.format(
                    source=source, row=r + 1, column=name, value=_num(vals[r])
                ),
            )
        out[name] = vals
    problems.raise_if_any()

    responded = out["responded"] == 1
    for name in ANSWER_COLUMNS:
        vals = out[name]
        rows = np.flatnonzero(~responded & ~np.isnan(vals))
        problems.add_rows(
            rows,
            lambda r, name=name, vals=vals: messages.ANSWER_WITHOUT_RESPONSE.format(
                source=source, row=r + 1, column=name, value=_num(vals[r])
            ),
        )

    pid_codes, pid_uniques = out["pid"]
    wave_idx = np.searchsorted(np.asarray(WAVES, dtype=float), out["wave"])
    key = pid_codes.astype(np.int64) * 3 + wave_idx
    order = np.argsort(key, kind="stable")
    dup = np.zeros(n, dtype=bool)
    dup[order[1:]] = key[order[1:]] == key[order[:-1]]
    problems.add_rows(
        np.flatnonzero(dup),
        lambda r: messages.DUPLICATE_WAVE.format(
            source=source, row=r + 1, pid=pid_uniques[pid_codes[r]], wave=_num(out["wave"][r])
        ),
    )
    # Per-patient columns: compare each row with the patient's first row.
    first = np.full(len(pid_uniques), n, dtype=np.int64)
    np.minimum.at(first, pid_codes, np.arange(n))
    ref = first[pid_codes]
    for name, rule in RULES.items():
        if not rule.per_patient:
            continue
        v = out[name]
        arr = v[0] if isinstance(v, tuple) else v
        diff = np.flatnonzero((arr != arr[ref]) & ~(_isnan(arr) & _isnan(arr[ref])))
        problems.add_rows(
            diff,
            lambda r, name=name, v=v: messages.NOT_CONSTANT.format(
                source=source,
                row=r + 1,
                column=name,
                value=_show_value(v, r),
                pid=pid_uniques[pid_codes[r]],
            ),
        )
    problems.raise_if_any()

    columns: dict[str, Any] = {}
    for name in RULES:
        v = out[name]
        if isinstance(v, tuple):
            codes, uniques = v
            if name == "pid":
                columns[name] = pd.Categorical.from_codes(codes, categories=pd.Index(uniques))
            else:
                columns[name] = _sorted_categorical(name, codes, uniques)
        elif name in ("wave", "responded") or (name == "imd_quintile" and not np.isnan(v).any()):
            columns[name] = v.astype(np.int64)
        else:
            columns[name] = v
    result = pd.DataFrame(columns).iloc[order].reset_index(drop=True)
    return result


def _text_codes(raw: pd.Series, *, clean: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (-1 = empty) and cleaned distinct values; string work on distinct values only.

    Pseudonymous ids are opaque and there are a million of them: they are only checked for
    emptiness, not trimmed.
    """
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    if not clean:
        u = np.asarray(uniques, dtype=object)
        if len(u) and not isinstance(u[0], str):
            u = u.astype(str)
        empty = np.flatnonzero(u == "")
        codes = codes.astype(np.int64)
        if len(empty):
            codes = np.where(codes == empty[0], -1, codes)
        return codes, u
    cleaned = pd.Series(np.asarray(uniques, dtype=object)).astype(str).str.strip()
    # Spreadsheet-safe exports may prefix cells with a quote; undo it.
    cleaned = cleaned.str.replace(r"^'(?=[-+=@])", "", regex=True)
    u_codes, u_uniques = pd.factorize(cleaned)
    u_uniques = np.asarray(u_uniques, dtype=object)
    mapped = np.where(codes >= 0, u_codes[np.maximum(codes, 0)], -1)
    is_empty = np.flatnonzero(u_uniques == "")
    if len(is_empty):
        mapped = np.where(mapped == is_empty[0], -1, mapped)
    return mapped.astype(np.int64), u_uniques


def _sorted_categorical(name: str, codes: np.ndarray, uniques: np.ndarray) -> pd.Categorical:
    present = np.unique(codes)
    levels = _sorted_levels(name, pd.Series(uniques[present[present >= 0]]))
    remap = pd.Index(levels).get_indexer(uniques)
    return pd.Categorical.from_codes(np.where(codes >= 0, remap[codes], -1), categories=levels)


def _isnan(a: np.ndarray) -> np.ndarray:
    return np.isnan(a) if a.dtype.kind == "f" else np.zeros(len(a), dtype=bool)


def _show_value(v: Any, r: int) -> Any:
    if isinstance(v, tuple):
        return v[1][v[0][r]]
    return _num(v[r])


def _sorted_levels(name: str, values: pd.Series) -> list[str]:
    present = set(pd.unique(values))
    if name == "pattern":
        return [p for p in PATTERNS if p in present]
    return sorted(present)


def _num(x: float) -> Any:
    if np.isfinite(x) and float(x).is_integer():
        return int(x)
    return float(x)


COVARIATES = ("age", "gender", "imd_quintile", "sessions")


def complete_covariates(outcomes: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows of patients whose covariates are all known, and how many patients were left out."""
    known = np.ones(len(outcomes), dtype=bool)
    for col in COVARIATES:
        known &= outcomes[col].notna().to_numpy()
    if known.all():
        return outcomes, 0
    left_out = int(outcomes.loc[~known, "pid"].nunique())
    kept = outcomes[known].reset_index(drop=True)
    kept["imd_quintile"] = kept["imd_quintile"].astype(np.int64)
    kept["pid"] = kept["pid"].cat.remove_unused_categories()
    for col in ("gender", "pattern", "site"):
        kept[col] = kept[col].cat.remove_unused_categories()
    return kept, left_out
