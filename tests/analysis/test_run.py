import json
import re

import pandas as pd
import pytest

from analysis.dataset import AnalysisInputError
from analysis.run import analyse
from tests.analysis.conftest import write_export

REQUIRED_MODELS = {
    "life_satisfaction_mixed",
    "worthwhile_mixed",
    "happy_mixed",
    "anxious_mixed",
    "lonely_gee",
    "gp_visits_gee_poisson",
    "gp_visits_gee_negbin",
    "response_logit",
}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory, small_cohort):
    folder = write_export(tmp_path_factory.mktemp("export"), small_cohort, fmt="parquet")
    out = tmp_path_factory.mktemp("report")
    return analyse(folder, out), out


def test_writes_report_results_and_tables(analysed):
    result, out = analysed
    names = {p.name for p in out.iterdir()}
    assert {
        "report.html",
        "results.json",
        "response_rates.csv",
        "outcome_means.csv",
        "response_funnel.csv",
        "contrasts.csv",
        "coefficients.csv",
    } == names
    assert result.n_patients == 400


def test_results_json_has_the_design_shape(analysed):
    _, out = analysed
    payload = json.loads((out / "results.json").read_text())
    assert REQUIRED_MODELS <= set(payload["models"])
    assert {
        "life_satisfaction_mixed_site",
        "life_satisfaction_ipw",
        "life_satisfaction_mice",
        "sessions_dose",
    } <= set(payload["models"])
    for name, model in payload["models"].items():
        assert {"formula", "n_obs", "n_groups", "converged", "params"} <= set(model), name
        assert model["converged"] is True
        for term, p in model["params"].items():
            assert {"estimate", "se", "ci_low", "ci_high", "p"} <= set(p), (name, term)
            assert p["ci_low"] < p["estimate"] < p["ci_high"]
    primary = payload["models"]["life_satisfaction_mixed"]
    assert (
        "C(pattern, Treatment('rapid'))[T.anchored]:C(wave, Treatment(0))[T.12]"
        in primary["params"]
    )
    assert primary["n_groups"] == 400
    kinds = {(c["model"], c["kind"]) for c in payload["contrasts"]}
    assert ("life_satisfaction_mixed", "change") in kinds
    assert ("gp_visits_gee_poisson", "difference in change") in kinds


def test_contrast_equals_sum_of_terms(analysed):
    result, _ = analysed
    res = result.models["happy_mixed"]
    c = result.contrasts
    row = c[
        (c["model"] == "happy_mixed") & (c["contrast"] == "anchored: month 12 - baseline")
    ].iloc[0]
    expected = res.estimate("C(wave, Treatment(0))[T.12]") + res.estimate(
        "C(pattern, Treatment('rapid'))[T.anchored]:C(wave, Treatment(0))[T.12]"
    )
    assert row["estimate"] == pytest.approx(expected)
    diff = c[
        (c["model"] == "happy_mixed") & (c["contrast"] == "anchored vs rapid: change to month 12")
    ]
    assert diff.iloc[0]["estimate"] == pytest.approx(
        res.estimate("C(pattern, Treatment('rapid'))[T.anchored]:C(wave, Treatment(0))[T.12]")
    )


def test_report_is_self_contained_and_names_models_and_versions(analysed):
    _, out = analysed
    html = (out / "report.html").read_text()
    assert not re.search(r"(src|href)=['\"]https?://", html)
    assert html.count("data:image/png;base64,") == 3
    for text in (
        "life_satisfaction_mixed",
        "gp_visits_gee_negbin",
        "response_logit",
        "statsmodels",
        "numpy",
        "pandas",
        "python",
    ):
        assert text in html


def test_small_cells_are_suppressed_unless_asked(tmp_path, small_cohort):
    frame = small_cohort.copy()
    other = frame["gender"].astype(str) == "other"
    assert 0 < frame.loc[other, "pid"].nunique() < 20
    # Make a tiny pattern group: three with_only patients only.
    keep = frame["pattern"].astype(str) != "with_only"
    few = frame.loc[frame["pattern"].astype(str) == "with_only", "pid"].unique()[:3]
    frame = frame[keep | frame["pid"].isin(few)]
    out = analyse(write_export(tmp_path / "e", frame), tmp_path / "r").out_dir
    rates = pd.read_csv(out / "response_rates.csv", dtype=str)
    row = rates[(rates["pattern"] == "with_only") & (rates["wave"] == "0")].iloc[0]
    assert row["patients"] == "<5" and pd.isna(row["response_rate"])
    assert "&lt;5" in (out / "report.html").read_text()
    out2 = analyse(write_export(tmp_path / "e2", frame), tmp_path / "r2", suppression=False).out_dir
    rates2 = pd.read_csv(out2 / "response_rates.csv")
    assert (
        rates2[(rates2["pattern"] == "with_only") & (rates2["wave"] == 0)]["patients"] == 3
    ).all()
    assert "Small-cell suppression is OFF" in (out2 / "report.html").read_text()


def test_bad_input_writes_nothing(tmp_path, small_cohort):
    frame = small_cohort.copy()
    frame["pattern"] = frame["pattern"].astype(str)
    frame.loc[0, "pattern"] = "fast"
    out = tmp_path / "out"
    with pytest.raises(AnalysisInputError):
        analyse(write_export(tmp_path / "e", frame), out)
    assert not out.exists() or not any(out.iterdir())


def test_no_follow_up_answers_is_a_clear_error(tmp_path, small_cohort):
    baseline = small_cohort[small_cohort["wave"] == 0]
    with pytest.raises(AnalysisInputError, match="nobody answered at 6 or 12 months"):
        analyse(write_export(tmp_path / "e", baseline), tmp_path / "r")


def test_two_patterns_only_still_analyses(tmp_path, small_cohort):
    two = small_cohort[small_cohort["pattern"].astype(str) != "with_only"]
    result = analyse(write_export(tmp_path / "e", two), tmp_path / "r")
    assert not any("with_only" in n for n in result.models["life_satisfaction_mixed"].names)
    assert set(result.contrasts["pattern"]) == {"rapid", "anchored"}


def test_patients_with_unknown_covariates_are_described_but_left_out_of_models(
    tmp_path, small_cohort
):
    frame = small_cohort.copy()
    frame["imd_quintile"] = frame["imd_quintile"].astype("Float64")
    frame["gender"] = frame["gender"].astype(object)
    frame.loc[frame["pid"].isin(["S0000001", "S0000002"]), "imd_quintile"] = None
    frame.loc[frame["pid"] == "S0000003", "gender"] = None
    result = analyse(write_export(tmp_path / "e", frame, fmt="parquet"), tmp_path / "r")
    assert result.n_patients == 400
    assert result.models["life_satisfaction_mixed"].n_groups == 397
    payload = json.loads((tmp_path / "r" / "results.json").read_text())
    assert payload["meta"]["n_patients_left_out_of_models_for_unknown_covariates"] == 3
    assert "C(imd_quintile)[T.2]" in payload["models"]["life_satisfaction_mixed"]["params"]
