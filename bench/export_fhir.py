"""FHIR export benchmark: `write_fhir` (questionnaire.json + questionnaire_responses.ndjson) for
100,000 and 1,000,000 patients, the current writer against the per-resource baseline.

No database: each child process builds the same synthetic `StudyDataset` in numpy/pandas
(seeded; 3 outcome rows per patient for waves 0, 6 and 12; follow-up check-ins 50% completed,
10% partial, 30% expired, 10% missed, so 90% opened; completed check-ins skip a question now
and then, partial ones stop after 1 to 7 questions, expired and missed ones have no answers;
the survey of the default settings). Then, in that child alone so its peak RSS is its own:

  baseline  `baseline_write_fhir`, the writer as it was: one `questionnaire_response` dict
            and one `json.dumps` per response;
  current   `tracker.export.formats.write_fhir`.

Only the writer is timed. The first run of each size also hashes both outputs (not timed):
the two NDJSON files must be byte for byte the same.

    python -m bench.export_fhir [--sizes 100000,1000000] [--runs 3]

Writes bench/results/export_fhir.json and .md (medians of the runs).
"""

from __future__ import annotations

import argparse
import hashlib
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

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = HERE / "results"
SEED = 20261126
IMPLEMENTATIONS = ("baseline", "current")
# Follow-up check-in states and their shares (as bench.export_parquet seeds them).
STATES = {"completed": 0.5, "partial": 0.1, "expired": 0.3, "missed": 0.1}
OPENED = ("completed", "partial", "expired")
SKIP_IN_COMPLETED = 0.03  # a question left unanswered in a completed check-in


# --- the synthetic dataset ------------------------------------------------------------------


def synthetic_dataset(n: int, seed: int = SEED) -> Any:
    """A StudyDataset of n patients, built in numpy/pandas (no database)."""
    import pandas as pd

    from surveys.catalogue import build_survey
    from tracker.config import load_settings
    from tracker.export.dataset import StudyDataset

    survey = build_survey(list(load_settings({}).instruments))
    rng = np.random.default_rng(seed)
    rows = 3 * n
    wave = np.tile(np.array([0, 6, 12], dtype="int64"), n)
    follow_up = wave > 0
    names = np.array(["baseline", *STATES])
    state = np.zeros(rows, dtype="int64")  # index into names; 0 = baseline
    state[follow_up] = 1 + rng.choice(len(STATES), 2 * n, p=list(STATES.values()))
    opened = np.isin(names[state], OPENED)

    # How many questions each row reached: all (baseline: the first six), a prefix (partial)
    # or none (expired, missed).
    nq = len(survey.questions)
    reached = np.zeros(rows, dtype="int64")
    reached[state == 0] = 6
    reached[names[state] == "completed"] = nq
    partial = names[state] == "partial"
    reached[partial] = rng.integers(1, nq, partial.sum())
    frame: dict[str, Any] = {
        "pid": pd.array(_hex_pids(rng, n).repeat(3), dtype="string[pyarrow]"),
        "wave": wave,
        "responded": (reached > 0).astype("int64"),
    }
    for k, q in enumerate(survey.questions):
        values = _answers(rng, q, rows)
        missing = (k >= reached) | (rng.random(rows) < SKIP_IN_COMPLETED)
        frame[q.key] = pd.arrays.IntegerArray(values, missing)
    frame["checkin_state"] = pd.array(names[state], dtype="string[pyarrow]")
    outcomes = pd.DataFrame(frame)
    return StudyDataset("bench", survey, outcomes, pd.DataFrame(), [], [], opened)


def _hex_pids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct 16-hex-digit pseudonyms (as the export's HMAC pids look)."""
    raw = rng.integers(0, 2**63, n, dtype="int64") | (np.arange(n, dtype="int64") << 40)
    return np.array([f"{x:016x}" for x in raw.tolist()], dtype=object)


def _answers(rng: np.random.Generator, q: Any, rows: int) -> np.ndarray:
    from surveys.model import QuestionKind

    low, high = q.value_range()
    if q.kind is QuestionKind.COUNT:
        return np.minimum(rng.poisson(2.0, rows), high).astype("int64")
    if q.kind is QuestionKind.SCALE:
        return np.clip(np.rint(rng.normal(6.5, 2.2, rows)), low, high).astype("int64")
    return rng.integers(low, high + 1, rows, dtype="int64")


# --- the writer as it was (the baseline) ----------------------------------------------------


def baseline_write_fhir(data: Any, folder: Path) -> tuple[list[Path], int]:
    """write_fhir as it was before the fast writer: one `questionnaire_response` dict and one
    JSON dump per response (kept in formats as the reference the fast writer is tested on)."""
    from tracker.export import formats

    q_path = formats.write_questionnaires(data, folder)
    out = formats.opened_responses(data)
    r_path = folder / "questionnaire_responses.ndjson"
    formats._write_responses_one_by_one(data, out, r_path)
    return [q_path, r_path], len(out)


# --- the child: one measurement -------------------------------------------------------------


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def child(impl: str, n: int, folder: Path, digest: bool) -> dict[str, Any]:
    from tracker.export.formats import write_fhir

    started = time.perf_counter()
    data = synthetic_dataset(n)
    build_s = time.perf_counter() - started
    dataset_mib = _rss_mib()
    writer = baseline_write_fhir if impl == "baseline" else write_fhir
    folder.mkdir(parents=True, exist_ok=True)
    started, cpu = time.perf_counter(), time.process_time()
    paths, count = writer(data, folder)
    seconds = time.perf_counter() - started
    result = {
        "impl": impl,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "peak_mib": _rss_mib(),
        "dataset_mib": dataset_mib,
        "build_seconds": build_s,
        "responses": count,
        "ndjson_bytes": paths[1].stat().st_size,
        "questionnaire_sha256": _sha256(paths[0]),
        "ndjson_sha256": _sha256(paths[1]) if digest else None,
    }
    for path in paths:
        path.unlink()
    return result


# --- the parent -----------------------------------------------------------------------------


def _run_child(impl: str, n: int, folder: Path, digest: bool) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["--child", impl, str(n), str(folder), "1" if digest else "0"]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.export_fhir", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(n: int, runs: int, workdir: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    by_impl: dict[str, list[dict[str, Any]]] = {impl: [] for impl in IMPLEMENTATIONS}
    for run in range(runs):
        for impl in IMPLEMENTATIONS:  # alternated, so both see the same machine load
            res = _run_child(impl, n, workdir / f"{impl}-{n}-{run}", digest=run == 0)
            by_impl[impl].append(res)
            print(
                f"[{n:,}] run {run + 1} {impl}: {res['seconds']:.2f} s, "
                f"{res['peak_mib']:.0f} MiB peak ({res['dataset_mib']:.0f} MiB with the data)",
                flush=True,
            )
    first = {impl: rows[0] for impl, rows in by_impl.items()}
    same = len({r["ndjson_sha256"] for r in first.values()}) == 1 and (
        len({r["questionnaire_sha256"] for r in first.values()}) == 1
    )
    summary: dict[str, Any] = {
        "patients": n,
        "outcome_rows": 3 * n,
        "responses": first["current"]["responses"],
        "ndjson_mib": round(first["current"]["ndjson_bytes"] / 2**20, 1),
        "identical_output": same,
        "runs": runs,
        "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }
    for impl, rows in by_impl.items():
        secs = statistics.median(r["seconds"] for r in rows)
        summary[impl] = {
            "seconds_median": round(secs, 2),
            "seconds_all": [round(r["seconds"], 2) for r in rows],
            "cpu_seconds_median": round(statistics.median(r["cpu_seconds"] for r in rows), 2),
            "responses_per_second": round(summary["responses"] / secs),
            "peak_mib_max": round(max(r["peak_mib"] for r in rows)),
            "dataset_mib_max": round(max(r["dataset_mib"] for r in rows)),
        }
    summary["ratio_baseline_to_current"] = round(
        summary["baseline"]["seconds_median"] / summary["current"]["seconds_median"], 1
    )
    return summary


def _merge_previous(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep earlier figures for sizes not measured in this run."""
    path = RESULTS / "export_fhir.json"
    if not path.exists():
        return results
    try:
        previous = json.loads(path.read_text("utf-8")).get("results", [])
    except (OSError, ValueError):
        return results
    measured = {r["patients"] for r in results}
    kept = [r for r in previous if r.get("patients") not in measured]
    return sorted([*kept, *results], key=lambda r: r["patients"])


def write_results(results: list[dict[str, Any]], machine: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = _merge_previous(results)
    doc = {"benchmark": "export_fhir", "machine": machine, "results": results}
    (RESULTS / "export_fhir.json").write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
    lines = [
        "# FHIR export (questionnaire.json + questionnaire_responses.ndjson)",
        "",
        "`write_fhir(data, folder)` alone on a synthetic `StudyDataset` (no database), the "
        "per-resource baseline (one `questionnaire_response` dict and one `json.dumps` per "
        "response) against the current writer (lines assembled in Arrow from precomputed "
        "pieces), same data, same run, alternated. Medians of the runs; each measurement in "
        f"its own process. {machine['cpus']} CPUs shared with other work (load average in the "
        f"JSON), Python {machine['python']}. Peak MiB is the child's peak RSS, the dataset "
        "included (its own size is in the JSON as dataset_mib).",
        "",
        "| patients | responses | NDJSON MiB | baseline s | current s | ratio "
        "| baseline responses/s | current responses/s | baseline peak MiB | current peak MiB "
        "| identical |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        b, c = r["baseline"], r["current"]
        lines.append(
            f"| {r['patients']:,} | {r['responses']:,} | {r['ndjson_mib']} "
            f"| {b['seconds_median']} | {c['seconds_median']} "
            f"| {r['ratio_baseline_to_current']}x | {b['responses_per_second']:,} "
            f"| {c['responses_per_second']:,} | {b['peak_mib_max']} | {c['peak_mib_max']} "
            f"| {'yes' if r['identical_output'] else 'NO'} |"
        )
    lines += [
        "",
        "Identical: the SHA-256 of both NDJSON files (first run) and of both questionnaire.json "
        "files match. Synthetic data: 3 outcome rows per patient (waves 0, 6, 12); follow-up "
        "check-ins 50% completed (3% of questions skipped), 10% partial (1 to 7 of 8 "
        "questions), 30% expired and 10% missed (no answers); 90% opened, so about 1.8 "
        "responses per patient.",
    ]
    (RESULTS / "export_fhir.md").write_text("\n".join(lines) + "\n", "utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        impl, n, folder, digest = argv[1], int(argv[2]), Path(argv[3]), argv[4] == "1"
        print(json.dumps(child(impl, n, folder, digest)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-fhir-") as tmp:
        for n in sizes:
            results.append(measure(n, args.runs, Path(tmp)))
    machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    write_results(results, machine)
    print((RESULTS / "export_fhir.md").read_text("utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
