"""Small simulated cohorts for the analysis tests (fast: a few hundred patients)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.simulate import simulate_cohort

CODEBOOK_COLUMNS = [
    {"name": "pid", "type": "string", "label": "Pseudonymous patient id"},
    {"name": "site", "type": "string", "label": "Site"},
    {
        "name": "pattern",
        "type": "string",
        "label": "Engagement pattern",
        "allowed_values": ["rapid", "anchored", "with_only"],
    },
    {"name": "sessions", "type": "integer", "min": 0},
    {"name": "age", "type": "integer", "min": 16, "max": 110},
    {"name": "gender", "type": "string", "allowed_values": ["female", "male", "other"]},
    {"name": "imd_quintile", "type": "integer", "allowed_values": [1, 2, 3, 4, 5]},
    {"name": "wave", "type": "integer", "allowed_values": [0, 6, 12]},
    {"name": "responded", "type": "integer", "allowed_values": [0, 1]},
    {"name": "life_satisfaction", "type": "integer", "min": 0, "max": 10},
    {
        "name": "lonely",
        "type": "integer",
        "allowed_values": [1, 2, 3, 4, 5],
        "value_labels": {"1": "never", "5": "often/always"},
    },
    {"name": "contact_id", "type": "string", "label": "(contacts table column: ignored)"},
]


@pytest.fixture(scope="session")
def small_cohort() -> pd.DataFrame:
    return simulate_cohort(400, seed=11)


def write_export(folder: Path, frame: pd.DataFrame, *, fmt: str = "csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(folder / "outcomes.csv", index=False)
    else:
        frame.to_parquet(folder / "outcomes.parquet", index=False)
    codebook = {
        "study": "test-study",
        "pattern_rule_version": "2",
        "columns": CODEBOOK_COLUMNS,
        "extra_key": {"ignored": True},
    }
    (folder / "codebook.json").write_text(json.dumps(codebook), encoding="utf-8")
    return folder
