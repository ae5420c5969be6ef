"""Descriptive tables: response by wave and pattern, outcome means with 95% CIs, response funnel.

Small cells: `suppress` replaces counts under 5 by "<5" and blanks the statistics that rest on
them, so a shared table cannot single out a handful of people.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis import messages

OUTCOMES = ("life_satisfaction", "worthwhile", "happy", "anxious", "lonely", "gp_visits")
SMALL = 5


def response_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Patients and responders per wave x pattern (and all patterns)."""
    parts = []
    for pattern_label, sub in [("all", frame), *frame.groupby("pattern", observed=True)]:
        g = sub.groupby("wave", observed=True)["responded"].agg(["size", "sum"])
        g = g.reset_index().rename(columns={"size": "patients", "sum": "responded"})
        g.insert(0, "pattern", pattern_label)
        parts.append(g)
    out = pd.concat(parts, ignore_index=True)
    out["response_rate"] = out["responded"] / out["patients"]
    return out[["pattern", "wave", "patients", "responded", "response_rate"]]


def outcome_means(frame: pd.DataFrame, outcomes=OUTCOMES) -> pd.DataFrame:
    """Mean, SD and t-based 95% CI of each outcome by pattern x wave, among responders."""
    answered = frame[frame["responded"] == 1]
    rows = []
    grouped = answered.groupby(["pattern", "wave"], observed=True)
    for outcome in outcomes:
        agg = grouped[outcome].agg(["count", "mean", "std"]).reset_index()
        agg.insert(0, "outcome", outcome)
        rows.append(agg)
    out = pd.concat(rows, ignore_index=True).rename(columns={"count": "n", "std": "sd"})
    n = out["n"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * out["sd"].to_numpy() / np.sqrt(n)
    out["ci_low"] = out["mean"] - half
    out["ci_high"] = out["mean"] + half
    return out[["outcome", "pattern", "wave", "n", "mean", "sd", "ci_low", "ci_high"]]


def response_funnel(frame: pd.DataFrame) -> pd.DataFrame:
    """Patients at each step: enrolled, answered at 6, at 12, at both (by pattern and all)."""
    pid = frame["pid"]
    codes = pid.cat.codes.to_numpy() if hasattr(pid, "cat") else pd.factorize(pid)[0]
    _, patient = np.unique(codes, return_inverse=True)
    n_pat = int(patient.max()) + 1 if len(patient) else 0
    wave = frame["wave"].to_numpy()
    answered = frame["responded"].to_numpy() == 1
    r6 = np.zeros(n_pat, dtype=bool)
    r12 = np.zeros(n_pat, dtype=bool)
    r6[patient[answered & (wave == 6)]] = True
    r12[patient[answered & (wave == 12)]] = True
    pattern_of = np.empty(n_pat, dtype=object)
    pattern_of[patient] = frame["pattern"].astype(str).to_numpy()
    steps = {
        "enrolled (baseline at referral)": np.ones(n_pat, dtype=bool),
        "answered at 6 months": r6,
        "answered at 12 months": r12,
        "answered at both 6 and 12 months": r6 & r12,
    }
    pat = pattern_of
    rows = []
    for label in ["all", *[p for p in ("rapid", "anchored", "with_only") if (pat == p).any()]]:
        sel = np.ones(len(pat), dtype=bool) if label == "all" else pat == label
        base = int(sel.sum())
        for step, mask in steps.items():
            count = int((mask & sel).sum())
            rows.append(
                {
                    "pattern": label,
                    "step": step,
                    "patients": count,
                    "percent_of_enrolled": 100.0 * count / base if base else np.nan,
                }
            )
    return pd.DataFrame(rows)


def suppress(table: pd.DataFrame, count_cols: list[str], dependent_cols: list[str]) -> pd.DataFrame:
    """Counts of 1-4 become "<5"; statistics in the same row become empty (0 is shown)."""
    out = table.copy()
    small = np.zeros(len(out), dtype=bool)
    for col in count_cols:
        v = out[col].to_numpy(dtype=float)
        small |= (v > 0) & (v < SMALL)
    for col in count_cols:
        v = out[col].to_numpy(dtype=float)
        vals = out[col].astype(object)
        vals[(v > 0) & (v < SMALL)] = messages.SUPPRESSED
        out[col] = vals
    for col in dependent_cols:
        vals = out[col].astype(object)
        vals[small] = None
        out[col] = vals
    return out


def suppress_all(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Apply small-cell suppression to every descriptive table."""
    return {
        "response_rates": suppress(
            tables["response_rates"], ["patients", "responded"], ["response_rate"]
        ),
        "outcome_means": suppress(
            tables["outcome_means"], ["n"], ["mean", "sd", "ci_low", "ci_high"]
        ),
        "response_funnel": suppress(
            tables["response_funnel"], ["patients"], ["percent_of_enrolled"]
        ),
    }


def describe(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {
        "response_rates": response_rates(frame),
        "outcome_means": outcome_means(frame),
        "response_funnel": response_funnel(frame),
    }
