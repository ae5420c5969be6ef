"""Exchangeable-correlation GEE with per-cluster sums, vectorised over clusters.

With an exchangeable working correlation R_i = (1 - a) I + a J, its inverse is
(I - c_i J) / (1 - a) with c_i = a / (1 - a + n_i a). So every cluster term of the estimating
equations and of the sandwich covariance is a plain cross-product minus c_i-weighted products of
per-cluster column sums: one `np.add.reduceat` per iteration instead of a Python loop over
clusters. The estimator is statsmodels' `GEE(..., cov_struct=Exchangeable())`: same estimating
equations, same moment estimator of the correlation (with `ddof_scale` = number of columns),
same robust (sandwich) and naive covariances, so results agree to the convergence tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from analysis.fast_lmm import group_summer


@dataclass(frozen=True)
class Family:
    """Mean and variance functions; `estimates_scale` mirrors GEE.estimate_scale."""

    name: str
    alpha: float = 1.0  # negative-binomial ancillary parameter (variance mu + alpha mu^2)

    def mean(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """mu and dmu/deta for the canonical link of the family (log for negbin)."""
        if self.name in ("poisson", "negbin"):
            mu = np.exp(eta)
            return mu, mu
        if self.name == "binomial":
            mu = special.expit(eta)
            return mu, mu * (1.0 - mu)
        if self.name == "gaussian":
            return eta, np.ones_like(eta)
        raise ValueError(f"unknown family {self.name!r}")

    def variance(self, mu: np.ndarray) -> np.ndarray:
        if self.name == "poisson":
            return mu
        if self.name == "negbin":
            return mu + self.alpha * mu**2
        if self.name == "binomial":
            return mu * (1.0 - mu)
        return np.ones_like(mu)

    @property
    def estimates_scale(self) -> bool:
        return self.name == "gaussian"


@dataclass(frozen=True)
class GeeFit:
    names: list[str]
    params: np.ndarray
    cov_robust: np.ndarray
    cov_naive: np.ndarray
    dep_param: float  # exchangeable correlation
    scale: float
    n_obs: int
    n_groups: int
    converged: bool
    iterations: int

    @property
    def bse(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov_robust))


def _starts(groups: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])


def fit_exchangeable_gee(
    y: np.ndarray,
    exog: np.ndarray,
    groups: np.ndarray,
    names: list[str],
    family: Family,
    *,
    tol: float = 1e-10,
    maxiter: int = 200,
    ddof: int | None = None,
) -> GeeFit:
    """GEE with exchangeable working correlation; `groups` are cluster codes, any order.

    `ddof` is statsmodels' `ddof_scale` for the correlation's moment estimator: None means the
    number of columns (statsmodels' default); 0 reproduces R's geepack.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(exog, dtype=float)
    groups = np.asarray(groups)
    if np.any(groups[1:] < groups[:-1]):
        order = np.argsort(groups, kind="stable")
        y, x, groups = y[order], x[order], groups[order]
    n_obs, p = x.shape
    starts = _starts(groups)
    summer = group_summer(starts, len(groups))
    sizes = np.diff(np.r_[starts, n_obs]).astype(float)
    n_pairs = float(np.sum(sizes * (sizes - 1) / 2))
    ddof = p if ddof is None else ddof

    beta = _start_values(y, x, family)
    alpha = 0.0
    converged = False
    it = 0
    xt, rt = _standardised(y, x, beta, family)
    for it in range(1, maxiter + 1):  # noqa: B007
        sx = summer @ xt
        sr = summer @ rt
        c = alpha / (1.0 - alpha + sizes * alpha)
        bmat = (xt.T @ xt - (sx * c[:, None]).T @ sx) / (1.0 - alpha)
        score = (xt.T @ rt - sx.T @ (c * sr)) / (1.0 - alpha)
        step = np.linalg.solve(bmat, score)
        beta = beta + step
        # statsmodels' order: update the mean, then the working correlation from new residuals.
        xt, rt = _standardised(y, x, beta, family)
        sr = summer @ rt
        ssr = rt @ rt
        scale_ex = ssr / (n_obs - ddof)
        new_alpha = (0.5 * (sr @ sr - ssr) / scale_ex) / (n_pairs - ddof) if n_pairs > ddof else 0.0
        # Keep the working correlation positive definite while beta is still far off.
        new_alpha = float(np.clip(new_alpha, -1.0 / max(sizes.max() - 1.0, 1.0) + 1e-6, 0.999))
        delta = max(float(np.max(np.abs(step) / (1.0 + np.abs(beta)))), abs(new_alpha - alpha))
        alpha = new_alpha
        if delta < tol:
            converged = True
            break

    sx = summer @ xt
    sr = summer @ rt
    sxr = summer @ (xt * rt[:, None])
    c = alpha / (1.0 - alpha + sizes * alpha)
    bmat = (xt.T @ xt - (sx * c[:, None]).T @ sx) / (1.0 - alpha)
    u = (sxr - sx * (c * sr)[:, None]) / (1.0 - alpha)
    bmati = np.linalg.inv(bmat)
    cov_robust = bmati @ (u.T @ u) @ bmati
    scale = float(rt @ rt / (n_obs - p)) if family.estimates_scale else 1.0
    return GeeFit(
        names=list(names),
        params=beta,
        cov_robust=cov_robust,
        cov_naive=bmati * scale,
        dep_param=alpha,
        scale=scale,
        n_obs=n_obs,
        n_groups=len(starts),
        converged=converged,
        iterations=it,
    )


def _standardised(y, x, beta, family):
    """Rows of D scaled by 1/sd(mu), and Pearson residuals."""
    mu, dmu = family.mean(x @ beta)
    sd = np.sqrt(family.variance(mu))
    return x * (dmu / sd)[:, None], (y - mu) / sd


def _start_values(y: np.ndarray, x: np.ndarray, family: Family) -> np.ndarray:
    # Starting point on the link scale, then the GEE iterations do the rest.
    if family.name in ("poisson", "negbin"):
        z = np.log(np.maximum(y, 0.0) + 0.5)
    elif family.name == "binomial":
        m = (y + 0.5) / 2.0
        z = np.log(m / (1 - m))
    else:
        z = y
    # Normal equations: lstsq's SVD is needlessly slow on millions of rows.
    return np.linalg.solve(x.T @ x, x.T @ z)


def fit_weighted_linear(
    y: np.ndarray, exog: np.ndarray, groups: np.ndarray, names: list[str], weights: np.ndarray
) -> GeeFit:
    """Weighted least squares with a cluster-robust (sandwich) covariance.

    The same estimator as statsmodels' `GEE(..., family=Gaussian(), cov_struct=Independence(),
    weights=weights)`: used for inverse-probability-weighted fits.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(exog, dtype=float)
    w = np.asarray(weights, dtype=float)
    groups = np.asarray(groups)
    if np.any(groups[1:] < groups[:-1]):
        order = np.argsort(groups, kind="stable")
        y, x, w, groups = y[order], x[order], w[order], groups[order]
    starts = _starts(groups)
    xw = x * w[:, None]
    bmat = xw.T @ x
    beta = np.linalg.solve(bmat, xw.T @ y)
    r = y - x @ beta
    u = group_summer(starts, len(groups)) @ (xw * r[:, None])
    bmati = np.linalg.inv(bmat)
    n_obs, p = x.shape
    scale = float(np.sum(w * r * r) / np.sum(w) * n_obs / (n_obs - p))
    return GeeFit(
        names=list(names),
        params=beta,
        cov_robust=bmati @ (u.T @ u) @ bmati,
        cov_naive=bmati * scale,
        dep_param=0.0,
        scale=scale,
        n_obs=n_obs,
        n_groups=len(starts),
        converged=True,
        iterations=1,
    )
