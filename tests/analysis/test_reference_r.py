"""Pinned to R: lme4 (REML) and geepack on the stored cohort (analysis/reference/).

The numbers come from analysis/reference/make_reference.R; R is not needed at test time.
Two documented differences of convention, each checked separately:
- standard errors: lme4's vcov is sigma^2 (X'V^-1X)^-1; statsmodels (and our reported SEs)
  invert the observed Hessian including the beta/variance-ratio block. We keep both.
- GEE: geepack's moment estimators of the scale and the exchangeable correlation divide by N
  and by the number of pairs; statsmodels subtracts the number of coefficients (ddof_scale).
  With ddof=0 our GEE reproduces geepack; with statsmodels' default it differs by < 1e-3.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.dataset import load_study
from analysis.fast_gee import Family, fit_exchangeable_gee
from analysis.fast_lmm import fit_nested_intercepts, fit_random_intercept
from analysis.models import PRIMARY_RHS, ModelData, fit_gp_models, fit_lonely

HERE = Path(__file__).resolve().parents[2] / "analysis" / "reference"
REF = json.loads((HERE / "reference.json").read_text())["models"]


@pytest.fixture(scope="module")
def data():
    return ModelData(load_study(HERE / "cohort.csv").outcomes)


def _ref(name, names):
    r = REF[name]
    return np.array([r["params"][n] for n in names]), np.array([r["se"][n] for n in names])


@pytest.mark.parametrize("item", ["life_satisfaction", "worthwhile", "happy", "anxious"])
def test_mixed_models_match_lme4(data, item):
    mask = data.rows(item)
    x, names, groups = data.subset(PRIMARY_RHS, mask)
    fit = fit_random_intercept(data.frame[item].to_numpy(float)[mask], x, groups, names)
    r = REF[f"{item}_mixed"]
    assert set(names) == set(r["params"])
    est, se = _ref(f"{item}_mixed", names)
    assert fit.n_obs == r["n_obs"] and fit.n_groups == r["n_groups"]
    np.testing.assert_allclose(fit.params, est, atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov_conditional)), se, rtol=1e-4)
    assert fit.group_var == pytest.approx(r["group_var"], rel=1e-4)
    assert fit.scale == pytest.approx(r["residual_var"], rel=1e-4)
    assert fit.llf == pytest.approx(r["reml_loglik"], abs=1e-4)
    # The statsmodels-convention SEs we report differ from lme4's by well under 1%.
    np.testing.assert_allclose(fit.bse, se, rtol=5e-3)


@pytest.mark.parametrize("name", ["gp_visits_gee_poisson", "lonely_gee"])
def test_gee_with_geepack_estimator_matches_geepack(data, name):
    outcome = "gp_visits" if name.startswith("gp") else "lonely"
    y = data.frame[outcome].to_numpy(float)
    if outcome == "lonely":
        y = (y == 5).astype(float)
    mask = data.rows(outcome)
    x, names, groups = data.subset(PRIMARY_RHS, mask)
    family = Family("poisson" if outcome == "gp_visits" else "binomial")
    fit = fit_exchangeable_gee(y[mask], x, groups, names, family, ddof=0)
    est, se = _ref(name, names)
    np.testing.assert_allclose(fit.params, est, atol=1e-5, rtol=0)
    np.testing.assert_allclose(fit.bse, se, rtol=1e-5)
    assert fit.dep_param == pytest.approx(REF[name]["alpha"], abs=1e-5)


def test_reported_gee_models_are_within_1e_3_of_geepack(data):
    pois, _ = fit_gp_models(data)
    lonely = fit_lonely(data)
    for res in (pois, lonely):
        est, se = _ref(res.name, res.names)
        np.testing.assert_allclose(res.params, est, atol=1e-3, rtol=0)
        np.testing.assert_allclose(res.bse, se, rtol=3e-3)


def test_site_variance_component_fit_matches_lme4(data):
    mask = data.rows("life_satisfaction")
    x, names, groups = data.subset(PRIMARY_RHS, mask)
    sites = data.frame["site"].cat.codes.to_numpy()[mask]
    y = data.frame["life_satisfaction"].to_numpy(float)[mask]
    fit = fit_nested_intercepts(y, x, groups, sites, names)
    r = REF["life_satisfaction_mixed_site_vc"]
    est, se = _ref("life_satisfaction_mixed_site_vc", names)
    np.testing.assert_allclose(fit.params, est, atol=1e-4, rtol=0)
    np.testing.assert_allclose(fit.bse, se, rtol=1e-4)
    assert fit.patient_var == pytest.approx(r["patient_var"], rel=1e-4)
    assert fit.site_var == pytest.approx(r["site_var"], rel=1e-4)
    assert fit.scale == pytest.approx(r["residual_var"], rel=1e-4)
    assert fit.llf == pytest.approx(r["reml_loglik"], abs=1e-4)
