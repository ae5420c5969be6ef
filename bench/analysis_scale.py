"""Analysis benchmark: `tracker analyse` end to end and each model alone, at 10,000, 100,000 and
1,000,000 simulated patients, with the ratio to stock statsmodels on the same data in the same run.

For each size a cohort is simulated once and written to Parquet (not timed). Then, each in its
own child process so that every peak RSS (ru_maxrss) is its own:

  whole   `python -m analysis.cli PATH --out DIR` (what `tracker analyse` runs): read Parquet,
          validate, descriptives, every model, contrasts, report.html, results.json, CSVs;
          wall seconds counted from interpreter start, CPU seconds, peak RSS;
  models  each model alone on the loaded data (fast paths, as the report uses them), then, where
          it finishes in reasonable time (default: 10,000 patients), the same model with stock
          statsmodels (`MixedLM.from_formula(...).fit(reml=True)`, `GEE.from_formula(...)` with
          an exchangeable structure) and the largest difference between the two fits.

    python -m bench.analysis_scale [--sizes 10000,100000,1000000] [--runs 3] [--stock-max 10000]

Writes bench/results/analysis_scale.json and .md (medians of the runs). The machine is shared,
so the load average at start and end is recorded with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()  # the whole-analysis child counts from here

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = HERE / "results"
SEED = 20261126


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# --- children -------------------------------------------------------------------------------


def child_whole(path: str, out: str, started: float) -> dict[str, Any]:
    from analysis.cli import app

    app(["run", path, "--out", out, "--quiet"], standalone_mode=False)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": _cpu(),
        "peak_rss_mib": _rss_mib(),
    }


def _timed(fn, repeats: int):
    """Median wall seconds, median CPU seconds (all threads of this process), last result."""
    times, cpus, result = [], [], None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return (statistics.median(times), statistics.median(cpus)), result


def child_models(path: str, repeats: int, stock: bool) -> dict[str, Any]:
    import numpy as np

    from analysis import models as m
    from analysis.dataset import load_study

    t = time.perf_counter()
    study = load_study(path)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    data = m.ModelData(study.outcomes)
    data.design(m.PRIMARY_RHS)
    prep_s = time.perf_counter() - t
    out: dict[str, Any] = {"load_validate_seconds": load_s, "prepare_seconds": prep_s, "models": {}}
    _, (_resp, prob) = _timed(lambda: m.fit_response(data), 1)
    fast = {
        "life_satisfaction_mixed": lambda: m.fit_mixed(data, "life_satisfaction"),
        "lonely_gee": lambda: m.fit_lonely(data),
        "gp_visits_gee_poisson": lambda: m.fit_gee(
            data, "gp_visits_gee_poisson", "gp_visits", m.Family("poisson"), method="poisson"
        ),
        "gp_visits_gee_poisson+negbin": lambda: m.fit_gp_models(data),
        "response_logit": lambda: m.fit_response(data)[0],
        "life_satisfaction_mixed_site (site fixed effects)": lambda: m.fit_site_sensitivity(data),
        "life_satisfaction_mixed_site (site variance component)": lambda: (
            m.fit_site_variance_component(data)
        ),
        "life_satisfaction_ipw": lambda: m.fit_ipw(data, prob),
        "life_satisfaction_mice (5 imputations)": lambda: m.fit_mice(data),
        "sessions_dose": lambda: m.fit_dose(data),
    }
    fitted = {}
    for name, fn in fast.items():
        (secs, cpu), res = _timed(fn, repeats)
        fitted[name] = res
        out["models"][name] = {"fast_seconds": secs, "fast_cpu_seconds": cpu}
    if stock:
        frame = data.frame
        stock_fits = {
            "life_satisfaction_mixed": lambda: m.fit_mixed(
                data, "life_satisfaction", engine="statsmodels"
            ),
            "lonely_gee": lambda: m.fit_lonely(data, engine="statsmodels"),
            "gp_visits_gee_poisson": lambda: _stock_gee_formula(frame, data, "gp_visits"),
        }
        for name, fn in stock_fits.items():
            (secs, cpu), res = _timed(fn, 1)
            mine = fitted[name]
            out["models"][name].update(
                stock_seconds=secs,
                stock_cpu_seconds=cpu,
                ratio_stock_to_fast=secs / out["models"][name]["fast_seconds"],
                ratio_stock_to_fast_cpu=cpu / max(out["models"][name]["fast_cpu_seconds"], 1e-3),
                max_abs_diff_estimates=float(np.max(np.abs(np.asarray(res.params) - mine.params))),
            )
    out["peak_rss_mib"] = _rss_mib()
    out["cpu_seconds"] = _cpu()
    return out


def _stock_gee_formula(frame, data, outcome):
    """Stock statsmodels from the formula, as a researcher would write it (patsy included)."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    from analysis.models import PRIMARY_RHS

    sub = frame[data.rows(outcome)].copy()
    sub["pid"] = sub["pid"].cat.codes
    return smf.gee(
        f"{outcome} ~ {PRIMARY_RHS}",
        groups="pid",
        data=sub,
        family=sm.families.Poisson(),
        cov_struct=sm.cov_struct.Exchangeable(),
    ).fit()


# --- parent ---------------------------------------------------------------------------------


def _run_child(args: list[str]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.analysis_scale", "--child", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(sizes: list[int], runs: int, stock_max: int, model_repeats: int) -> dict[str, Any]:
    from analysis.simulate import simulate_cohort

    results: dict[str, Any] = {
        "sizes": {},
        "load_average_start": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    with tempfile.TemporaryDirectory(prefix="analysis-bench-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"cohort_{n}.parquet"
            t = time.perf_counter()
            simulate_cohort(n, seed=SEED).to_parquet(path, index=False)
            simulate_s = time.perf_counter() - t
            print(f"[{n:,}] simulated and written in {simulate_s:.1f}s", flush=True)
            whole = []
            for r in range(runs if n < 1_000_000 else max(1, runs - 1)):
                res = _run_child(["whole", str(path), str(Path(tmp) / f"out_{n}_{r}")])
                print(
                    f"[{n:,}] whole analysis run {r + 1}: {res['seconds']:.1f}s wall, "
                    f"{res['cpu_seconds']:.1f}s CPU, {res['peak_rss_mib']:.0f} MiB",
                    flush=True,
                )
                whole.append(res)
            models = _run_child(
                [
                    "models",
                    str(path),
                    str(model_repeats if n < 1_000_000 else 1),
                    "1" if n <= stock_max else "0",
                ]
            )
            for name, row in models["models"].items():
                extra = (
                    f", stock {row['stock_seconds']:.1f}s (x{row['ratio_stock_to_fast']:.0f})"
                    if "stock_seconds" in row
                    else ""
                )
                print(f"[{n:,}] {name}: {row['fast_seconds']:.2f}s{extra}", flush=True)
            results["sizes"][str(n)] = {
                "patients": n,
                "rows": 3 * n,
                "simulate_and_write_seconds": simulate_s,
                "whole_runs": whole,
                "whole_seconds_median": statistics.median(r["seconds"] for r in whole),
                "whole_cpu_seconds_median": statistics.median(r["cpu_seconds"] for r in whole),
                "whole_peak_rss_mib_max": max(r["peak_rss_mib"] for r in whole),
                "models": models,
            }
    results["load_average_end"] = os.getloadavg()
    return results


def write(results: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "analysis_scale.json").write_text(json.dumps(results, indent=2))
    lines = [
        "# Analysis at scale (simulated cohorts, 3 rows per patient)",
        "",
        f"{results['cpus']} CPUs (shared machine); load average at start "
        f"{', '.join(f'{x:.1f}' for x in results['load_average_start'])}, at end "
        f"{', '.join(f'{x:.1f}' for x in results['load_average_end'])}. Python {results['python']}.",
        "",
        "## Whole analysis (`python -m analysis.cli PATH --out DIR`, i.e. `tracker analyse`)",
        "",
        "| patients | wall s (median) | CPU s (median) | peak RSS MiB | runs (wall s) |",
        "|---:|---:|---:|---:|---|",
    ]
    for s in results["sizes"].values():
        runs = ", ".join(f"{r['seconds']:.1f}" for r in s["whole_runs"])
        lines.append(
            f"| {s['patients']:,} | {s['whole_seconds_median']:.1f} | "
            f"{s['whole_cpu_seconds_median']:.1f} | {s['whole_peak_rss_mib_max']:.0f} | {runs} |"
        )
    lines += [
        "",
        "## Each model alone (fast path; stock statsmodels where run)",
        "",
        "| patients | model | fast wall s | fast CPU s | stock wall s | stock CPU s | "
        "stock / fast (wall) | stock / fast (CPU) | max abs diff |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def fmt(row: dict, key: str, spec: str, suffix: str = "") -> str:
        return f"{row[key]:{spec}}{suffix}" if key in row else "-"

    for s in results["sizes"].values():
        for name, row in s["models"]["models"].items():
            cells = [
                fmt(row, "fast_seconds", ".2f"),
                fmt(row, "fast_cpu_seconds", ".2f"),
                fmt(row, "stock_seconds", ".1f"),
                fmt(row, "stock_cpu_seconds", ".1f"),
                fmt(row, "ratio_stock_to_fast", ".0f", "x"),
                fmt(row, "ratio_stock_to_fast_cpu", ".0f", "x"),
                fmt(row, "max_abs_diff_estimates", ".1e"),
            ]
            lines.append(f"| {s['patients']:,} | {name} | " + " | ".join(cells) + " |")
        lines.append(
            f"| {s['patients']:,} | (load + validate Parquet) | "
            f"{s['models']['load_validate_seconds']:.2f} | | | | | | |"
        )
    lines += [
        "",
        "CPU seconds count every thread of the process (numpy's BLAS uses both cores), so on a "
        "shared machine they are the stable figure; wall seconds include waiting for a CPU "
        "(see the load averages above).",
        "",
        "Stock statsmodels is run only at sizes where it finishes in reasonable time "
        "(MixedLM is quadratic-ish in patients; the site variance-component MixedLM takes "
        "minutes even at a few hundred patients and is not run). The max abs diff column "
        "compares the estimates of the stock and fast fits on the same data.",
        "",
    ]
    (RESULTS / "analysis_scale.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        kind = argv[1]
        if kind == "whole":
            res = child_whole(argv[2], argv[3], STARTED)
        else:
            res = child_models(argv[2], int(argv[3]), argv[4] == "1")
        print(json.dumps(res))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--stock-max", type=int, default=10000)
    p.add_argument("--model-repeats", type=int, default=3)
    a = p.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",")]
    results = measure(sizes, a.runs, a.stock_max, a.model_repeats)
    write(results)
    print((RESULTS / "analysis_scale.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
