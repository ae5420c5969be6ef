"""Plain result objects shared by the models, contrasts and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class ModelResult:
    """One fitted model: estimates keyed by statsmodels' term names, Wald 95% CIs.

    `exponentiate` marks models whose coefficients are log rate ratios or log odds ratios; the
    report shows them exponentiated, results.json keeps the linear-predictor scale as
    statsmodels does (with `exp_estimate`, `exp_ci_low`, `exp_ci_high` added).
    """

    name: str
    formula: str
    method: str
    n_obs: int
    n_groups: int | None
    converged: bool
    names: list[str]
    params: np.ndarray
    cov: np.ndarray
    exponentiate: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bse(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def table(self) -> pd.DataFrame:
        se = self.bse
        z = self.params / se
        frame = pd.DataFrame(
            {
                "term": self.names,
                "estimate": self.params,
                "se": se,
                "ci_low": self.params - Z95 * se,
                "ci_high": self.params + Z95 * se,
                "p": 2 * stats.norm.sf(np.abs(z)),
            }
        )
        if self.exponentiate:
            frame["exp_estimate"] = np.exp(frame["estimate"])
            frame["exp_ci_low"] = np.exp(frame["ci_low"])
            frame["exp_ci_high"] = np.exp(frame["ci_high"])
        return frame

    def to_json(self) -> dict[str, Any]:
        params = {}
        for row in self.table().to_dict("records"):
            term = row.pop("term")
            params[term] = {k: _clean(v) for k, v in row.items()}
        out: dict[str, Any] = {
            "formula": self.formula,
            "n_obs": int(self.n_obs),
            "n_groups": None if self.n_groups is None else int(self.n_groups),
            "converged": bool(self.converged),
            "method": self.method,
            "params": params,
        }
        out.update({k: _clean(v) for k, v in self.extra.items()})
        return out

    def estimate(self, term: str) -> float:
        return float(self.params[self.names.index(term)])


def _clean(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    return v
