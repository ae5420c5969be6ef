import json

import numpy as np
import pandas as pd
import pytest

from analysis.dataset import AnalysisInputError, load_study, validate_outcomes
from tests.analysis.conftest import write_export


def test_export_folder_with_codebook_loads_sorted_and_typed(tmp_path, small_cohort):
    shuffled = small_cohort.sample(frac=1.0, random_state=1)
    folder = write_export(tmp_path / "export", shuffled)
    study = load_study(folder)
    out = study.outcomes
    assert study.study == "test-study" and study.pattern_rule_version == "2"
    assert len(out) == len(small_cohort)
    assert list(out["pattern"].cat.categories) == ["rapid", "anchored", "with_only"]
    first = out.groupby("pid", observed=True)["wave"].apply(list)
    assert all(w == [0, 6, 12] for w in first)
    assert out["wave"].dtype == np.int64


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_single_file(tmp_path, small_cohort, suffix):
    path = tmp_path / f"merged.{suffix}"
    small_cohort.to_csv(path, index=False) if suffix == "csv" else small_cohort.to_parquet(path)
    assert len(load_study(path).outcomes) == len(small_cohort)


def _csv_error(tmp_path, frame) -> str:
    path = tmp_path / "outcomes.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(AnalysisInputError) as info:
        load_study(path)
    return str(info.value)


def test_bad_pattern_names_row_column_value_and_allowed(tmp_path, small_cohort):
    frame = small_cohort.copy()
    frame["pattern"] = frame["pattern"].astype(str)
    frame.loc[16, "pattern"] = "fast"
    msg = _csv_error(tmp_path, frame)
    assert msg == "outcomes.csv row 17: pattern 'fast' is not one of rapid, anchored, with_only"


def test_missing_columns_are_named(tmp_path, small_cohort):
    msg = _csv_error(tmp_path, small_cohort.drop(columns=["imd_quintile", "wave"]))
    assert msg.startswith("outcomes.csv: missing columns imd_quintile, wave;")


def test_several_problems_are_all_reported(tmp_path, small_cohort):
    frame = small_cohort.astype({"age": object, "life_satisfaction": object})
    frame.loc[3, "age"] = "forty"
    answered = frame.index[frame["responded"] == 1][5]
    frame.loc[answered, "life_satisfaction"] = 11
    msg = _csv_error(tmp_path, frame)
    assert "outcomes.csv row 4: age 'forty' is not a number" in msg
    assert f"outcomes.csv row {answered + 1}: life_satisfaction 11 is outside 0 to 10" in msg


def test_decimal_on_integer_scale_and_bad_wave(tmp_path, small_cohort):
    frame = small_cohort.copy()
    frame.loc[0, "anxious"] = 6.5
    frame.loc[1, "wave"] = 3
    msg = _csv_error(tmp_path, frame)
    assert "row 1: anxious 6.5 is not a whole number" in msg
    assert "row 2: wave 3 is not one of 0, 6, 12" in msg


def test_duplicate_wave_and_inconsistent_patient_values(small_cohort):
    frame = small_cohort.copy()
    frame.loc[1, "wave"] = 0
    frame["gender"] = frame["gender"].astype(str)
    frame.loc[5, "gender"] = "male" if frame.loc[5, "gender"] != "male" else "female"
    with pytest.raises(AnalysisInputError) as info:
        validate_outcomes(frame, source="x.parquet")
    msg = str(info.value)
    assert "x.parquet row 2: patient S0000001 has wave 0 more than once" in msg
    assert "x.parquet row 6: gender" in msg and "must be the same at every wave" in msg


def test_answer_without_response_is_an_error(small_cohort):
    frame = small_cohort.copy()
    row = int(np.flatnonzero(frame["responded"].to_numpy() == 0)[0])
    frame.loc[row, "happy"] = 5
    with pytest.raises(AnalysisInputError, match=f"row {row + 1}: responded is 0 but happy"):
        validate_outcomes(frame)


def test_codebook_allowed_values_are_enforced(tmp_path, small_cohort):
    frame = small_cohort.copy()
    frame["gender"] = frame["gender"].astype(str)
    frame.loc[frame["pid"] == "S0000002", "gender"] = "unknown"
    folder = write_export(tmp_path / "exp", frame)
    with pytest.raises(
        AnalysisInputError, match="gender 'unknown' is not one of female, male, other"
    ):
        load_study(folder)


def test_codebook_as_mapping_and_spreadsheet_quoted_cells(tmp_path, small_cohort):
    folder = tmp_path / "exp"
    folder.mkdir()
    frame = small_cohort.copy()
    frame["days_from_due"] = frame["days_from_due"].map(lambda v: "" if pd.isna(v) else f"'-{v:g}")
    frame.to_csv(folder / "outcomes.csv", index=False)
    (folder / "codebook.json").write_text(json.dumps({"columns": {"pattern": {"type": "string"}}}))
    out = load_study(folder).outcomes
    assert out["days_from_due"].max() <= 0


def test_truncated_output_names_how_many_more(small_cohort):
    frame = small_cohort.copy()
    frame["imd_quintile"] = 9
    with pytest.raises(AnalysisInputError) as info:
        validate_outcomes(frame)
    assert len(info.value.problems) == 10
    assert f"and {len(frame) - 10} more problems" in str(info.value)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(AnalysisInputError, match="no such file or folder"):
        load_study(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisInputError, match="no outcomes file found"):
        load_study(tmp_path / "empty")
