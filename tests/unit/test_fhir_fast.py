"""The FHIR NDJSON writer assembles lines from fixed pieces: byte for byte the per-resource
output (`fhir.questionnaire_response` + `fhir.ndjson` per row), and valid R4."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from surveys import fhir
from surveys.catalogue import build_survey
from surveys.model import QuestionKind, Survey
from tracker.export import formats
from tracker.export.dataset import StudyDataset

STATES = [
    "completed", "partial", "expired", "missed", "open", "cancelled", "failed", "sending",
    "scheduled", "baseline", "not_scheduled", "unknown-state",
]  # fmt: skip
ODD_PIDS = [
    'q"uote',
    "back\\slash",
    "tab\tnew\nline\x01",
    "é-naïve",
    "\u2028sep",
    "漢字",
    "",
    "<pid>",
]


def _survey() -> Survey:
    # Every question kind: scale, choice (two instruments), count and yes/no.
    survey = build_survey([*build_survey().instrument_ids, "ucla3"])
    assert {q.kind for q in survey.questions} == set(QuestionKind)
    return survey


def _dataset(
    survey: Survey, n: int, study: str, seed: int = 7, odd_pids: bool = True
) -> StudyDataset:
    """n varied rows: every state and wave, answers missing at random, values in range and
    a few outside (choices that do not exist, yes/no 2, negative counts), odd pids."""
    rng = np.random.default_rng(seed)
    pids = [f"{i:016x}" for i in rng.integers(0, 2**63, n)]
    for i, odd in enumerate(ODD_PIDS if odd_pids else []):
        pids[i * 3] = odd
    frame: dict[str, object] = {
        "pid": pd.array(pids, dtype="string[pyarrow]"),
        "wave": rng.choice([0, 6, 12], n),
        "checkin_state": pd.array(
            [STATES[i % len(STATES)] for i in range(n - 1)] + [None], dtype="string[pyarrow]"
        ),
    }
    for q in survey.questions:
        low, high = q.value_range()
        values = rng.integers(low, high + 1, n)
        odd = rng.random(n) < 0.03
        values[odd] = rng.choice([low - 1, high + 1, 99, -5], odd.sum())
        missing = rng.random(n) < 0.3
        frame[q.key] = pd.array(np.where(missing, 0, values), dtype="Int64")
        frame[q.key][missing] = pd.NA
    everything_missing = slice(n - 20, n)  # rows with no answers at all
    for q in survey.questions:
        frame[q.key][everything_missing] = pd.NA
    outcomes = pd.DataFrame(frame)
    opened = rng.random(n) < 0.9
    opened[: 3 * len(ODD_PIDS)] = True
    opened[n - 20 :] = True
    return StudyDataset(study, survey, outcomes, pd.DataFrame(), [], [], opened)


def _reference(data: StudyDataset) -> bytes:
    """The per-resource output, written as write_fhir did before (one dict per row)."""
    keys = [q.key for q in data.survey.questions]
    out = data.outcomes.loc[data.opened]
    lines = []
    for _, row in out.iterrows():
        answers = {k: None if pd.isna(row[k]) else int(row[k]) for k in keys}
        resource = fhir.questionnaire_response(
            data.survey,
            wave=int(row["wave"]),
            pid=str(row["pid"]),
            study=data.study,
            checkin_state=str(row["checkin_state"]),
            answers=answers,
        )
        lines.append(json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n")
    return "".join(lines).encode("utf-8")


@pytest.mark.parametrize("study", ["alpha", 'the "é" study\\<pid>'], ids=["plain", "odd"])
def test_fast_writer_matches_per_resource_output_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, study: str
) -> None:
    # Small slices so the run crosses several slice boundaries, one of them partial.
    monkeypatch.setattr(formats, "FHIR_SLICE_ROWS", 97)
    data = _dataset(_survey(), 1500, study)
    paths, count = formats.write_fhir(data, tmp_path)
    written = paths[1].read_bytes()
    expected = _reference(data)
    assert count == int(data.opened.sum()) == expected.count(b"\n")
    assert written == expected
    assert b'"item"' not in written.splitlines()[-1]  # a response with no answers


def test_fast_writer_agrees_with_the_one_by_one_writer(tmp_path: Path) -> None:
    data = _dataset(build_survey(), 600, "beta", seed=3)
    fast, slow = tmp_path / "fast.ndjson", tmp_path / "slow.ndjson"
    keys = [q.key for q in data.survey.questions]
    out = data.outcomes.loc[data.opened, ["pid", "wave", "checkin_state", *keys]]
    formats._write_responses(data, out, fast)
    formats._write_responses_one_by_one(data, out, slow)
    assert fast.read_bytes() == slow.read_bytes()


def test_non_integer_answers_fall_back_to_the_per_resource_mapping(tmp_path: Path) -> None:
    data = _dataset(build_survey(), 200, "gamma", seed=5)
    data.outcomes["lonely"] = data.outcomes["lonely"].astype("float64")
    paths, _ = formats.write_fhir(data, tmp_path)
    assert paths[1].read_bytes() == _reference_floats(data)


def _reference_floats(data: StudyDataset) -> bytes:
    keys = [q.key for q in data.survey.questions]
    out = data.outcomes.loc[data.opened]
    columns = {k: out[k].to_numpy(dtype=object, na_value=None) for k in keys}
    lines = []
    for i, (pid, wave, state) in enumerate(
        zip(out["pid"], out["wave"], out["checkin_state"], strict=True)
    ):
        answers = {k: None if pd.isna(columns[k][i]) else columns[k][i] for k in keys}
        resource = fhir.questionnaire_response(
            data.survey, wave=int(wave), pid=str(pid), study=data.study,
            checkin_state=str(state), answers=answers,
        )  # fmt: skip
        lines.append(fhir.ndjson(resource) + "\n")
    return "".join(lines).encode("utf-8")


def test_fast_written_responses_validate_as_r4(tmp_path: Path) -> None:
    # Real pids (hex; a FHIR id allows no quotes) and only values a check-in can store.
    data = _dataset(_survey(), 400, "alpha", seed=11, odd_pids=False)
    for q in data.survey.questions:
        low, high = q.value_range()
        column = data.outcomes[q.key]
        data.outcomes[q.key] = column.where((column >= low) & (column <= high))
    paths, count = formats.write_fhir(data, tmp_path)
    lines = paths[1].read_bytes().decode("utf-8").split("\n")[:-1]  # pids hold U+2028
    assert len(lines) == count
    for line in lines[:: max(1, len(lines) // 40)] + lines[-3:]:
        resource = json.loads(line)
        model = fhir.validate_r4(resource)
        assert model.status in {"completed", "stopped", "in-progress"}


def test_empty_export_writes_an_empty_file(tmp_path: Path) -> None:
    data = _dataset(build_survey(), 30, "alpha")
    data.opened[:] = False
    paths, count = formats.write_fhir(data, tmp_path)
    assert count == 0 and paths[1].read_bytes() == b""


def test_template_pieces_compose_to_questionnaire_response() -> None:
    survey = _survey()
    template = fhir.response_template(survey, wave=12, study='s"<pid>', checkin_state="partial")
    answers = {"happy": 4, "lonely": 9, "community_activity": 2}
    items = [
        fhir.response_item(survey, q, answers[q.key]) for q in survey.questions if q.key in answers
    ]
    resource = fhir.questionnaire_response(
        survey, wave=12, pid='a"b', study='s"<pid>', checkin_state="partial", answers=answers
    )
    assert template.line('a"b', items) == fhir.ndjson(resource)
    assert template.line("x", []) == fhir.ndjson(
        fhir.questionnaire_response(
            survey, wave=12, pid="x", study='s"<pid>', checkin_state="partial", answers={}
        )
    )
