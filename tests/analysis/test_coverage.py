"""The models recover simulated effects: 95% CIs cover the true values about 95% of the time.

Continuous (unrounded, unclipped) outcomes, so the linear model is exactly right in its mean;
modest cohorts and the fast paths keep this to a few seconds.
"""

import numpy as np
import pandas as pd

from analysis.design import build_design
from analysis.fast_gee import Family, fit_exchangeable_gee
from analysis.fast_lmm import fit_random_intercept
from analysis.models import PRIMARY_RHS
from analysis.results import Z95
from analysis.simulate import Effects, simulate_cohort, true_coefficients

CATS = ["pattern", "wave", "gender", "imd_quintile"]


def _truth_mixed(effects: Effects, outcome: str) -> dict[str, float]:
    e = effects.ons4[outcome]
    truth = true_coefficients(effects, outcome)
    truth["age"] = e.age_per_year
    truth["C(gender)[T.male]"] = e.gender["male"]
    truth["C(gender)[T.other]"] = e.gender["other"]
    for k in range(2, 6):
        truth[f"C(imd_quintile)[T.{k}]"] = e.imd_per_quintile * (k - 1)
    return truth


def _fit(frame, outcome, kind):
    rows = (frame["responded"].to_numpy() == 1) & frame[outcome].notna().to_numpy()
    design = build_design(PRIMARY_RHS, frame, categorical=CATS, numeric=["age"], rows=rows)
    groups = pd.factorize(frame["pid"].to_numpy()[rows])[0]
    y = frame[outcome].to_numpy(float)[rows]
    if kind == "mixed":
        fit = fit_random_intercept(y, design.exog, groups, design.names)
        return design.names, fit.params, fit.bse
    fit = fit_exchangeable_gee(y, design.exog, groups, design.names, Family("poisson"))
    return design.names, fit.params, fit.bse


def _coverage(kind, outcome, truth, reps, n):
    hits, total, z = 0, 0, []
    for rep in range(reps):
        frame = simulate_cohort(n, seed=1000 + rep, discretise=False)
        names, est, se = _fit(frame, outcome, kind)
        for term, value in truth.items():
            j = names.index(term)
            hits += abs(est[j] - value) <= Z95 * se[j]
            total += 1
            z.append((est[j] - value) / se[j])
    return hits / total, np.array(z)


def test_mixed_model_cis_cover_at_the_promised_rate():
    effects = Effects()
    truth = _truth_mixed(effects, "life_satisfaction")
    rate, z = _coverage("mixed", "life_satisfaction", truth, reps=150, n=300)
    # 150 x 15 intervals: a binomial SD of about 0.5 points around 95% (terms are correlated).
    assert 0.93 <= rate <= 0.97, rate
    assert abs(z.mean()) < 0.1  # unbiased
    assert 0.9 < z.std() < 1.1  # SEs of the right size


def test_poisson_gee_cis_cover_gp_rate_ratios():
    truth = true_coefficients(Effects(), "gp_visits")
    truth.update({"age": 0.0, "C(gender)[T.male]": 0.0})
    rate, z = _coverage("gee", "gp_visits", truth, reps=100, n=400)
    assert 0.92 <= rate <= 0.975, rate
    assert abs(z.mean()) < 0.15
