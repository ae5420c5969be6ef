import pytest

from analysis.power import estimate_power


def test_power_rises_with_effect_and_cohort_size_and_is_reproducible():
    small = estimate_power(300, effect=0.3, sims=40, seed=1)
    again = estimate_power(300, effect=0.3, sims=40, seed=1)
    bigger = estimate_power(1500, effect=0.6, sims=40, seed=1)
    assert small == again
    assert bigger.power > small.power
    assert bigger.power >= 0.9
    assert small.power_ci_low <= small.power <= small.power_ci_high
    assert bigger.mean_se < small.mean_se


def test_null_effect_rejects_at_about_alpha():
    res = estimate_power(300, effect=0.0, sims=80, seed=7)
    assert res.power < 0.12


def test_rejects_nonsense_inputs():
    with pytest.raises(ValueError, match="at least 30"):
        estimate_power(10)
    with pytest.raises(ValueError, match="pattern must be"):
        estimate_power(100, pattern="rapid")
