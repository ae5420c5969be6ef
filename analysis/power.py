"""Power for a planned cohort size, by simulation with the fast exact mixed-model fit.

Each replicate simulates a cohort (`simulate_cohort`, with its realistic follow-up response),
fits the primary random-intercept model for one ONS4 item and tests one pattern x wave term.
Power is the share of replicates with p < alpha; it comes with a 95% Monte Carlo interval and the
coverage of the term's 95% CI as a self-check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import stats

from analysis.design import build_design
from analysis.fast_lmm import fit_random_intercept
from analysis.models import PRIMARY_RHS
from analysis.results import Z95
from analysis.simulate import Effects, simulate_cohort

DEFAULT_TERM = "C(pattern, Treatment('rapid'))[T.anchored]:C(wave, Treatment(0))[T.12]"
ONS4 = ("life_satisfaction", "worthwhile", "happy", "anxious")


@dataclass(frozen=True)
class PowerResult:
    n_patients: int
    outcome: str
    term: str
    effect: float
    sims: int
    alpha: float
    power: float
    power_ci_low: float
    power_ci_high: float
    mean_estimate: float
    mean_se: float
    ci_coverage: float

    def to_dict(self) -> dict:
        return asdict(self)


def _effects_with(effect: float, outcome: str, pattern: str, wave: int) -> Effects:
    """Default effects, except that `pattern`'s change to `wave` exceeds rapid's by `effect`."""
    base = Effects()
    e = base.ons4[outcome]
    key = "change6" if wave == 6 else "change12"
    changes = dict(getattr(e, key))
    changes[pattern] = changes["rapid"] + effect
    return replace(base, ons4={**base.ons4, outcome: replace(e, **{key: changes})})


def estimate_power(
    n_patients: int,
    *,
    effect: float = 0.5,
    sims: int = 200,
    seed: int = 0,
    outcome: str = "life_satisfaction",
    pattern: str = "anchored",
    wave: int = 12,
    alpha: float = 0.05,
    n_sites: int = 7,
) -> PowerResult:
    """Power to detect a difference of `effect` points (0-10 scale) between `pattern` and rapid
    in the change from baseline to `wave` months, for a cohort of `n_patients`.

    Response at follow-up, patient and site variation follow `simulate_cohort`'s defaults
    (about 35-45% missing at follow-up), so the answer accounts for attrition.
    """
    if n_patients < 30:
        raise ValueError("n_patients must be at least 30")
    if outcome not in ONS4:
        raise ValueError(f"outcome must be one of {', '.join(ONS4)}")
    if pattern not in ("anchored", "with_only") or wave not in (6, 12):
        raise ValueError("pattern must be anchored or with_only and wave 6 or 12")
    term = f"C(pattern, Treatment('rapid'))[T.{pattern}]:C(wave, Treatment(0))[T.{wave}]"
    effects = _effects_with(effect, outcome, pattern, wave)
    estimates, ses = np.empty(sims), np.empty(sims)
    for i in range(sims):
        frame = simulate_cohort(
            n_patients, seed=seed * 1_000_003 + i, effects=effects, n_sites=n_sites
        )
        rows = (frame["responded"].to_numpy() == 1) & frame[outcome].notna().to_numpy()
        design = build_design(
            PRIMARY_RHS,
            frame,
            categorical=["pattern", "wave", "gender", "imd_quintile"],
            numeric=["age"],
            rows=rows,
        )
        keep = np.einsum("ij,ij->j", design.exog, design.exog) > 0
        names = [n for n, k in zip(design.names, keep, strict=True) if k]
        groups = frame["pid"].to_numpy()[rows]
        codes = np.cumsum(np.r_[True, groups[1:] != groups[:-1]])
        fit = fit_random_intercept(
            frame[outcome].to_numpy(dtype=float)[rows], design.exog[:, keep], codes, names
        )
        j = names.index(term)
        estimates[i] = fit.params[j]
        ses[i] = fit.bse[j]
    z = np.abs(estimates / ses)
    crit = stats.norm.ppf(1 - alpha / 2)
    hits = int(np.sum(z > crit))
    lo, hi = _wilson(hits, sims)
    true_value = effect
    covered = np.abs(estimates - true_value) <= Z95 * ses
    return PowerResult(
        n_patients=n_patients,
        outcome=outcome,
        term=term,
        effect=effect,
        sims=sims,
        alpha=alpha,
        power=hits / sims,
        power_ci_low=lo,
        power_ci_high=hi,
        mean_estimate=float(estimates.mean()),
        mean_se=float(ses.mean()),
        ci_coverage=float(covered.mean()),
    )


def _wilson(k: int, n: int) -> tuple[float, float]:
    z = Z95
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)
