"""Import benchmark: N generated episodes into SQLite and PostgreSQL (fresh schema each run).

For each backend, three runs (medians reported) of:
  import  the real `import_csv` use case: CSV parsing, pydantic validation, phone checks,
          encryption + blind index, pattern rule, check-in planning, bulk upserts;
  bare    the same patients, episodes and check-ins with every value precomputed, through the
          same bulk writer (COPY on PostgreSQL): the floor the database and driver set;
  core    (one run, for reference) plain Core executemany of the precomputed rows.
Each measurement runs in its own subprocess so that peak memory (ru_maxrss) is its own; a
smaller file is imported too, to show that memory stays flat as the file grows.

    python -m bench.import_episodes [--episodes 100000] [--runs 3]

Writes bench/results/import_episodes.json and .md.
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
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import event

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
TODAY = date(2026, 11, 26)
KEY = "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktYmU="
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


# --- one measurement (runs in a child process) -------------------------------------------


def _fresh_database(backend: str, workdir: Path) -> tuple[str, callable]:  # type: ignore[valid-type]
    from sqlalchemy import create_engine, text

    from tracker.db.engine import normalise_url

    if backend == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}", lambda: [
            p.unlink(missing_ok=True) for p in workdir.glob(path.name + "*")
        ]
    base = os.environ.get("TRACKER_TEST_POSTGRES_URL", DEFAULT_PG)
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = create_engine(normalise_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", drop


def _app(url: str):  # type: ignore[no-untyped-def]
    from tracker.app import build
    from tracker.clock import FrozenClock
    from tracker.config import load_settings
    from tracker.db.engine import make_engine
    from tracker.db.migrate import upgrade

    settings = load_settings({}, database_url=url, secret_key=KEY)
    engine = make_engine(url)
    upgrade(engine)
    return build(settings, clock=FrozenClock(NOW), engine=engine)


class Meter:
    """Wall time, this process's CPU time and (PostgreSQL) the server backends' CPU time.

    The machine these benchmarks run on is shared: wall-clock rates fall when others are busy,
    CPU seconds do not. Backend CPU is read from /proc for the connections this engine opened
    (PostgreSQL runs on the same machine in tests and CI).
    """

    def __init__(self, engine) -> None:  # type: ignore[no-untyped-def]
        self.pids: list[int] = []
        if engine.dialect.name == "postgresql":
            event.listen(engine, "connect", self._remember_backend)

    def _remember_backend(self, dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.pids.append(cursor.fetchone()[0])
        dbapi_connection.commit()

    def _server_cpu(self) -> float:
        total = 0.0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    @staticmethod
    def _client_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def start(self) -> None:
        self._wall = time.perf_counter()
        self._client = self._client_cpu()
        self._server = self._server_cpu()

    def stop(self, episodes: int) -> dict[str, float]:
        return {
            "seconds": time.perf_counter() - self._wall,
            "client_cpu_seconds": self._client_cpu() - self._client,
            "server_cpu_seconds": self._server_cpu() - self._server,
            "episodes": episodes,
        }


def _measure_import(app, csv_path: Path, meter: Meter) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from tracker.services.enrolment import import_csv

    meter.start()
    report = import_csv(app, csv_path)
    result = meter.stop(report.counts.episodes_created)
    assert report.imported and report.rejected == 0, report.errors[:3]
    return result


def _precomputed_rows(app, csv_path: Path):  # type: ignore[no-untyped-def]
    """Every value the import would write, computed up front (not timed)."""
    from tracker.importing import EpisodeFile, checked_rows
    from tracker.services.enrolment import Enroller

    enroller = Enroller(
        None,  # type: ignore[arg-type]
        now=NOW,
        crypto=app.crypto,
        window=app.window,
        waves=app.settings.waves_months,
        response_days=app.settings.response_window_days,
    )
    patients: dict[str, dict] = {}
    episodes: list[tuple[str, dict]] = []
    checkins: list[tuple[str, dict]] = []
    with EpisodeFile.open(csv_path) as source:
        for item in checked_rows(source, today=TODAY):
            row = item.episode
            assert row is not None
            patients[row.patient_ref] = {
                "patient_ref": row.patient_ref,
                "phone_ciphertext": app.crypto.encrypt_phone(row.phone) if row.phone else None,
                "phone_index": app.crypto.phone_index(row.phone) if row.phone else None,
                "birth_year": row.birth_year,
                "gender": row.gender,
                "imd_quintile": row.imd_quintile,
                "contact_state": "active",
                "created_at": NOW,
                "updated_at": NOW,
            }
            values = enroller._episode_values(row, 0)
            episodes.append(
                (
                    row.patient_ref,
                    {
                        "episode_ref": row.episode_ref,
                        **values,
                        "created_at": NOW,
                        "updated_at": NOW,
                    },
                )
            )
            for plan in enroller.plans(row.discharge_date, row.consent_sms):
                checkins.append((row.episode_ref, enroller._checkin_row(0, plan, "active")))
    return list(patients.values()), episodes, checkins


def _measure_bare(app, csv_path: Path, meter: Meter, batch: int = 1000) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The same rows through the import's own bulk writer (COPY on PostgreSQL), precomputed."""
    from tracker.db.bulk import insert_rows, insert_with_ids
    from tracker.db.tables import CheckIn, Episode, Patient

    patients, episodes, checkins = _precomputed_rows(app, csv_path)
    pt, et, ct = Patient.__table__, Episode.__table__, CheckIn.__table__
    meter.start()
    with app.sessions() as session, session.begin():
        patient_ids: dict[str, int] = {}
        for i in range(0, len(patients), batch):
            patient_ids.update(insert_with_ids(session, pt, patients[i : i + batch], "patient_ref"))
        episode_ids: dict[str, int] = {}
        for i in range(0, len(episodes), batch):
            chunk = [{**v, "patient_id": patient_ids[p]} for p, v in episodes[i : i + batch]]
            episode_ids.update(insert_with_ids(session, et, chunk, "episode_ref"))
        for i in range(0, len(checkins), 2 * batch):
            chunk = [{**v, "episode_id": episode_ids[e]} for e, v in checkins[i : i + 2 * batch]]
            insert_rows(session, ct, chunk)
    return meter.stop(len(episodes))


def _measure_core(app, csv_path: Path, meter: Meter, batch: int = 1000) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """SQLAlchemy Core executemany (INSERT ... RETURNING for ids), values precomputed."""
    from sqlalchemy import insert

    from tracker.db.tables import CheckIn, Episode, Patient

    patients, episodes, checkins = _precomputed_rows(app, csv_path)
    pt, et, ct = Patient.__table__, Episode.__table__, CheckIn.__table__
    meter.start()
    with app.engine.begin() as conn:
        patient_ids: dict[str, int] = {}
        for i in range(0, len(patients), batch):
            for pid, ref in conn.execute(
                insert(pt).returning(pt.c.id, pt.c.patient_ref), patients[i : i + batch]
            ):
                patient_ids[ref] = pid
        episode_ids: dict[str, int] = {}
        for i in range(0, len(episodes), batch):
            chunk = [{**v, "patient_id": patient_ids[p]} for p, v in episodes[i : i + batch]]
            for eid, ref in conn.execute(insert(et).returning(et.c.id, et.c.episode_ref), chunk):
                episode_ids[ref] = eid
        for i in range(0, len(checkins), 2 * batch):
            chunk = [{**v, "episode_id": episode_ids[e]} for e, v in checkins[i : i + 2 * batch]]
            conn.execute(insert(ct), chunk)
    return meter.stop(len(episodes))


_KINDS = {"import": "_measure_import", "bare": "_measure_bare", "core": "_measure_core"}


def child(kind: str, backend: str, csv_path: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = _fresh_database(backend, Path(tmp))
        app = _app(url)
        meter = Meter(app.engine)
        app.engine.dispose()  # new connections from here on, so the meter sees their backends
        try:
            result = globals()[_KINDS[kind]](app, csv_path, meter)
        finally:
            app.close()
            drop()
    result["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


# --- the runner ----------------------------------------------------------------------------


def _run_child(kind: str, backend: str, csv_path: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.import_episodes", "--child", kind, backend, str(csv_path)],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind}/{backend} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _postgres_reachable() -> bool:
    from sqlalchemy import create_engine, text

    from tracker.db.engine import normalise_url

    url = os.environ.get("TRACKER_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        engine = create_engine(normalise_url(url), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _cpu_rate(r: dict[str, float]) -> float:
    """Episodes per CPU second, client and database server together."""
    return r["episodes"] / (r["client_cpu_seconds"] + r["server_cpu_seconds"])


def run(episodes: int = 100_000, runs: int = 3, small: int = 10_000) -> dict:
    from tracker.sample import write_sample_csv

    backends = ["sqlite"] + (["postgresql"] if _postgres_reachable() else [])
    results: dict = {
        "episodes": episodes,
        "runs": runs,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_average_at_start": round(os.getloadavg()[0], 1),
        "backends": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        big = write_sample_csv(Path(tmp) / "big.csv", episodes, seed=7, today=TODAY)
        little = write_sample_csv(Path(tmp) / "small.csv", small, seed=7, today=TODAY)
        results["file_mib"] = round(big.stat().st_size / 2**20, 1)
        for backend in backends:
            imports, bares = [], []
            for _ in range(runs):
                imports.append(_run_child("import", backend, big))
                bares.append(_run_child("bare", backend, big))
            small_run = _run_child("import", backend, little)
            core = _run_child("core", backend, big)  # one run: a reference, not the baseline
            imp_rate = statistics.median(r["episodes"] / r["seconds"] for r in imports)
            bare_rate = statistics.median(r["episodes"] / r["seconds"] for r in bares)
            imp_cpu = statistics.median(_cpu_rate(r) for r in imports)
            bare_cpu = statistics.median(_cpu_rate(r) for r in bares)
            results["backends"][backend] = {
                "import_episodes_per_s": round(imp_rate),
                "import_seconds_median": round(_median(imports, "seconds"), 2),
                "import_client_cpu_seconds_median": round(
                    _median(imports, "client_cpu_seconds"), 2
                ),
                "import_server_cpu_seconds_median": round(
                    _median(imports, "server_cpu_seconds"), 2
                ),
                "import_episodes_per_cpu_s": round(imp_cpu),
                "import_peak_mib_median": round(_median(imports, "maxrss_mib")),
                f"import_peak_mib_{small}_episodes": round(small_run["maxrss_mib"]),
                "bare_insert_episodes_per_s": round(bare_rate),
                "bare_insert_seconds_median": round(_median(bares, "seconds"), 2),
                "bare_insert_episodes_per_cpu_s": round(bare_cpu),
                "import_to_bare_ratio": round(imp_rate / bare_rate, 2),
                "import_to_bare_cpu_ratio": round(imp_cpu / bare_cpu, 2),
                "core_executemany_episodes_per_s_one_run": round(
                    core["episodes"] / core["seconds"]
                ),
                "runs_import": imports,
                "runs_bare": bares,
            }
    results["load_average_at_end"] = round(os.getloadavg()[0], 1)
    return results


def write(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "import_episodes.json").write_text(json.dumps(results, indent=2) + "\n")
    small_key = next(
        (k for b in results["backends"].values() for k in b if k.endswith("_episodes")), None
    )
    lines = [
        "# Import benchmark",
        "",
        f"{results['episodes']:,} generated episodes ({results['file_mib']} MiB CSV), fresh schema "
        f"per run, medians of {results['runs']} runs, {results['cpu_count']} cores, "
        f"Python {results['python']}; load average {results['load_average_at_start']} at the "
        f"start and {results['load_average_at_end']} at the end (a shared machine: wall-clock "
        "rates fall when it is busy, CPU-second rates do not).",
        "",
        "- `import`: CSV parsing + validation + phone checks + encryption + scheduling + bulk upsert.",
        "- `bare`: the same patients, episodes and check-ins, every value precomputed, written with",
        "  the import's own bulk writer (COPY on PostgreSQL, executemany on SQLite): the floor the",
        "  database and driver set.",
        "- `core`: plain SQLAlchemy Core executemany (INSERT ... RETURNING for ids) of the same",
        "  precomputed rows, one run, for reference.",
        "- per CPU second: episodes / (this process's CPU + the PostgreSQL backends' CPU).",
        "",
        "| backend | import episodes/s (wall) | import episodes per CPU s | bare episodes/s (wall) "
        "| bare per CPU s | import/bare (wall) | import/bare (CPU) | peak MiB (full file) "
        "| peak MiB (1/10 file) | core executemany episodes/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, b in results["backends"].items():
        lines.append(
            f"| {name} | {b['import_episodes_per_s']:,} | {b['import_episodes_per_cpu_s']:,} | "
            f"{b['bare_insert_episodes_per_s']:,} | {b['bare_insert_episodes_per_cpu_s']:,} | "
            f"{b['import_to_bare_ratio']} | {b['import_to_bare_cpu_ratio']} | "
            f"{b['import_peak_mib_median']} | {b.get(small_key, '')} | "
            f"{b['core_executemany_episodes_per_s_one_run']:,} |"
        )
    (RESULTS / "import_episodes.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "BACKEND", "CSV"))
    args = parser.parse_args(argv if argv is not None else [])
    if args.child:
        kind, backend, csv_path = args.child
        print(json.dumps(child(kind, backend, Path(csv_path))))
        return
    results = run(args.episodes, args.runs, small=max(args.episodes // 10, 1000))
    write(results)
    print((RESULTS / "import_episodes.md").read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
