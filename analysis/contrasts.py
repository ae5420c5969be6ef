"""Contrasts researchers ask for, from a fitted pattern x wave model.

Change from baseline at 6 and 12 months within each pattern, and differences in that change
between patterns, as linear combinations L beta with variance L C L' from the fitted
covariance of the fixed effects. For log-link models the contrast is also given as a ratio
(ratio of rate ratios / odds ratios).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from analysis.results import Z95, ModelResult

PATTERN = "C(pattern, Treatment('rapid'))"
WAVE = "C(wave, Treatment(0))"
PATTERNS = ("rapid", "anchored", "with_only")


def _change_vector(res: ModelResult, pattern: str, wave: int) -> np.ndarray | None:
    lv = np.zeros(len(res.names))
    main = f"{WAVE}[T.{wave}]"
    if main not in res.names:
        return None
    lv[res.names.index(main)] = 1.0
    if pattern != "rapid":
        inter = f"{PATTERN}[T.{pattern}]:{WAVE}[T.{wave}]"
        if inter not in res.names:
            return None
        lv[res.names.index(inter)] = 1.0
    return lv


def _row(
    res: ModelResult,
    lv: np.ndarray,
    kind: str,
    label: str,
    pattern: str,
    wave: int,
    versus: str | None,
) -> dict:
    est = float(lv @ res.params)
    se = float(np.sqrt(lv @ res.cov @ lv))
    lo, hi = est - Z95 * se, est + Z95 * se
    row = {
        "model": res.name,
        "contrast": label,
        "kind": kind,
        "pattern": pattern,
        "versus": versus,
        "wave": wave,
        "estimate": est,
        "se": se,
        "ci_low": lo,
        "ci_high": hi,
        "p": float(2 * stats.norm.sf(abs(est / se))) if se > 0 else None,
        "scale": "log ratio" if res.exponentiate else "difference",
    }
    if res.exponentiate:
        row.update(
            ratio=float(np.exp(est)),
            ratio_ci_low=float(np.exp(lo)),
            ratio_ci_high=float(np.exp(hi)),
        )
    return row


def pattern_wave_contrasts(res: ModelResult) -> list[dict]:
    """All within-pattern changes and between-pattern differences in change for one model."""
    rows: list[dict] = []
    for wave in (6, 12):
        vectors = {}
        for pattern in PATTERNS:
            lv = _change_vector(res, pattern, wave)
            if lv is None:
                continue
            vectors[pattern] = lv
            rows.append(
                _row(res, lv, "change", f"{pattern}: month {wave} - baseline", pattern, wave, None)
            )
        for i, a in enumerate(PATTERNS):
            for b in PATTERNS[i + 1 :]:
                if a in vectors and b in vectors:
                    lv = vectors[b] - vectors[a]
                    rows.append(
                        _row(
                            res,
                            lv,
                            "difference in change",
                            f"{b} vs {a}: change to month {wave}",
                            b,
                            wave,
                            a,
                        )
                    )
    return rows
