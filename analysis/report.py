"""report.html (self-contained: tables and inline PNG figures), results.json and CSV tables."""

from __future__ import annotations

import base64
import html
import io
import json
import platform
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis import messages  # noqa: E402
from analysis.results import ModelResult  # noqa: E402

PATTERN_COLOURS = {"rapid": "#1b9e77", "anchored": "#d95f02", "with_only": "#7570b3"}
OUTCOME_LABELS = {
    "life_satisfaction": "Life satisfaction (0-10)",
    "worthwhile": "Worthwhile (0-10)",
    "happy": "Happy yesterday (0-10)",
    "anxious": "Anxious yesterday (0-10)",
    "lonely": "Loneliness (1 never - 5 often/always)",
    "gp_visits": "GP contacts in last 6 months",
}


def software_versions() -> dict[str, str]:
    import matplotlib as mpl
    import scipy
    import statsmodels

    return {
        "python": platform.python_version(),
        "statsmodels": statsmodels.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "matplotlib": mpl.__version__,
    }


def results_json(
    models: dict[str, ModelResult], contrasts: list[dict], meta: dict[str, Any]
) -> dict:
    """The DESIGN section 7 shape: {"models": {NAME: {...}}, "contrasts": [...]} plus metadata."""
    return {
        "models": {name: res.to_json() for name, res in models.items()},
        "contrasts": [_clean_row(r) for r in contrasts],
        "meta": meta,
    }


def _clean_row(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not np.isfinite(v):
            v = None
        out[k] = v
    return out


def coefficients_table(models: dict[str, ModelResult]) -> pd.DataFrame:
    frames = []
    for name, res in models.items():
        t = res.table()
        t.insert(0, "model", name)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def trajectory_figure(means: pd.DataFrame) -> str:
    """Means and 95% CIs by pattern over waves, one panel per outcome (suppressed cells omitted)."""
    outcomes = [o for o in OUTCOME_LABELS if o in set(means["outcome"])]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), sharex=True)
    for ax, outcome in zip(axes.flat, outcomes, strict=False):
        sub = means[means["outcome"] == outcome]
        for i, (pattern, colour) in enumerate(PATTERN_COLOURS.items()):
            s = sub[(sub["pattern"] == pattern)]
            s = s[pd.to_numeric(s["mean"], errors="coerce").notna()]
            if s.empty:
                continue
            x = s["wave"].to_numpy(dtype=float) + (i - 1) * 0.25
            m = s["mean"].to_numpy(dtype=float)
            lo = s["ci_low"].to_numpy(dtype=float)
            hi = s["ci_high"].to_numpy(dtype=float)
            ax.errorbar(
                x, m, yerr=[m - lo, hi - m], marker="o", capsize=3, color=colour, label=pattern
            )
        ax.set_title(OUTCOME_LABELS[outcome], fontsize=10)
        ax.set_xticks([0, 6, 12])
        ax.set_xlabel("months after discharge (0 = referral)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(outcomes) :]:
        ax.axis("off")
    axes.flat[0].legend(title="pattern", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def funnel_figure(funnel: pd.DataFrame) -> str:
    sub = funnel[funnel["pattern"] != "all"].copy()
    sub["pct"] = pd.to_numeric(sub["percent_of_enrolled"], errors="coerce")
    steps = list(dict.fromkeys(funnel["step"]))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    height = 0.25
    for i, (pattern, colour) in enumerate(PATTERN_COLOURS.items()):
        s = sub[sub["pattern"] == pattern].set_index("step").reindex(steps)
        y = np.arange(len(steps)) + (i - 1) * height
        ax.barh(y, s["pct"].fillna(0).to_numpy(), height=height, color=colour, label=pattern)
    ax.set_yticks(np.arange(len(steps)))
    ax.set_yticklabels(steps)
    ax.invert_yaxis()
    ax.set_xlabel("% of enrolled patients")
    ax.set_xlim(0, 100)
    ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def coefficient_figure(models: dict[str, ModelResult]) -> str:
    """Pattern x wave terms of the primary life-satisfaction model and its sensitivity fits."""
    names = [
        n
        for n in (
            "life_satisfaction_mixed",
            "life_satisfaction_mixed_site",
            "life_satisfaction_ipw",
            "life_satisfaction_mice",
        )
        if n in models
    ]
    primary = models[names[0]]
    terms = [t for t in primary.names if t != "Intercept" and ("pattern" in t or "wave" in t)]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(terms) * 1.2 + 1.2))
    offsets = np.linspace(-0.3, 0.3, len(names)) if len(names) > 1 else [0.0]
    for off, name in zip(offsets, names, strict=True):
        t = models[name].table().set_index("term")
        present = [k for k in terms if k in t.index]
        y = np.array([terms.index(k) for k in present]) + off
        est = t.loc[present, "estimate"].to_numpy()
        ax.errorbar(
            est,
            y,
            xerr=[est - t.loc[present, "ci_low"], t.loc[present, "ci_high"] - est],
            fmt="o",
            capsize=2,
            label=name,
            markersize=4,
        )
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(terms)))
    ax.set_yticklabels([_short(t) for t in terms], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("coefficient (points on the 0-10 scale) with 95% CI")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _short(term: str) -> str:
    return term.replace("C(pattern, Treatment('rapid'))", "pattern").replace(
        "C(wave, Treatment(0))", "wave"
    )


def _table_html(frame: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    def fmt(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, float | np.floating):
            return floatfmt.format(v)
        return str(v)

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.85em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.note{background:#fff8e1;padding:.6em 1em;border-left:4px solid #f0b400}
.warn{background:#fde7e7;border-left-color:#c62828}img{max-width:100%}code{font-size:.9em}
details{margin:.3em 0 1em}summary{cursor:pointer;font-weight:600}
"""


def methods_text(models: dict[str, ModelResult], versions: dict[str, str]) -> str:
    items = "".join(
        f"<li><b>{html.escape(name)}</b>: {html.escape(res.method)}. Formula "
        f"<code>{html.escape(res.formula)}</code>; {res.n_obs:,} observations"
        + (f", {res.n_groups:,} patients" if res.n_groups else "")
        + ("" if res.converged else " <b>(did not converge)</b>")
        + ".</li>"
        for name, res in models.items()
    )
    soft = ", ".join(f"{k} {v}" for k, v in versions.items())
    return (
        "<p>Outcomes are analysed in long format, one row per patient and wave (0 = baseline at "
        "referral, 6 and 12 months after discharge), using the rows where the patient answered. "
        "Reference levels: pattern <code>rapid</code>, wave <code>0</code>. Confidence intervals "
        "are Wald 95% intervals; p-values are two-sided. Linear mixed models are fitted by exact "
        "profiled REML computed from per-patient sums (numerically identical to statsmodels "
        "MixedLM, which the test suite checks to 1e-6); GEEs with an exchangeable working "
        "correlation are computed from per-patient sums with statsmodels' estimating equations and "
        "robust (sandwich) standard errors. Terms are named as statsmodels names them.</p>"
        f"<ul>{items}</ul><p>Software: {html.escape(soft)}.</p>"
    )


def render_html(
    *,
    title: str,
    summary: dict[str, Any],
    tables: dict[str, pd.DataFrame],
    models: dict[str, ModelResult],
    contrasts: pd.DataFrame,
    versions: dict[str, str],
    suppression: bool,
) -> str:
    means = tables["outcome_means"]
    note = messages.SUPPRESSION_NOTE if suppression else messages.NO_SUPPRESSION_NOTE
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<ul>"
        + "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in summary.items())
        + "</ul>",
        f"<p class='note{'' if suppression else ' warn'}'>{html.escape(note)}</p>",
        "<h2>Response</h2>",
        f"<img alt='Response funnel by pattern' src='{funnel_figure(tables['response_funnel'])}'>",
        _table_html(tables["response_funnel"], "{:.1f}"),
        "<h3>Response rates by wave and pattern</h3>",
        _table_html(tables["response_rates"]),
        "<h2>Outcomes by pattern over time</h2>",
        f"<img alt='Trajectories by pattern with 95% CIs' src='{trajectory_figure(means)}'>",
        "<details><summary>Means with 95% confidence intervals</summary>",
        _table_html(means),
        "</details>",
        "<h2>Change from baseline and differences between patterns</h2>",
        "<p>Estimated from each model's pattern x wave terms. For GEE models with a log or logit "
        "link the ratio columns give the ratio of rate ratios (GP contacts) or odds ratios "
        "(loneliness often/always).</p>",
        _table_html(contrasts),
        "<h2>Coefficients</h2>",
        f"<img alt='Coefficient plot' src='{coefficient_figure(models)}'>",
    ]
    for name, res in models.items():
        t = res.table()
        parts.append(
            f"<details><summary>{html.escape(name)} (n = {res.n_obs:,}"
            + (f", {res.n_groups:,} patients" if res.n_groups else "")
            + f"{'' if res.converged else ', NOT CONVERGED'})</summary>"
            f"<p>{html.escape(res.method)}<br><code>{html.escape(res.formula)}</code></p>"
            + _table_html(t, "{:.4f}")
            + "</details>"
        )
    parts += ["<h2>Methods</h2>", methods_text(models, versions), "</body></html>"]
    return "\n".join(parts)


def write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, allow_nan=False), encoding="utf-8")
