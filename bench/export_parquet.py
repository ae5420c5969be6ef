"""Export benchmark: `tracker export --format parquet` of 100,000 and 1,000,000 patients.

A fresh PostgreSQL schema (the production target; SQLite when PostgreSQL is unreachable) is
migrated and seeded with COPY: patients, one episode each, 6- and 12-month check-ins (90%
opened; 50% completed with 8 answers, 10% partial with 3, 30% expired, 10% missed), and texts:
with `--texts summary` (the default) an opening per opened check-in plus an inbound reply and a
closing for responders; with `--texts conversation` every text a live check-in sends and
receives (questions, replies, closings, reminders: about five times as many).
Then, in separate child processes (so each peak RSS is its own), `runs` times each:

  export  the real `export_study(app, fmt="parquet")`: four reads on ADBC connections sharing
          one snapshot, pseudonyms, reshaping, outcomes.parquet + contacts.parquet + codebook;
  bare    a plain `SELECT` of the one-row-per-patient-x-follow-up-wave rows (patients JOIN
          episodes JOIN check-ins) with psycopg `fetchall()` into a pyarrow Table: the floor a
          naive exporter pays just to read the rows, measured in the same run.

    python -m bench.export_parquet [--sizes 100000,1000000] [--runs 3] [--backend auto]
                                   [--texts summary|conversation] [--keep-schema PREFIX]

Writes bench/results/export_parquet.json and .md (medians of the runs)."""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

RESULTS = HERE / "results"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
KEY = "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktYmU="
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
GOAL_SECONDS = 20.0
QUESTIONS = [
    ("life_satisfaction", 0, 10),
    ("worthwhile", 0, 10),
    ("happy", 0, 10),
    ("anxious", 0, 10),
    ("lonely", 1, 5),
    ("gp_visits", 0, 12),
    ("community_activity", 0, 1),
    ("recontact_requested", 0, 1),
]
SITES = [f"site-{i:02d}" for i in range(20)]


# --- the database --------------------------------------------------------------------------


def postgres_base() -> str | None:
    from sqlalchemy import create_engine, text

    from tracker.db.engine import normalise_url

    url = os.environ.get("TRACKER_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        engine = create_engine(normalise_url(url), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return url
    except Exception:  # noqa: BLE001
        return None


class Database:
    """A fresh migrated schema (PostgreSQL) or file (SQLite), dropped on close."""

    def __init__(self, backend: str, workdir: Path, keep: str | None = None) -> None:
        from sqlalchemy import create_engine, text

        from tracker.db.engine import make_engine, normalise_url
        from tracker.db.migrate import upgrade

        self.backend = backend
        # `keep`: a named schema (PostgreSQL) reused across runs and never dropped.
        self.keep = keep
        self.reused = False
        if backend == "sqlite":
            self.path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
            self.url = f"sqlite:///{self.path}"
        else:
            base = postgres_base()
            assert base is not None
            self.schema = keep or "bench_" + uuid.uuid4().hex[:10]
            self.admin = create_engine(normalise_url(base), isolation_level="AUTOCOMMIT")
            with self.admin.connect() as conn:
                found = conn.execute(
                    text(
                        "SELECT 1 FROM information_schema.tables WHERE table_schema = :s "
                        "AND table_name = 'patients'"
                    ),
                    {"s": self.schema},
                ).first()
                if found and keep:
                    self.reused = True
                else:
                    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {self.schema}"))
            sep = "&" if "?" in base else "?"
            self.url = f"{base}{sep}options=-csearch_path%3D{self.schema}"
        self.engine = make_engine(self.url)
        upgrade(self.engine)

    def close(self) -> None:
        from sqlalchemy import text

        self.engine.dispose()
        if self.backend == "sqlite":
            for p in self.path.parent.glob(self.path.name + "*"):
                p.unlink(missing_ok=True)
        else:
            if not self.keep:
                with self.admin.connect() as conn:
                    conn.execute(text(f"DROP SCHEMA {self.schema} CASCADE"))
            self.admin.dispose()


# --- synthetic rows (numpy, vectorised) ------------------------------------------------------


def _epoch(day: np.ndarray, seconds: np.ndarray | int = 0) -> np.ndarray:
    return day.astype("int64") * 86400 + seconds


def cohort(
    n: int, seed: int = 5, texts: str = "summary"
) -> dict[str, dict[str, tuple[np.ndarray, str]]]:
    """Columns per table as (values, kind) with kind int|str|bool|date|ts (ts: epoch seconds).

    texts="summary": an opening per opened check-in, a reply and a closing per responder.
    texts="conversation": every text a live check-in makes: the opening (first question),
    each reply and the next question, a closing when completed, and reminders (one for a
    partial check-in, two for an expired one)."""
    rng = np.random.default_rng(seed)
    now = int(NOW.timestamp())
    ids = np.arange(1, n + 1, dtype="int64")
    refs = np.char.add("P", ids.astype("U9"))
    patients = {
        "id": (ids, "int"),
        "patient_ref": (refs, "str"),
        "birth_year": (rng.integers(1935, 2005, n), "int"),
        "gender": (
            rng.choice(np.array(["female", "male", "non-binary"]), n, p=[0.6, 0.38, 0.02]),
            "str",
        ),
        "imd_quintile": (rng.integers(1, 6, n), "int"),
        "contact_state": (np.where(rng.random(n) < 0.01, "withdrawn", "active"), "str"),
        "created_at": (np.full(n, now), "ts"),
        "updated_at": (np.full(n, now), "ts"),
    }
    discharge = np.datetime64("2025-01-01").astype("int64") + rng.integers(0, 365, n)
    sessions = rng.integers(1, 13, n)
    connected = rng.random(n) < 0.75
    pattern = np.where(~connected, "with_only", np.where(sessions <= 3, "rapid", "anchored"))
    episodes: dict[str, tuple[np.ndarray, str]] = {
        "id": (ids, "int"),
        "episode_ref": (np.char.add("E", ids.astype("U9")), "str"),
        "patient_id": (ids, "int"),
        "site": (np.array(SITES)[rng.integers(0, len(SITES), n)], "str"),
        "referral_date": (discharge - rng.integers(30, 200, n), "date"),
        "discharge_date": (discharge, "date"),
        "sessions": (sessions, "int"),
        "connected_external": (connected, "bool"),
        "pattern": (pattern, "str"),
        "pattern_source": (np.full(n, "derived"), "str"),
        "pattern_rule_version": (np.full(n, "2026.1"), "str"),
        "consent_sms": (np.ones(n, dtype=bool), "bool"),
        "created_at": (np.full(n, now), "ts"),
        "updated_at": (np.full(n, now), "ts"),
    }
    has_baseline = rng.random(n) < 0.8
    for key, low, high in QUESTIONS[:6]:
        episodes[f"baseline_{key}"] = (
            np.where(has_baseline, rng.integers(low, high + 1, n), -1),
            "int?",
        )

    # Two check-ins per episode: ids 2i-1 (6 months) and 2i (12 months).
    m = 2 * n
    c_ids = np.arange(1, m + 1, dtype="int64")
    c_episode = np.repeat(ids, 2)
    wave = np.tile(np.array([6, 12]), n)
    target = np.repeat(discharge, 2) + np.where(wave == 6, 182, 365)
    due = _epoch(target, 10 * 3600)
    roll = rng.random(m)
    state = np.select(
        [roll < 0.5, roll < 0.6, roll < 0.9], ["completed", "partial", "expired"], "missed"
    )
    opened = state != "missed"
    checkins = {
        "id": (c_ids, "int"),
        "episode_id": (c_episode, "int"),
        "wave": (wave, "int"),
        "state": (state, "str"),
        "target_date": (target, "date"),
        "due_at": (due, "ts"),
        "window_closes_at": (due + 28 * 86400, "ts"),
        "send_attempts": (opened.astype("int64"), "int"),
        "opened_at": (np.where(opened, due, -1), "ts?"),
        "question_index": (
            np.where(state == "completed", 8, np.where(state == "partial", 3, 0)),
            "int",
        ),
        "clarifications": (np.zeros(m, dtype="int64"), "int"),
        "reminders_sent": (np.where(state == "expired", 2, 0), "int"),
        "created_at": (np.full(m, now), "ts"),
        "updated_at": (np.full(m, now), "ts"),
    }

    # Answers: 8 for completed, 3 for partial check-ins, a minute or two apart.
    per = np.where(state == "completed", 8, np.where(state == "partial", 3, 0))
    a_checkin = np.repeat(c_ids, per)
    starts = np.cumsum(per) - per
    q_index = np.arange(len(a_checkin)) - np.repeat(starts, per)
    first_reply = due + rng.integers(600, 5 * 86400, m)
    keys = np.array([q[0] for q in QUESTIONS])
    lows = np.array([q[1] for q in QUESTIONS])
    highs = np.array([q[2] for q in QUESTIONS])
    values = lows[q_index] + (
        rng.random(len(q_index)) * (highs[q_index] - lows[q_index] + 1)
    ).astype("int64")
    answers = {
        "checkin_id": (a_checkin, "int"),
        "question_key": (keys[q_index], "str"),
        "value": (values, "int"),
        "outcome": (np.full(len(a_checkin), "parsed"), "str"),
        "answered_at": (np.repeat(first_reply, per) + q_index * 120, "ts"),
    }

    if texts == "conversation":
        flat = _conversation_texts(ids, c_ids, state, opened, per, due, first_reply, keys)
    else:
        flat = _summary_texts(ids, c_ids, opened, per, due, first_reply)
    k = len(flat["at"])
    messages = {
        "direction": (flat["direction"], "str"),
        "patient_id": (flat["patient_id"], "int"),
        "checkin_id": (flat["checkin_id"], "int"),
        "purpose": (flat["purpose"], "str"),
        "question_key": (flat["question_key"], "str?"),
        "media_count": (np.zeros(k, dtype="int64"), "int"),
        "segments": (np.where(flat["direction"] == "outbound", 2, 1), "int"),
        "status": (flat["status"], "str"),
        "status_rank": (flat["status_rank"], "int"),
        "attempt": (np.ones(k, dtype="int64"), "int"),
        "late": (np.zeros(k, dtype=bool), "bool"),
        "created_at": (flat["at"], "ts"),
        "sent_at": (flat["at"], "ts"),
    }
    return {
        "patients": patients,
        "episodes": episodes,
        "checkins": checkins,
        "answers": answers,
        "messages": messages,
    }


_TEXT_COLUMNS = ("checkin_id", "patient_id", "direction", "purpose", "question_key", "status",
                 "status_rank", "at")  # fmt: skip


def _texts(parts: list[tuple[np.ndarray, ...]]) -> dict[str, np.ndarray]:
    """Concatenate text batches (check-in ids, patient ids, direction, purpose, question key,
    status, status rank, instants), each batch given as arrays or scalars."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in _TEXT_COLUMNS}
    for part in parts:
        size = len(part[0])
        for name, values in zip(_TEXT_COLUMNS, part, strict=True):
            cols[name].append(np.broadcast_to(np.asarray(values), (size,)))
    return {k: np.concatenate(v) for k, v in cols.items()}


def _summary_texts(ids, c_ids, opened, per, due, first_reply):  # type: ignore[no-untyped-def]
    patient_of = np.repeat(ids, 2)
    o_idx = np.flatnonzero(opened)
    r_idx = np.flatnonzero(per > 0)
    return _texts(
        [
            (c_ids[o_idx], patient_of[o_idx], "outbound", "opening", "", "delivered", 8,
             due[o_idx]),
            (c_ids[r_idx], patient_of[r_idx], "inbound", "reply", "", "received", 9,
             first_reply[r_idx]),
            (c_ids[r_idx], patient_of[r_idx], "outbound", "closing", "", "delivered", 8,
             first_reply[r_idx] + 8 * 120),
        ]
    )  # fmt: skip


def _conversation_texts(ids, c_ids, state, opened, per, due, first_reply, keys):  # type: ignore[no-untyped-def]
    patient_of = np.repeat(ids, 2)
    o_idx = np.flatnonzero(opened)
    parts = [(c_ids[o_idx], patient_of[o_idx], "outbound", "opening", keys[0], "delivered", 8,
              due[o_idx])]  # fmt: skip
    for q in range(len(keys)):
        replied = np.flatnonzero(per > q)  # answered question q
        at = first_reply[replied] + q * 120
        parts.append((c_ids[replied], patient_of[replied], "inbound", "reply", "",
                      "received", 9, at))  # fmt: skip
        if q + 1 < len(keys):
            parts.append((c_ids[replied], patient_of[replied], "outbound", "question",
                          keys[q + 1], "delivered", 8, at + 5))  # fmt: skip
    done = np.flatnonzero(state == "completed")
    parts.append((c_ids[done], patient_of[done], "outbound", "closing", "", "delivered", 8,
                  first_reply[done] + 8 * 120))  # fmt: skip
    for reminders, which in ((1, "partial"), (2, "expired")):
        idx = np.flatnonzero(state == which)
        for r in range(reminders):
            parts.append((c_ids[idx], patient_of[idx], "outbound", "reminder", "", "delivered",
                          8, due[idx] + (r + 1) * 3 * 86400))  # fmt: skip
    return _texts(parts)


def _arrow(values: np.ndarray, kind: str):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    nullable = kind.endswith("?")
    kind = kind.rstrip("?")
    mask = (values == -1) if nullable and kind != "str" else None
    if kind == "ts":
        return pa.array(values, type=pa.int64(), mask=mask).cast(pa.timestamp("s", tz="UTC"))
    if kind == "date":
        return pa.array(values.astype("int32"), type=pa.int32(), mask=mask).cast(pa.date32())
    if kind == "bool":
        return pa.array(values, type=pa.bool_())
    if kind == "str":
        strings = values.astype(object)
        return pa.array(strings, type=pa.string(), mask=(values == "") if nullable else None)
    return pa.array(values, type=pa.int64(), mask=mask)


def seed(db: Database, n: int, texts: str = "summary") -> dict[str, int]:
    """Fill the fresh database; returns row counts."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    tables = cohort(n, texts=texts)
    counts = {}
    raw = db.engine.raw_connection()
    try:
        for name, columns in tables.items():
            table = pa.table({c: _arrow(v, kind) for c, (v, kind) in columns.items()})
            counts[name] = table.num_rows
            if db.backend == "postgresql":
                _copy_in(raw, name, table, pa_csv)
            else:
                _sqlite_in(raw, name, table)
        if db.backend == "postgresql":
            with raw.cursor() as cursor:
                cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return counts


def _copy_in(raw: Any, name: str, table: Any, pa_csv: Any) -> None:
    cols = ", ".join(table.column_names)
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY {name} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
            for batch in table.to_batches(max_chunksize=500_000):
                buffer = io.BytesIO()
                pa_csv.write_csv(batch, buffer, pa_csv.WriteOptions(include_header=False))
                copy.write(buffer.getvalue())


def _sqlite_in(raw: Any, name: str, table: Any) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for col in table.columns:
        if pa.types.is_timestamp(col.type):
            col = pc.strftime(col, format="%Y-%m-%d %H:%M:%S.000000")
        elif pa.types.is_date(col.type):
            col = pc.strftime(col, format="%Y-%m-%d")
        columns.append(col.to_pylist())
    marks = ", ".join("?" for _ in table.column_names)
    cursor = raw.cursor()
    cursor.executemany(
        f"INSERT INTO {name} ({', '.join(table.column_names)}) VALUES ({marks})",
        zip(*columns, strict=True),
    )
    cursor.close()


# --- measurements (each in a child process) -------------------------------------------------


def _export_child(url: str, out_dir: str, queue: Any) -> None:
    from tracker.app import build
    from tracker.clock import FrozenClock
    from tracker.config import load_settings
    from tracker.export import export_study

    app = build(load_settings({}, database_url=url, secret_key=KEY), clock=FrozenClock(NOW))
    started = time.perf_counter()
    report = export_study(app, fmt="parquet", out_dir=Path(out_dir), study="bench")
    seconds = time.perf_counter() - started
    app.close()
    queue.put(
        {
            "seconds": seconds,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "outcome_rows": report.outcome_rows,
            "contact_rows": report.contact_rows,
            "stages": report.seconds,
        }
    )


BARE_SQL = (
    "SELECT p.id, p.patient_ref, p.birth_year, p.gender, p.imd_quintile, e.site, e.pattern, "
    "e.sessions, e.referral_date, e.discharge_date, c.wave, c.state, c.target_date, c.opened_at "
    "FROM patients p JOIN episodes e ON e.patient_id = p.id JOIN checkins c ON c.episode_id = e.id"
)


def _bare_child(url: str, queue: Any) -> None:
    import pyarrow as pa

    from tracker.db.engine import make_engine

    engine = make_engine(url)
    started = time.perf_counter()
    raw = engine.raw_connection()
    cursor = raw.cursor()
    cursor.execute(BARE_SQL)
    rows = cursor.fetchall()
    names = [d[0] for d in cursor.description]
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    table = pa.table({f"c{i}": pa.array(col) for i, col in enumerate(columns)})
    seconds = time.perf_counter() - started
    raw.close()
    engine.dispose()
    queue.put(
        {
            "seconds": seconds,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rows": table.num_rows,
        }
    )


def _in_child(target: Any, *args: Any) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"benchmark child failed with exit code {proc.exitcode}")
    return result


def measure(
    n: int,
    runs: int,
    backend: str,
    workdir: Path,
    keep: str | None = None,
    texts: str = "summary",
) -> dict[str, Any]:
    suffix = "" if texts == "summary" else "_conv"
    db = Database(backend, workdir, keep=f"{keep}_{n}{suffix}" if keep else None)
    try:
        started = time.perf_counter()
        counts = _counts(db) if db.reused else {}
        if counts.get("patients"):
            print(f"   reusing schema {db.schema}: {counts}", flush=True)
        else:
            counts = seed(db, n, texts)
        seed_seconds = time.perf_counter() - started
        print(f"   seeded {n:,} patients in {seed_seconds:.1f} s: {counts}", flush=True)
        exports, bares = [], []
        load_before = os.getloadavg()[0]
        for run in range(runs):
            out = workdir / f"export-{n}-{run}"
            exports.append(_in_child(_export_child, db.url, str(out)))
            bares.append(_in_child(_bare_child, db.url))
            print(
                f"   run {run + 1}: export {exports[-1]['seconds']:.2f} s "
                f"({exports[-1]['peak_mib']:.0f} MiB), bare select {bares[-1]['seconds']:.2f} s",
                flush=True,
            )
        size = sum(p.stat().st_size for p in (workdir / f"export-{n}-0").iterdir())
    finally:
        db.close()
    export_s = statistics.median(r["seconds"] for r in exports)
    bare_s = statistics.median(r["seconds"] for r in bares)
    stages = {
        k: round(statistics.median(r["stages"][k] for r in exports), 2)
        for k in exports[0]["stages"]
    }
    return {
        "patients": n,
        "backend": backend,
        "texts": texts,
        "rows": counts,
        "seed_seconds": round(seed_seconds, 1),
        "runs": runs,
        "export_seconds_median": round(export_s, 2),
        "export_seconds_all": [round(r["seconds"], 2) for r in exports],
        "export_stage_seconds_median": stages,
        "export_peak_mib_max": round(max(r["peak_mib"] for r in exports)),
        "outcome_rows": exports[0]["outcome_rows"],
        "contact_rows": exports[0]["contact_rows"],
        "output_mib": round(size / 2**20, 1),
        "bare_select_rows": bares[0]["rows"],
        "bare_select_seconds_median": round(bare_s, 2),
        "bare_select_peak_mib_max": round(max(r["peak_mib"] for r in bares)),
        "ratio_export_to_bare_select": round(export_s / bare_s, 2),
        "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "goal_seconds": GOAL_SECONDS if n >= 1_000_000 else None,
        "goal_met": (export_s < GOAL_SECONDS) if n >= 1_000_000 else None,
    }


def _counts(db: Database) -> dict[str, int]:
    from sqlalchemy import text

    names = ["patients", "episodes", "checkins", "answers", "messages"]
    with db.engine.connect() as conn:
        return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in names}


def _merge_previous(results: list[dict[str, Any]], backend: str) -> list[dict[str, Any]]:
    """Keep earlier figures for sizes not measured in this run (same backend)."""
    path = RESULTS / "export_parquet.json"
    if not path.exists():
        return results
    try:
        previous = json.loads(path.read_text("utf-8")).get("results", [])
    except (OSError, ValueError):
        return results

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r.get("backend"), r.get("patients"), r.get("texts", "summary"))

    measured = {key(r) for r in results}
    kept = [r for r in previous if key(r) not in measured]
    return sorted(
        [*kept, *results],
        key=lambda r: (r["backend"] != backend, r.get("texts", "summary"), r["patients"]),
    )


def write_results(results: list[dict[str, Any]], machine: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = _merge_previous(results, machine["backend"])
    doc = {"benchmark": "export_parquet", "machine": machine, "results": results}
    (RESULTS / "export_parquet.json").write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
    lines = [
        "# Export to Parquet",
        "",
        '`export_study(app, fmt="parquet")` end to end (queries, pseudonyms, reshaping, '
        "outcomes.parquet + contacts.parquet + codebook; the reads use ADBC connections on one "
        "snapshot), against a bare `SELECT` of the "
        "patient x follow-up-wave rows into pyarrow (psycopg fetchall), same database, same run. "
        f"Medians of the runs; each measurement in its own process. {machine['cpus']} CPUs, "
        f"{machine['backend']}. Load average (1 min) before/after each size is in the JSON: "
        "other work shared these 2 cores, so the absolute seconds are pessimistic; the ratio "
        "to the bare SELECT, measured alongside, is the steadier figure.",
        "",
        "| database | texts | patients | outcome rows | contact rows | export s | peak MiB "
        "| bare SELECT s | ratio | output MiB | stages (build / write) | load before/after |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        st = r["export_stage_seconds_median"]
        load = r.get("load_average_1min", ["?", "?"])
        lines.append(
            f"| {r['backend']} | {r.get('texts', 'summary')} | {r['patients']:,} "
            f"| {r['outcome_rows']:,} | {r['contact_rows']:,} "
            f"| {r['export_seconds_median']} | {r['export_peak_mib_max']} "
            f"| {r['bare_select_seconds_median']} | {r['ratio_export_to_bare_select']} "
            f"| {r['output_mib']} | {st.get('build')} / {st.get('write')} | {load[0]} / {load[1]} |"
        )
    for r in results:
        if r["goal_met"] is None or r["backend"] != "postgresql":
            continue
        verdict = "met" if r["goal_met"] else "NOT met"
        lines += ["", f"Goal (1,000,000 patients under {GOAL_SECONDS:.0f} s), "
                  f"{r.get('texts', 'summary')} texts: {verdict} "
                  f"({r['export_seconds_median']} s)."]  # fmt: skip
    lines += [
        "",
        "Seeded data: per patient one episode, two check-ins (90% opened; 50% completed with 8 "
        "answers, 10% partial with 3, 30% expired, 10% missed), 1% withdrawn (left out). "
        "Texts, `summary`: an opening per opened check-in plus a reply and a closing per "
        "responder (about 4 texts per patient). `conversation`: what a live check-in sends and "
        "receives: the opening, every reply and the next question, the closing, one reminder "
        "for a partial and two for an expired check-in (17 texts per completed check-in, about "
        "20 per patient).",
    ]
    (RESULTS / "export_parquet.md").write_text("\n".join(lines) + "\n", "utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=["auto", "postgresql", "sqlite"], default="auto")
    parser.add_argument(
        "--texts",
        choices=["summary", "conversation"],
        default="summary",
        help="summary: 3 texts per responder (the original benchmark); conversation: every "
        "question, reply, closing and reminder a live check-in sends (about 5 times as many)",
    )
    parser.add_argument(
        "--keep-schema",
        metavar="PREFIX",
        help="PostgreSQL: seed into schema PREFIX_<size> and keep it; a later run with the same "
        "PREFIX reuses it without seeding (drop it yourself when done)",
    )
    args = parser.parse_args(argv if argv is not None else [])
    backend = args.backend
    if backend == "auto":
        backend = "postgresql" if postgres_base() else "sqlite"
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        for n in sizes:
            print(f"-- {n:,} patients on {backend}", flush=True)
            results.append(measure(n, args.runs, backend, Path(tmp), args.keep_schema, args.texts))
    machine = {"cpus": os.cpu_count(), "backend": backend, "python": sys.version.split()[0]}
    write_results(results, machine)
    print((RESULTS / "export_parquet.md").read_text("utf-8"))


if __name__ == "__main__":
    main(sys.argv[1:])
