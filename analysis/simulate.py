"""Synthetic cohorts with known effects, in the export's long format (DESIGN section 6).

One row per patient x wave (0 = baseline at referral, 6, 12). Effects are specified as the
baseline mean per pattern and the change from baseline at 6 and 12 months per pattern, so the
true coefficients of the primary models are known (`true_coefficients`). Patients carry a
random intercept, sites a site effect, and follow-up response depends on pattern and age
(missing at random given covariates), so the primary mixed models stay unbiased.

Everything is vectorised over patients: a million patients take a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

PATTERNS = ("rapid", "anchored", "with_only")
WAVES = (0, 6, 12)
GENDERS = ("female", "male", "other")
ONS4 = ("life_satisfaction", "worthwhile", "happy", "anxious")


@dataclass(frozen=True)
class OutcomeEffects:
    """Mean structure of one continuous (0-10) outcome on its own scale."""

    baseline: dict[str, float]
    change6: dict[str, float]
    change12: dict[str, float]
    age_per_year: float = 0.0
    gender: dict[str, float] = field(default_factory=dict)
    imd_per_quintile: float = 0.0
    patient_sd: float = 1.4
    residual_sd: float = 1.5
    site_sd: float = 0.3
    sessions_per_session: float = 0.0


def _ons4_default(sign: float, base: float) -> OutcomeEffects:
    # Wellbeing items improve (sign +1); anxiety falls (sign -1).
    return OutcomeEffects(
        baseline={"rapid": base, "anchored": base - 0.4 * sign, "with_only": base - 0.2 * sign},
        change6={"rapid": 0.6 * sign, "anchored": 0.9 * sign, "with_only": 0.2 * sign},
        change12={"rapid": 0.5 * sign, "anchored": 1.0 * sign, "with_only": 0.1 * sign},
        age_per_year=0.01 * sign,
        gender={"female": 0.0, "male": -0.15 * sign, "other": -0.3 * sign},
        imd_per_quintile=0.12 * sign,
        sessions_per_session=0.03 * sign,
    )


@dataclass(frozen=True)
class Effects:
    """Known effects for every simulated outcome.

    ONS4 items: `OutcomeEffects` on the 0-10 scale. GP visits: log rate ratios for the change
    from baseline per pattern (`gp_log_change6/12`). Loneliness: log-odds shifts of a latent
    ordinal scale (higher = lonelier) for the change from baseline per pattern.
    """

    ons4: dict[str, OutcomeEffects] = field(
        default_factory=lambda: {
            "life_satisfaction": _ons4_default(+1, 5.2),
            "worthwhile": _ons4_default(+1, 5.8),
            "happy": _ons4_default(+1, 5.4),
            "anxious": _ons4_default(-1, 5.0),
        }
    )
    gp_log_baseline: dict[str, float] = field(
        default_factory=lambda: {
            "rapid": np.log(4.0),
            "anchored": np.log(5.0),
            "with_only": np.log(4.5),
        }
    )
    gp_log_change6: dict[str, float] = field(
        default_factory=lambda: {"rapid": -0.15, "anchored": -0.25, "with_only": -0.05}
    )
    gp_log_change12: dict[str, float] = field(
        default_factory=lambda: {"rapid": -0.20, "anchored": -0.30, "with_only": -0.05}
    )
    gp_patient_sd: float = 0.5
    lonely_baseline: dict[str, float] = field(
        default_factory=lambda: {"rapid": 0.3, "anchored": 0.8, "with_only": 0.6}
    )
    lonely_change6: dict[str, float] = field(
        default_factory=lambda: {"rapid": -0.4, "anchored": -0.7, "with_only": -0.1}
    )
    lonely_change12: dict[str, float] = field(
        default_factory=lambda: {"rapid": -0.5, "anchored": -0.8, "with_only": -0.1}
    )
    lonely_patient_sd: float = 1.0


@dataclass(frozen=True)
class Missingness:
    """Probability of answering at follow-up: logistic in pattern, age and wave.

    The defaults give about 35-40% missing at 6 months and a little more at 12 months, more
    among `with_only` patients and younger people. Baseline (from the referral) is always present.
    """

    intercept: float = 0.55
    pattern: dict[str, float] = field(
        default_factory=lambda: {"rapid": 0.0, "anchored": 0.2, "with_only": -0.45}
    )
    age_per_decade: float = 0.12
    wave12: float = -0.2
    item_skip: float = 0.02


def true_coefficients(effects: Effects, outcome: str) -> dict[str, float]:
    """The pattern x wave coefficients of the primary model, named as statsmodels names them.

    For the ONS4 items these are the linear mixed model coefficients; for `gp_visits` the
    Poisson/negative-binomial GEE log rate ratios (marginal = conditional under a log link).
    """
    p = "C(pattern, Treatment('rapid'))"
    w = "C(wave, Treatment(0))"
    if outcome in effects.ons4:
        e = effects.ons4[outcome]
        base, ch6, ch12 = e.baseline, e.change6, e.change12
    elif outcome == "gp_visits":
        base, ch6, ch12 = effects.gp_log_baseline, effects.gp_log_change6, effects.gp_log_change12
    else:
        raise ValueError(f"no known coefficients for {outcome!r}")
    out = {f"{w}[T.6]": ch6["rapid"], f"{w}[T.12]": ch12["rapid"]}
    for pat in PATTERNS[1:]:
        out[f"{p}[T.{pat}]"] = base[pat] - base["rapid"]
        out[f"{p}[T.{pat}]:{w}[T.6]"] = ch6[pat] - ch6["rapid"]
        out[f"{p}[T.{pat}]:{w}[T.12]"] = ch12[pat] - ch12["rapid"]
    return out


def _pid_strings(n: int) -> np.ndarray:
    digits = max(7, len(str(n)))
    return np.strings.add("S", np.strings.zfill(np.arange(1, n + 1).astype(str), digits))


def simulate_cohort(
    n_patients: int,
    *,
    seed: int,
    effects: Effects | None = None,
    n_sites: int = 7,
    missing: Missingness | None = None,
    discretise: bool = True,
) -> pd.DataFrame:
    """Simulate a cohort in the export's long format (3 rows per patient).

    `discretise=False` leaves the ONS4 items continuous and unclipped, so linear models
    recover the effects exactly in expectation (used by the coverage tests); the default rounds
    and clips them to 0-10 like real replies.
    """
    effects = effects or Effects()
    missing = missing or Missingness()
    rng = np.random.default_rng(seed)
    n = int(n_patients)

    pattern_code = rng.choice(3, size=n, p=[0.4, 0.35, 0.25])
    site_code = rng.integers(0, n_sites, size=n)
    age = np.clip(np.rint(rng.normal(55, 17, size=n)), 18, 95)
    gender_code = rng.choice(3, size=n, p=[0.56, 0.42, 0.02])
    imd = rng.integers(1, 6, size=n)
    sessions_mean = np.array([2.0, 6.0, 4.0])
    sessions = 1 + rng.poisson(sessions_mean[pattern_code])
    # Centred within pattern so the pattern x wave effects stay exactly as specified.
    sessions_c = sessions - (1 + sessions_mean[pattern_code])

    wave = np.tile(np.array(WAVES), n)
    widx = np.tile(np.arange(3), n)
    pat_r = np.repeat(pattern_code, 3)
    follow = widx > 0

    # Who answers at follow-up: pattern, age and wave.
    miss_pat = np.array([missing.pattern[p] for p in PATTERNS])
    eta_r = (
        missing.intercept
        + miss_pat[pat_r]
        + missing.age_per_decade * (np.repeat(age, 3) - 55) / 10
        + missing.wave12 * (widx == 2)
    )
    responded = np.where(follow, rng.random(3 * n) < 1 / (1 + np.exp(-eta_r)), True)

    site_effects = {k: rng.normal(0, 1, size=n_sites) for k in ("ons4", "gp", "lonely")}
    cols: dict[str, np.ndarray] = {}
    for name in ONS4:
        e = effects.ons4[name]
        base = np.array([e.baseline[p] for p in PATTERNS])
        ch = np.array([[0.0, e.change6[p], e.change12[p]] for p in PATTERNS])
        gen = np.array([e.gender.get(g, 0.0) for g in GENDERS])
        patient = (
            base[pattern_code]
            + e.age_per_year * age
            + gen[gender_code]
            + e.imd_per_quintile * (imd - 1)
            + e.site_sd * site_effects["ons4"][site_code]
            + rng.normal(0, e.patient_sd, size=n)
        )
        y = (
            np.repeat(patient, 3)
            + ch[pat_r, widx]
            + e.sessions_per_session * np.repeat(sessions_c, 3) * follow
            + rng.normal(0, e.residual_sd, size=3 * n)
        )
        if discretise:
            y = np.clip(np.rint(y), 0, 10)
        cols[name] = y

    # Loneliness: latent logistic scale cut into 5 ordered categories (5 = often/always).
    lb = np.array([effects.lonely_baseline[p] for p in PATTERNS])
    lch = np.array([[0.0, effects.lonely_change6[p], effects.lonely_change12[p]] for p in PATTERNS])
    lat = (
        np.repeat(lb[pattern_code] + rng.normal(0, effects.lonely_patient_sd, size=n), 3)
        + np.repeat(0.15 * site_effects["lonely"][site_code], 3)
        + lch[pat_r, widx]
        + rng.logistic(size=3 * n)
    )
    cols["lonely"] = 1.0 + np.searchsorted(np.array([-1.5, -0.3, 0.8, 2.0]), lat)

    # GP visits: Poisson with a log-normal patient intercept (overdispersed counts).
    gb = np.array([effects.gp_log_baseline[p] for p in PATTERNS])
    gch = np.array([[0.0, effects.gp_log_change6[p], effects.gp_log_change12[p]] for p in PATTERNS])
    sd = effects.gp_patient_sd
    gp_patient = gb[pattern_code] + rng.normal(-sd * sd / 2, sd, size=n)
    log_rate = (
        np.repeat(gp_patient, 3)
        + gch[pat_r, widx]
        + np.repeat(0.1 * site_effects["gp"][site_code], 3)
    )
    cols["gp_visits"] = rng.poisson(np.exp(log_rate)).astype(float)

    cols["community_activity"] = (
        rng.random(3 * n) < np.where(follow, 0.45, 0.25) + 0.05 * (pat_r == 0)
    ).astype(float)
    cols["recontact_requested"] = np.where(follow, rng.random(3 * n) < 0.08, 0).astype(float)

    item_cols = [*ONS4, "lonely", "gp_visits", "community_activity", "recontact_requested"]
    for name in item_cols:
        skipped = follow & (rng.random(3 * n) < missing.item_skip)
        cols[name] = np.where(responded & ~skipped, cols[name], np.nan)

    days = np.where(follow, np.minimum(rng.geometric(0.25, size=3 * n) - 1, 27), 0).astype(float)
    days = np.where(responded, days, np.nan)

    pid = _pid_strings(n)
    site_names = np.array([f"site_{i + 1:02d}" for i in range(n_sites)])
    frame = pd.DataFrame(
        {
            "pid": pd.array(np.repeat(pid, 3), dtype="str"),
            "site": pd.Categorical.from_codes(np.repeat(site_code, 3), categories=site_names),
            "pattern": pd.Categorical.from_codes(pat_r, categories=list(PATTERNS)),
            "sessions": np.repeat(sessions, 3).astype(np.int64),
            "age": np.repeat(age, 3).astype(np.int64),
            "gender": pd.Categorical.from_codes(
                np.repeat(gender_code, 3), categories=list(GENDERS)
            ),
            "imd_quintile": np.repeat(imd, 3).astype(np.int64),
            "wave": wave.astype(np.int64),
            "responded": responded.astype(np.int64),
            "days_from_due": days,
            **{name: cols[name] for name in item_cols[:6]},
            "community_activity": cols["community_activity"],
            "recontact_requested": cols["recontact_requested"],
        }
    )
    return frame
