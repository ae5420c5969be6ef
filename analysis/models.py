"""The models of DESIGN section 7, fitted on a validated outcomes table.

Primary models use the exact fast paths (`fast_lmm`, `fast_gee`), which give statsmodels'
own estimates, standard errors and term names; `engine="statsmodels"` fits the same model
with stock statsmodels (the reference, and the fallback for models outside the fast paths).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import special

from analysis.design import Design, build_design
from analysis.fast_gee import Family, fit_exchangeable_gee, fit_weighted_linear
from analysis.fast_lmm import GroupedExog, fit_nested_intercepts, fit_random_intercept
from analysis.results import ModelResult

PATTERN = "C(pattern, Treatment('rapid'))"
WAVE = "C(wave, Treatment(0))"
COVARIATES = "age + C(gender) + C(imd_quintile)"
PRIMARY_RHS = f"{PATTERN} * {WAVE} + {COVARIATES}"
DOSE_RHS = f"{PATTERN} * {WAVE} + sessions * {WAVE} + {COVARIATES}"
RESPONSE_RHS = (
    f"{PATTERN} * C(wave, Treatment(6)) + {COVARIATES} + C(site) + baseline_life_satisfaction"
)
ONS4 = ("life_satisfaction", "worthwhile", "happy", "anxious")
CATEGORICAL = ["pattern", "wave", "gender", "imd_quintile", "site"]
NUMERIC = ["age", "sessions", "baseline_life_satisfaction"]
MAX_FIXED_SITES = 30

MIXED_METHOD = (
    "Linear mixed model, REML, random intercept per patient (exact profiled REML from "
    "per-patient sums; identical to statsmodels MixedLM)"
)
MIXED_METHOD_SM = "Linear mixed model, REML, random intercept per patient (statsmodels MixedLM)"


class ModelData:
    """The outcomes table prepared once: patient groups and cached full-height designs."""

    def __init__(self, outcomes: pd.DataFrame) -> None:
        frame = outcomes.reset_index(drop=True)
        for col in ("age", "gender", "imd_quintile", "sessions"):
            if frame[col].isna().any():
                raise ValueError(
                    f"{col} is unknown for some patients; pass the frame through "
                    "analysis.dataset.complete_covariates first (analyse() does)"
                )
        pid = frame["pid"]
        codes = pid.cat.codes.to_numpy() if hasattr(pid, "cat") else pd.factorize(pid)[0]
        change = np.r_[True, codes[1:] != codes[:-1]]
        if np.unique(codes).size != int(change.sum()):
            raise ValueError(
                "outcomes must be sorted by patient (dataset.validate_outcomes does this)"
            )
        self.groups = np.cumsum(change) - 1
        base = frame["life_satisfaction"].where(frame["wave"] == 0)
        per_patient = pd.Series(base.to_numpy()).groupby(self.groups).transform("max").to_numpy()
        fill = np.nanmean(per_patient) if np.isfinite(per_patient).any() else 0.0
        frame["baseline_life_satisfaction"] = np.where(np.isnan(per_patient), fill, per_patient)
        self.frame = frame
        self._designs: dict[str, Design] = {}
        self._last_subset: tuple[tuple, tuple] | None = None

    @property
    def n_sites(self) -> int:
        return int(self.frame["site"].nunique())

    def design(self, rhs: str, rows: np.ndarray | None = None) -> Design:
        """Design for `rows` (default all). Only the primary all-rows design is cached."""
        if rows is None and rhs in self._designs:
            return self._designs[rhs]
        cats = [c for c in CATEGORICAL if f"C({c}" in rhs]
        nums = [c for c in NUMERIC if re.search(rf"\b{c}\b", rhs)]
        design = build_design(rhs, self.frame, categorical=cats, numeric=nums, rows=rows)
        if rhs == PRIMARY_RHS and rows is None:
            self._designs[rhs] = design
        return design

    def rows(self, outcome: str) -> np.ndarray:
        f = self.frame
        return (f["responded"].to_numpy() == 1) & f[outcome].notna().to_numpy()

    def subset(self, rhs: str, mask: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Design rows for `mask`, without columns that are all zero there (absent levels).

        The last result is kept (one, to bound memory): consecutive fits on the same rows,
        such as the Poisson and negative binomial GP models, share it.
        """
        key = (rhs, len(mask), int(mask.sum()), hash(np.packbits(mask).tobytes()))
        if self._last_subset is not None and self._last_subset[0] == key:
            return self._last_subset[1]
        result = self._subset(rhs, mask)
        self._last_subset = (key, result)
        return result

    def _subset(self, rhs: str, mask: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
        if rhs == PRIMARY_RHS:
            x = self.design(rhs).exog[mask]
            names_all = self.design(rhs).names
        else:
            d = self.design(rhs, rows=mask)
            x, names_all = d.exog, d.names
        keep = np.einsum("ij,ij->j", x, x) > 0
        names = [n for n, k in zip(names_all, keep, strict=True) if k]
        return (x if keep.all() else x[:, keep]), names, self.groups[mask]


def fit_mixed(
    data: ModelData,
    outcome: str,
    *,
    rhs: str = PRIMARY_RHS,
    name: str | None = None,
    engine: str = "fast",
) -> ModelResult:
    """Random-intercept linear mixed model (REML) for one outcome on responded rows."""
    mask = data.rows(outcome)
    formula = f"{outcome} ~ {rhs}"
    name = name or f"{outcome}_mixed"
    if engine == "statsmodels":
        return fit_mixed_statsmodels(data.frame[mask], outcome, rhs, name=name)
    x, names, groups = data.subset(rhs, mask)
    y = data.frame[outcome].to_numpy(dtype=float)[mask]
    fit = fit_random_intercept(y, x, groups, names)
    return ModelResult(
        name=name,
        formula=formula,
        method=MIXED_METHOD,
        n_obs=fit.n_obs,
        n_groups=fit.n_groups,
        converged=fit.converged,
        names=names,
        params=fit.params,
        cov=fit.cov_params,
        extra={
            "variance_components": {"Group Var": fit.group_var, "Residual": fit.scale},
            "llf": fit.llf,
        },
    )


def fit_mixed_statsmodels(
    frame: pd.DataFrame, outcome: str, rhs: str, *, name: str, vc_site: bool = False
) -> ModelResult:
    """Stock statsmodels MixedLM (the reference implementation and the fallback)."""
    import statsmodels.formula.api as smf

    formula = f"{outcome} ~ {rhs}"
    frame = frame.copy()
    for col in ("pattern", "gender", "site"):
        if hasattr(frame[col], "cat"):
            frame[col] = frame[col].cat.remove_unused_categories()
    if vc_site:
        model = smf.mixedlm(
            formula,
            frame,
            groups=frame["site"].astype(str),
            re_formula="0",
            vc_formula={"pid": "0 + C(pid)", "site": "1"},
        )
    else:
        model = smf.mixedlm(formula, frame, groups=frame["pid"].astype(str))
    res = model.fit(reml=True)
    k = len(res.fe_params)
    cov = np.asarray(res.cov_params())[:k, :k]
    extra = {"llf": float(res.llf)}
    if vc_site:
        vcomp = dict(zip(model.exog_vc.names, np.asarray(res.vcomp), strict=True))
        extra["variance_components"] = {
            **{f"{k} Var": v for k, v in vcomp.items()},
            "Residual": res.scale,
        }
    else:
        extra["variance_components"] = {
            "Group Var": float(res.cov_re.iloc[0, 0]),
            "Residual": float(res.scale),
        }
    return ModelResult(
        name=name,
        formula=formula,
        method=MIXED_METHOD_SM,
        n_obs=int(res.nobs),
        n_groups=int(len(model.group_labels)),
        converged=bool(res.converged),
        names=list(res.fe_params.index),
        params=res.fe_params.to_numpy(),
        cov=cov,
        extra=extra,
    )


def fit_site_sensitivity(data: ModelData, outcome: str = "life_satisfaction") -> ModelResult:
    """Primary model with site: fixed effects for few sites, a variance component for many."""
    name = f"{outcome}_mixed_site"
    if data.n_sites <= MAX_FIXED_SITES:
        res = fit_mixed(data, outcome, rhs=f"{PRIMARY_RHS} + C(site)", name=name)
        return _with(res, method=res.method + f"; site as fixed effects ({data.n_sites} sites)")
    return fit_site_variance_component(data, outcome, name=name)


def fit_site_variance_component(
    data: ModelData,
    outcome: str = "life_satisfaction",
    *,
    name: str | None = None,
    engine: str = "fast",
) -> ModelResult:
    """Primary model plus a site random intercept (patients nested in sites), REML."""
    name = name or f"{outcome}_mixed_site"
    mask = data.rows(outcome)
    if engine == "statsmodels":  # very slow: minutes for a few hundred patients
        res = fit_mixed_statsmodels(data.frame[mask], outcome, PRIMARY_RHS, name=name, vc_site=True)
        return _with(
            res,
            method="Linear mixed model, REML, variance components for site and "
            f"patient within site (statsmodels MixedLM; {data.n_sites} sites)",
        )
    x, names, groups = data.subset(PRIMARY_RHS, mask)
    sites = data.frame["site"].cat.codes.to_numpy()[mask]
    y = data.frame[outcome].to_numpy(dtype=float)[mask]
    fit = fit_nested_intercepts(y, x, groups, sites, names)
    return ModelResult(
        name=name,
        formula=f"{outcome} ~ {PRIMARY_RHS}",
        method="Linear mixed model, REML, random intercepts for site and for patient within site "
        f"({fit.n_sites} sites; exact profiled REML from per-patient and per-site sums, equal to "
        "lme4 (1 | site) + (1 | pid); SEs from sigma^2 (X'V^-1X)^-1 as in lme4)",
        n_obs=fit.n_obs,
        n_groups=fit.n_groups,
        converged=fit.converged,
        names=names,
        params=fit.params,
        cov=fit.cov_params,
        extra={
            "variance_components": {
                "site Var": fit.site_var,
                "pid Var": fit.patient_var,
                "Residual": fit.scale,
            },
            "llf": fit.llf,
            "n_sites": fit.n_sites,
        },
    )


def _with(res: ModelResult, **changes) -> ModelResult:
    from dataclasses import replace

    return replace(res, **changes)


def fit_gee(
    data: ModelData,
    name: str,
    outcome: str,
    family: Family,
    *,
    y: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    rhs: str = PRIMARY_RHS,
    method: str,
    engine: str = "fast",
    extra: dict | None = None,
) -> ModelResult:
    """Exchangeable GEE on responded rows; robust (sandwich) standard errors."""
    mask = data.rows(outcome) if mask is None else mask
    yy = (data.frame[outcome].to_numpy(dtype=float) if y is None else y)[mask]
    x, names, groups = data.subset(rhs, mask)
    if engine == "statsmodels":
        params, cov, dep, conv, n_groups = _statsmodels_gee(yy, x, names, groups, family)
    else:
        fit = fit_exchangeable_gee(yy, x, groups, names, family)
        params, cov, dep, conv, n_groups = (
            fit.params,
            fit.cov_robust,
            fit.dep_param,
            fit.converged,
            fit.n_groups,
        )
    return ModelResult(
        name=name,
        formula=f"{outcome} ~ {rhs}",
        method=method,
        n_obs=len(yy),
        n_groups=n_groups,
        converged=conv,
        names=names,
        params=params,
        cov=cov,
        exponentiate=family.name != "gaussian",
        extra={"working_correlation": dep, **(extra or {})},
    )


def _statsmodels_gee(y, x, names, groups, family: Family):
    import statsmodels.api as sm

    fam = {
        "poisson": sm.families.Poisson(),
        "negbin": sm.families.NegativeBinomial(alpha=family.alpha),
        "binomial": sm.families.Binomial(),
        "gaussian": sm.families.Gaussian(),
    }[family.name]
    model = sm.GEE(
        pd.Series(y),
        pd.DataFrame(x, columns=names),
        groups=groups,
        family=fam,
        cov_struct=sm.cov_struct.Exchangeable(),
    )
    res = model.fit()
    return (
        np.asarray(res.params),
        np.asarray(res.cov_params()),
        float(res.cov_struct.dep_params),
        bool(res.converged),
        len(np.unique(groups)),
    )


def fit_gp_models(data: ModelData, *, engine: str = "fast") -> tuple[ModelResult, ModelResult]:
    """GP contacts: Poisson GEE, then negative binomial with a moment estimate of alpha."""
    pois = fit_gee(
        data,
        "gp_visits_gee_poisson",
        "gp_visits",
        Family("poisson"),
        engine=engine,
        method="GEE Poisson, log link, exchangeable working correlation within patient, "
        "robust SEs; exp(estimate) are incidence rate ratios",
    )
    mask = data.rows("gp_visits")
    x, _, _ = data.subset(PRIMARY_RHS, mask)
    y = data.frame["gp_visits"].to_numpy(dtype=float)[mask]
    mu = np.exp(x @ pois.params)
    alpha = float(max(np.sum((y - mu) ** 2 - mu) / np.sum(mu**2), 1e-6))
    nb = fit_gee(
        data,
        "gp_visits_gee_negbin",
        "gp_visits",
        Family("negbin", alpha),
        engine=engine,
        method="GEE negative binomial (variance mu + alpha mu^2, alpha by moments from the "
        "Poisson fit), log link, exchangeable, robust SEs; exp(estimate) are rate ratios",
        extra={"negbin_alpha": alpha},
    )
    return pois, nb


def fit_lonely(data: ModelData, *, engine: str = "fast") -> ModelResult:
    """Loneliness 'often/always' (lonely == 5) by binary logistic GEE."""
    y = (data.frame["lonely"].to_numpy(dtype=float) == 5).astype(float)
    return fit_gee(
        data,
        "lonely_gee",
        "lonely",
        Family("binomial"),
        y=y,
        engine=engine,
        method="GEE logistic for feeling lonely often/always (lonely = 5), exchangeable, robust "
        "SEs; exp(estimate) are odds ratios",
        extra={"outcome_definition": "lonely == 5 (often/always) vs 1-4"},
    )


def fit_response(data: ModelData) -> tuple[ModelResult, np.ndarray]:
    """Who answers at follow-up (attrition model); also returns P(respond) for every row."""
    f = data.frame
    follow = f["wave"].to_numpy() > 0
    y = f["responded"].to_numpy(dtype=float)
    rhs = RESPONSE_RHS if data.n_sites > 1 else RESPONSE_RHS.replace(" + C(site)", "")
    res = fit_gee(
        data,
        "response_logit",
        "responded",
        Family("binomial"),
        y=y,
        mask=follow,
        rhs=rhs,
        method="GEE logistic for answering at 6 and 12 months (all patients), exchangeable within "
        "patient, robust SEs; exp(estimate) are odds ratios of responding",
    )
    x, names, _ = data.subset(rhs, follow)
    prob = np.ones(len(f))
    prob[follow] = special.expit(x @ res.params)
    return res, prob


def fit_ipw(data: ModelData, prob: np.ndarray, outcome: str = "life_satisfaction") -> ModelResult:
    """Inverse-probability-of-response weighted fit of the primary mean model."""
    mask = data.rows(outcome)
    x, names, groups = data.subset(PRIMARY_RHS, mask)
    y = data.frame[outcome].to_numpy(dtype=float)[mask]
    w = 1.0 / prob[mask]
    fit = fit_weighted_linear(y, x, groups, names, w)
    return ModelResult(
        name=f"{outcome}_ipw",
        formula=f"{outcome} ~ {PRIMARY_RHS}",
        method="Weighted least squares with weights 1/P(respond) from response_logit, "
        "cluster-robust SEs by patient (= statsmodels GEE, independence, weights)",
        n_obs=fit.n_obs,
        n_groups=fit.n_groups,
        converged=True,
        names=names,
        params=fit.params,
        cov=fit.cov_robust,
        extra={"max_weight": float(w.max()), "mean_weight": float(w.mean())},
    )


def fit_mice(
    data: ModelData,
    outcome: str = "life_satisfaction",
    *,
    imputations: int = 5,
    iterations: int = 5,
    seed: int = 20260,
) -> ModelResult:
    """Multiple imputation by chained equations of the outcome at each wave, then the primary
    mixed model on each completed dataset, pooled by Rubin's rules.

    Each wave's value is imputed from the other two waves and pattern, age, gender, IMD
    quintile and sessions by Bayesian normal linear regression (R mice's "norm" method).
    """
    f = data.frame
    rng = np.random.default_rng(seed)
    n_pat = int(data.groups[-1]) + 1
    wave_idx = np.searchsorted(np.array([0, 6, 12]), f["wave"].to_numpy())
    y_long = f[outcome].to_numpy(dtype=float).copy()
    y_long[f["responded"].to_numpy() != 1] = np.nan
    wide = np.full((n_pat, 3), np.nan)
    wide[data.groups, wave_idx] = y_long
    first = np.r_[0, np.flatnonzero(np.diff(data.groups)) + 1]
    pat = f.iloc[first]
    cov_cols = [np.ones(n_pat), pat["age"].to_numpy(float), pat["sessions"].to_numpy(float)]
    for col in ("pattern", "gender", "imd_quintile"):
        dummies = pd.get_dummies(pat[col].astype(str), drop_first=True, dtype=float)
        cov_cols.extend(dummies.to_numpy().T)
    z = np.column_stack(cov_cols)
    missing = np.isnan(wide)
    design = data.design(PRIMARY_RHS)
    x_all, names, groups = design.exog, design.names, data.groups
    has_row = np.zeros((n_pat, 3), dtype=bool)
    has_row[data.groups, wave_idx] = True
    grouped = GroupedExog(x_all, groups)
    # The covariate block of each wave's imputation model is fixed: precompute its products.
    blocks = []
    for j in range(3):
        obs = np.flatnonzero(~missing[:, j])
        mis = np.flatnonzero(missing[:, j])
        zo = z[obs]
        blocks.append((obs, mis, zo, zo.T @ zo, zo.T @ wide[obs, j], wide[obs, j], z[mis]))
    start = np.nanmean(wide, axis=0)
    estimates, covs = [], []
    for _ in range(imputations):
        cols = [np.where(missing[:, j], start[j], wide[:, j]) for j in range(3)]
        for _ in range(iterations):
            for j in range(3):
                obs, mis, zo, ztz, zty, yo, zm = blocks[j]
                if len(mis) == 0:
                    continue
                others = [k for k in range(3) if k != j]
                cols[j][mis] = _draw_norm(
                    zo,
                    ztz,
                    zty,
                    np.column_stack([cols[k][obs] for k in others]),
                    yo,
                    zm,
                    np.column_stack([cols[k][mis] for k in others]),
                    rng,
                )
        filled = np.column_stack(cols)
        y_imp = filled[data.groups, wave_idx]
        fit = fit_random_intercept(y_imp, x_all, groups, names, sums=grouped.sums(y_imp))
        estimates.append(fit.params)
        covs.append(fit.cov_params)
    est = np.array(estimates)
    qbar = est.mean(axis=0)
    within = np.mean(covs, axis=0)
    between = np.cov(est, rowvar=False, ddof=1) if imputations > 1 else np.zeros_like(within)
    total = within + (1 + 1 / imputations) * between
    return ModelResult(
        name=f"{outcome}_mice",
        formula=f"{outcome} ~ {PRIMARY_RHS}",
        method=f"Multiple imputation by chained equations ({imputations} imputations, "
        f"{iterations} iterations, Bayesian normal regression on the other waves and "
        "covariates), primary mixed model on each, Rubin's rules",
        n_obs=len(y_imp),
        n_groups=n_pat,
        converged=True,
        names=names,
        params=qbar,
        cov=total,
        extra={"imputations": imputations, "missing_values_imputed": int(missing[has_row].sum())},
    )


def _draw_norm(zo, ztz, zty, fo, yo, zm, fm, rng) -> np.ndarray:
    """One draw from the posterior predictive of a normal linear regression (flat prior)
    of y on [z, f], from precomputed products of the fixed block z."""
    ztf = zo.T @ fo
    xtx = np.block([[ztz, ztf], [ztf.T, fo.T @ fo]])
    xty = np.r_[zty, fo.T @ yo]
    beta = np.linalg.solve(xtx, xty)
    k = zo.shape[1]
    resid = yo - zo @ beta[:k] - fo @ beta[k:]
    dof = max(len(yo) - len(beta), 1)
    sigma2 = resid @ resid / rng.chisquare(dof)
    chol = np.linalg.cholesky(np.linalg.inv(xtx) * sigma2)
    b = beta + chol @ rng.standard_normal(len(beta))
    return zm @ b[:k] + fm @ b[k:] + rng.normal(0.0, np.sqrt(sigma2), size=len(zm))


def fit_dose(data: ModelData, outcome: str = "life_satisfaction") -> ModelResult:
    """Sessions as a continuous exposure: change per extra session, within pattern."""
    res = fit_mixed(data, outcome, rhs=DOSE_RHS, name="sessions_dose")
    return _with(
        res,
        method=res.method + "; sessions x wave terms give the change from "
        "baseline per extra link-worker session",
    )


def fit_all(
    data: ModelData,
    *,
    progress: Callable[[str], None] | None = None,
    mice_imputations: int = 5,
) -> dict[str, ModelResult]:
    """Every model of DESIGN section 7, by name, in report order."""
    out: dict[str, ModelResult] = {}
    note = progress or (lambda _msg: None)
    for outcome in ONS4:
        note(f"{outcome}_mixed")
        out[f"{outcome}_mixed"] = fit_mixed(data, outcome)
    note("lonely_gee")
    out["lonely_gee"] = fit_lonely(data)
    note("gp_visits_gee_poisson / negbin")
    pois, nb = fit_gp_models(data)
    out[pois.name] = pois
    out[nb.name] = nb
    note("response_logit")
    resp, prob = fit_response(data)
    out[resp.name] = resp
    note("life_satisfaction_mixed_site")
    site = fit_site_sensitivity(data)
    out[site.name] = site
    note("life_satisfaction_ipw")
    out["life_satisfaction_ipw"] = fit_ipw(data, prob)
    note("life_satisfaction_mice")
    out["life_satisfaction_mice"] = fit_mice(data, imputations=mice_imputations)
    note("sessions_dose")
    out["sessions_dose"] = fit_dose(data)
    return out
