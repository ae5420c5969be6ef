import numpy as np
import patsy
import pytest

from analysis.design import build_design
from analysis.models import DOSE_RHS, PRIMARY_RHS
from analysis.simulate import simulate_cohort


@pytest.mark.parametrize("rhs", [PRIMARY_RHS, DOSE_RHS, PRIMARY_RHS + " + C(site)"])
def test_fast_design_equals_patsy_on_all_rows(rhs):
    d = simulate_cohort(300, seed=3)
    fast = build_design(
        rhs,
        d,
        categorical=["pattern", "wave", "gender", "imd_quintile", "site"],
        numeric=["age", "sessions"],
    )
    ref = patsy.dmatrix(rhs, d, return_type="dataframe")
    assert fast.names == list(ref.columns)
    np.testing.assert_array_equal(fast.exog, ref.to_numpy())


def test_rows_mask_selects_rows_with_levels_from_all_rows():
    d = simulate_cohort(200, seed=4)
    rows = d["responded"].to_numpy() == 1
    fast = build_design(
        PRIMARY_RHS,
        d,
        categorical=["pattern", "wave", "gender", "imd_quintile"],
        numeric=["age"],
        rows=rows,
    )
    ref = patsy.dmatrix(PRIMARY_RHS, d, return_type="dataframe")
    np.testing.assert_array_equal(fast.exog, ref.to_numpy()[rows])
