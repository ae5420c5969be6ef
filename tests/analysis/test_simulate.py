import numpy as np

from analysis.design import build_design
from analysis.models import PRIMARY_RHS
from analysis.simulate import Effects, simulate_cohort, true_coefficients

CONTRACT = [
    "pid",
    "site",
    "pattern",
    "sessions",
    "age",
    "gender",
    "imd_quintile",
    "wave",
    "responded",
    "days_from_due",
    "life_satisfaction",
    "worthwhile",
    "happy",
    "anxious",
    "lonely",
    "gp_visits",
    "community_activity",
    "recontact_requested",
]


def test_long_format_with_the_contract_columns_in_order():
    d = simulate_cohort(500, seed=1)
    assert list(d.columns) == CONTRACT
    assert len(d) == 1500
    waves = d.groupby("pid", observed=True)["wave"].apply(list)
    assert all(w == [0, 6, 12] for w in waves)
    assert set(d["pattern"].astype(str)) == {"rapid", "anchored", "with_only"}


def test_values_are_in_range_and_baseline_always_answered():
    d = simulate_cohort(2000, seed=2)
    assert (d.loc[d["wave"] == 0, "responded"] == 1).all()
    for col in ("life_satisfaction", "worthwhile", "happy", "anxious"):
        v = d[col].dropna()
        assert v.between(0, 10).all() and (v == v.round()).all()
    assert d["lonely"].dropna().isin([1, 2, 3, 4, 5]).all()
    assert (d["gp_visits"].dropna() >= 0).all()
    answers = d[["life_satisfaction", "lonely", "gp_visits"]]
    assert answers[d["responded"] == 0].isna().all().all()


def test_follow_up_missingness_is_realistic_and_depends_on_pattern_and_age():
    d = simulate_cohort(20000, seed=3)
    follow = d[d["wave"] > 0]
    missing = 1 - follow.groupby("wave")["responded"].mean()
    assert ((missing > 0.30) & (missing < 0.45)).all(), missing
    by_pattern = follow.groupby("pattern", observed=True)["responded"].mean()
    assert by_pattern["with_only"] < by_pattern["rapid"] < by_pattern["anchored"]
    older = follow[follow["age"] >= 65]["responded"].mean()
    younger = follow[follow["age"] < 40]["responded"].mean()
    assert older > younger + 0.05


def test_same_seed_same_cohort_and_different_seed_differs():
    a, b, c = (simulate_cohort(300, seed=s) for s in (5, 5, 6))
    assert a.equals(b)
    assert not a.equals(c)


def test_true_coefficients_use_statsmodels_term_names():
    d = simulate_cohort(300, seed=4)
    names = build_design(
        PRIMARY_RHS, d, categorical=["pattern", "wave", "gender", "imd_quintile"], numeric=["age"]
    ).names
    truth = true_coefficients(Effects(), "life_satisfaction")
    assert set(truth) <= set(names)
    assert np.isclose(truth["C(wave, Treatment(0))[T.6]"], 0.6)
    assert np.isclose(
        truth["C(pattern, Treatment('rapid'))[T.anchored]:C(wave, Treatment(0))[T.12]"], 0.5
    )
