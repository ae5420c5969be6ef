"""The vectorised exchangeable GEE equals statsmodels' GEE to 1e-6."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis.design import build_design
from analysis.fast_gee import Family, fit_exchangeable_gee, fit_weighted_linear
from analysis.models import PRIMARY_RHS
from analysis.simulate import simulate_cohort


@pytest.fixture(scope="module")
def answered():
    d = simulate_cohort(400, seed=21)
    d = d[
        (d["responded"] == 1) & d[["gp_visits", "lonely", "life_satisfaction"]].notna().all(axis=1)
    ]
    d = d.reset_index(drop=True)
    design = build_design(
        PRIMARY_RHS, d, categorical=["pattern", "wave", "gender", "imd_quintile"], numeric=["age"]
    )
    return d, design, pd.factorize(d["pid"])[0]


@pytest.mark.parametrize("compress", [False, True], ids=["row-wise", "pooled-by-cluster-type"])
@pytest.mark.parametrize(
    ("family", "sm_family", "outcome"),
    [
        (Family("poisson"), sm.families.Poisson(), "gp_visits"),
        (Family("negbin", 0.4), sm.families.NegativeBinomial(alpha=0.4), "gp_visits"),
        (Family("binomial"), sm.families.Binomial(), "lonely_often"),
        (Family("gaussian"), sm.families.Gaussian(), "life_satisfaction"),
    ],
)
def test_matches_statsmodels_gee_exchangeable(answered, family, sm_family, outcome, compress):
    d, design, groups = answered
    y = (
        (d["lonely"] == 5).astype(float).to_numpy()
        if outcome == "lonely_often"
        else d[outcome].to_numpy(float)
    )
    fast = fit_exchangeable_gee(y, design.exog, groups, design.names, family, compress=compress)
    ref = sm.GEE(
        y, design.frame(), groups=groups, family=sm_family, cov_struct=sm.cov_struct.Exchangeable()
    ).fit(ctol=1e-12, maxiter=500)
    assert list(ref.params.index) == fast.names
    np.testing.assert_allclose(fast.params, ref.params.to_numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(fast.bse, ref.bse.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        np.sqrt(np.diag(fast.cov_naive)), np.sqrt(np.diag(ref.cov_naive)), rtol=1e-6
    )
    assert fast.dep_param == pytest.approx(float(ref.cov_struct.dep_params), abs=1e-6)
    assert fast.converged


def test_weighted_linear_matches_statsmodels_gee_independence_with_weights(answered):
    d, design, groups = answered
    w = np.random.default_rng(3).uniform(1.0, 3.0, len(d))
    y = d["life_satisfaction"].to_numpy(float)
    fast = fit_weighted_linear(y, design.exog, groups, design.names, w)
    ref = sm.GEE(
        y, design.frame(), groups=groups, weights=w, cov_struct=sm.cov_struct.Independence()
    ).fit()
    np.testing.assert_allclose(fast.params, ref.params.to_numpy(), atol=1e-8)
    np.testing.assert_allclose(fast.bse, ref.bse.to_numpy(), rtol=1e-6)
