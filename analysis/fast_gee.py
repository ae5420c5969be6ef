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
    compress: bool | None = None,
) -> GeeFit:
    """GEE with exchangeable working correlation; `groups` are cluster codes, any order.

    `ddof` is statsmodels' `ddof_scale` for the correlation's moment estimator: None means the
    number of columns (statsmodels' default); 0 reproduces R's geepack.
    `compress` (default: automatic) pools clusters whose design rows are identical, see
    `_fit_by_cluster_type`; the result is the same, only faster.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(exog, dtype=float)
    groups = np.asarray(groups)
    if np.any(groups[1:] < groups[:-1]):
        order = np.argsort(groups, kind="stable")
        y, x, groups = y[order], x[order], groups[order]
    if not np.all(np.isfinite(y)):
        raise ValueError("the outcome has missing or infinite values; select answered rows first")
    n_obs, p = x.shape
    starts = _starts(groups)
    if compress is not False:
        typed = _cluster_types(x, starts, n_obs, allow_many=bool(compress))
        if typed is not None:
            return _fit_by_cluster_type(
                y,
                typed,
                names,
                family,
                tol=tol,
                maxiter=maxiter,
                ddof=p if ddof is None else ddof,
                n_obs=n_obs,
            )
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
    z = _link_start(y, family)
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


@dataclass(frozen=True)
class _Types:
    """Clusters pooled by type: same number of rows and identical design rows, in order."""

    xt: np.ndarray  # (T, m, p) design rows of each type, zero-padded
    mask: np.ndarray  # (T, m) slot present
    slot: tuple[np.ndarray, np.ndarray]  # (cluster, position) of every row
    tix: np.ndarray  # type of every cluster
    counts: np.ndarray  # clusters per type
    n_clusters: int


def _cluster_types(
    x: np.ndarray, starts: np.ndarray, n_obs: int, *, allow_many: bool
) -> _Types | None:
    """Find cluster types, or None when pooling would not pay (or clusters are large)."""
    sizes = np.diff(np.r_[starts, n_obs])
    m = int(sizes.max())
    if m > 6:
        return None
    # Identical rows get identical random projections; checked exactly below.
    proj = x @ np.random.default_rng(12345).standard_normal(x.shape[1])
    uniq, row_key = np.unique(proj, return_inverse=True)
    first = np.zeros(len(uniq), dtype=np.int64)
    first[row_key[::-1]] = np.arange(n_obs)[::-1]
    if not np.array_equal(x[first][row_key], x):
        return None
    cluster = np.repeat(np.arange(len(starts)), sizes)
    pos = np.arange(n_obs) - starts[cluster]
    keys = np.full((len(starts), m), -1, dtype=np.int64)
    keys[cluster, pos] = row_key
    base = len(uniq) + 1
    if base**m < 2**62:  # one integer per cluster: a 1-D unique is much faster than axis=0
        code = np.zeros(len(starts), dtype=np.int64)
        for j in range(m):
            code = code * base + (keys[:, j] + 1)
        _, first_cluster, tix = np.unique(code, return_index=True, return_inverse=True)
        type_keys = keys[first_cluster]
    else:
        type_keys, tix = np.unique(keys, axis=0, return_inverse=True)
    tix = tix.ravel()
    if not allow_many and len(type_keys) > 0.5 * len(starts):
        return None
    mask = type_keys >= 0
    xt = np.where(mask[:, :, None], x[first][np.maximum(type_keys, 0)], 0.0)
    return _Types(
        xt=xt,
        mask=mask,
        slot=(cluster, pos),
        tix=tix,
        counts=np.bincount(tix, minlength=len(type_keys)).astype(float),
        n_clusters=len(starts),
    )


def _fit_by_cluster_type(y, typed: _Types, names, family: Family, *, tol, maxiter, ddof, n_obs):
    """The same estimating equations and sandwich as the row-wise path, summed per type.

    Within a type every cluster has the same design, hence the same means and weights; only y
    differs, and every sum the GEE needs is a function of the per-type totals of y (S1) and of
    its within-cluster cross-products (S2).
    """
    t_count, m = typed.mask.shape
    p = typed.xt.shape[2]
    ypad = np.zeros((typed.n_clusters, m))
    ypad[typed.slot] = y
    s1 = np.stack(
        [np.bincount(typed.tix, weights=ypad[:, j], minlength=t_count) for j in range(m)], 1
    )
    s2 = np.empty((t_count, m, m))
    for j in range(m):
        for k in range(j, m):
            s2[:, j, k] = np.bincount(typed.tix, weights=ypad[:, j] * ypad[:, k], minlength=t_count)
            s2[:, k, j] = s2[:, j, k]
    n_t = typed.counts
    mask = typed.mask.astype(float)
    size_t = mask.sum(axis=1)
    n_pairs = float(n_t @ (size_t * (size_t - 1) / 2))
    xt = typed.xt

    def state(beta):
        mu, dmu = family.mean(np.einsum("tmp,p->tm", xt, beta))
        mu = np.where(typed.mask, mu, 0.5)  # harmless value in empty slots
        sd = np.sqrt(family.variance(mu))
        d = np.where(typed.mask, dmu / sd, 0.0)
        xs = xt * d[:, :, None]
        r_sum = np.where(typed.mask, (s1 - n_t[:, None] * mu) / sd, 0.0)
        centred = (
            s2
            - mu[:, :, None] * s1[:, None, :]
            - s1[:, :, None] * mu[:, None, :]
            + n_t[:, None, None] * mu[:, :, None] * mu[:, None, :]
        )
        q = centred / (sd[:, :, None] * sd[:, None, :]) * (mask[:, :, None] * mask[:, None, :])
        return xs, r_sum, q

    def bread(xs, c, alpha):
        sx = xs.sum(axis=1)
        flat = xs.reshape(-1, p)
        b = (flat * np.repeat(n_t, m)[:, None]).T @ flat - (sx * (n_t * c)[:, None]).T @ sx
        return b / (1.0 - alpha), sx

    # Starting values as in the row-wise path (least squares on the link scale), from type sums.
    z = _link_start(ypad, family)
    zsum = np.stack(
        [np.bincount(typed.tix, weights=z[:, j], minlength=t_count) for j in range(m)], 1
    )
    flat = xt.reshape(-1, p)
    xtx0 = (flat * (np.repeat(n_t, m) * mask.ravel())[:, None]).T @ flat
    beta = np.linalg.solve(xtx0, flat.T @ (zsum * mask).ravel())
    alpha = 0.0
    converged = False
    it = 0
    xs, r_sum, q = state(beta)
    for it in range(1, maxiter + 1):  # noqa: B007
        c = alpha / (1.0 - alpha + size_t * alpha)
        bmat, sx = bread(xs, c, alpha)
        score = (np.einsum("tmp,tm->p", xs, r_sum) - sx.T @ (c * r_sum.sum(axis=1))) / (1.0 - alpha)
        step = np.linalg.solve(bmat, score)
        beta = beta + step
        xs, r_sum, q = state(beta)
        ssr = float(np.einsum("tmm->", q))
        scale_ex = ssr / (n_obs - ddof)
        pair_sum = 0.5 * (float(q.sum()) - ssr)
        new_alpha = (pair_sum / scale_ex) / (n_pairs - ddof) if n_pairs > ddof else 0.0
        new_alpha = float(np.clip(new_alpha, -1.0 / max(size_t.max() - 1.0, 1.0) + 1e-6, 0.999))
        delta = max(float(np.max(np.abs(step) / (1.0 + np.abs(beta)))), abs(new_alpha - alpha))
        alpha = new_alpha
        if not np.all(np.isfinite(beta)):
            break
        if delta < tol:
            converged = True
            break
    c = alpha / (1.0 - alpha + size_t * alpha)
    bmat, sx = bread(xs, c, alpha)
    lmat = (xs.transpose(0, 2, 1) - c[:, None, None] * sx[:, :, None] * mask[:, None, :]) / (
        1.0 - alpha
    )
    lq = np.einsum("tpm,tmn->tpn", lmat, q)
    meat = lq.transpose(0, 2, 1).reshape(-1, p).T @ lmat.transpose(0, 2, 1).reshape(-1, p)
    bmati = np.linalg.inv(bmat)
    ssr = float(np.einsum("tmm->", q))
    scale = ssr / (n_obs - p) if family.estimates_scale else 1.0
    return GeeFit(
        names=list(names),
        params=beta,
        cov_robust=bmati @ meat @ bmati,
        cov_naive=bmati * scale,
        dep_param=alpha,
        scale=float(scale),
        n_obs=n_obs,
        n_groups=typed.n_clusters,
        converged=converged,
        iterations=it,
    )


def _link_start(y: np.ndarray, family: Family) -> np.ndarray:
    if family.name in ("poisson", "negbin"):
        return np.log(np.maximum(y, 0.0) + 0.5)
    if family.name == "binomial":
        m = (y + 0.5) / 2.0
        return np.log(m / (1 - m))
    return y
