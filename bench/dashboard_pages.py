"""Dashboard and API latency with 1,000,000 episodes in PostgreSQL.

Set-up: a fresh PostgreSQL schema, migrated, then seeded with COPY (psycopg): 1,000,000
patients and episodes over 20 sites, 2,000,000 check-ins (6 and 12 months) in states that fit
their dates, 200,000 texts, 20,000 answers, 30,000 alerts (2,000 unresolved). `ANALYZE`, then
the ASGI app is called in-process (Starlette TestClient: same middleware, sessions, CSRF,
audit writes as production, no network stack).

Measured per page: N requests after warm-up, p50 and p95 of wall time per request; three
rounds, medians of the per-round figures reported. The overview serves its check-in counts from
a per-site cache refreshed in the background at most once a minute (alerts are always live);
the "uncached" rows clear that cache before every request, i.e. the cost of one recount. Baseline: `GET /healthz` (a `select 1`)
measured in the same rounds; the ratio column is page p50 / healthz p50.
Goal (issue 6): p95 under 300 ms for every page.

    python -m bench.dashboard_pages [--episodes 1000000] [--requests 30] [--rounds 3] [--keep]

Writes bench/results/dashboard_pages.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
KEY = "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktYmU="
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SITES = [f"Site{n:02d}" for n in range(1, 21)]
PASSWORD = "bench password, not a real one"
# Overview with its figures recounted on every request (the cache cleared first).
COLD = "overview recount, uncached, "


def _url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def _admin_engine(base: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    from tracker.db.engine import normalise_url

    return create_engine(normalise_url(base), isolation_level="AUTOCOMMIT")


def _months(d: date, months: int) -> date:
    from dateutil.relativedelta import relativedelta

    return d + relativedelta(months=months)


# --- seeding -----------------------------------------------------------------------------


def seed(engine, crypto, episodes: int, rng: random.Random) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """COPY the rows in; returns sample references for the timeline pages."""
    raw = engine.raw_connection()
    conn = raw.driver_connection
    start = date(2025, 1, 1)
    span = (date(2026, 11, 20) - start).days
    window = timedelta(days=28)
    ciphertext = crypto.encrypt_phone("+447400100001")  # one number's ciphertext is enough
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        with cur.copy(
            "COPY patients (id, patient_ref, phone_ciphertext, phone_index, birth_year, gender,"
            " imd_quintile, contact_state, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(1, episodes + 1):
                copy.write_row(
                    (i, f"P{i:08d}", ciphertext, f"{i:064x}", 1940 + i % 60,
                     ("female", "male")[i % 2], 1 + i % 5, "active", NOW, NOW)
                )  # fmt: skip
        discharge: list[date] = [start] * (episodes + 1)
        with cur.copy(
            "COPY episodes (id, episode_ref, patient_id, site, referral_date, discharge_date,"
            " sessions, connected_external, pattern, pattern_source, consent_sms, created_at,"
            " updated_at) FROM STDIN"
        ) as copy:
            patterns = ("rapid", "anchored", "with_only")
            for i in range(1, episodes + 1):
                d = start + timedelta(days=rng.randrange(span))
                discharge[i] = d
                copy.write_row(
                    (i, f"E{i:08d}", i, SITES[i % len(SITES)], d - timedelta(days=90), d,
                     1 + i % 9, i % 3 != 2, patterns[i % 3], "recorded", True, NOW, NOW)
                )  # fmt: skip
        checkin_id = 0
        open_checkins: list[tuple[int, int]] = []
        with cur.copy(
            "COPY checkins (id, episode_id, wave, state, target_date, due_at, window_closes_at,"
            " next_attempt_at, send_attempts, question_index, clarifications, reminders_sent,"
            " created_at, updated_at) FROM STDIN"
        ) as copy:
            closed = ("completed", "completed", "partial", "expired", "expired", "failed")
            for i in range(1, episodes + 1):
                for wave in (6, 12):
                    checkin_id += 1
                    target = _months(discharge[i], wave)
                    due = datetime(target.year, target.month, target.day, 9, 0, tzinfo=UTC)
                    closes = due + window
                    if due > NOW:
                        state = "scheduled"
                    elif closes > NOW:
                        state = "open"
                        open_checkins.append((checkin_id, i))
                    else:
                        state = closed[checkin_id % len(closed)]
                    copy.write_row(
                        (checkin_id, i, wave, state, target, due, closes, due, 0, 0, 0, 0, NOW, NOW)
                    )  # fmt: skip
        # Texts for a fifth of the episodes' first check-in (and every open one).
        message_id = 0
        with cur.copy(
            "COPY messages (id, direction, patient_id, checkin_id, purpose, body, media_count,"
            " segments, status, status_rank, attempt, late, created_at) FROM STDIN"
        ) as copy:
            for i in range(1, episodes + 1, 10):
                c = 2 * i - 1
                message_id += 1
                copy.write_row(
                    (message_id, "outbound", i, c, "question", "1/8 Overall, how satisfied...",
                     0, 1, "delivered", 8, 1, False, NOW - timedelta(days=i % 600))
                )  # fmt: skip
                message_id += 1
                copy.write_row(
                    (message_id, "inbound", i, c, "reply", "7", 0, 1, "received", 9, 1, False,
                     NOW - timedelta(days=i % 600))
                )  # fmt: skip
        with cur.copy(
            "COPY answers (id, checkin_id, message_id, question_key, raw_text, value, outcome,"
            " answered_at) FROM STDIN"
        ) as copy:
            for n, i in enumerate(range(1, episodes + 1, 50), start=1):
                copy.write_row(
                    (n, 2 * i - 1, None, "life_satisfaction", "7", 7, "parsed", NOW)
                )  # fmt: skip
        with cur.copy(
            "COPY alerts (id, kind, state, patient_id, episode_id, site, detail, raised_at,"
            " resolved_by, resolved_at, resolution_note) FROM STDIN"
        ) as copy:
            kinds = ("risk", "recontact", "opt_out_review", "delivery_problem")
            total = max(episodes * 3 // 100, 40)
            for n in range(1, total + 1):
                i = 1 + (n * 7919) % episodes
                unresolved = n % 15 == 0
                raised = NOW - timedelta(hours=n % 500)
                copy.write_row(
                    (n, kinds[n % 4], "open" if unresolved else "resolved", i, i,
                     SITES[i % len(SITES)], "bench", raised, None if unresolved else "bench",
                     None if unresolved else raised + timedelta(hours=2),
                     None if unresolved else "done")
                )  # fmt: skip
        for table in ("patients", "episodes", "checkins", "messages", "answers", "alerts"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
    conn.commit()
    raw.close()
    seeded = time.perf_counter() - t0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        from sqlalchemy import text

        t1 = time.perf_counter()
        c.execute(text("VACUUM ANALYZE"))
        vacuum = time.perf_counter() - t1
    site01 = [i for i in range(1, episodes + 1) if i % len(SITES) == 0]
    return {
        "seed_seconds": round(seeded, 1),
        "vacuum_analyze_seconds": round(vacuum, 1),
        "checkins": checkin_id,
        "messages": message_id,
        "timeline_refs": [f"P{rng.choice(site01):08d}" for _ in range(50)],
    }


# --- measuring ---------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure(client, path_or_fn, n: int, warmup: int = 3, headers=None, before=None) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for k in range(n + warmup):
        path = path_or_fn(k) if callable(path_or_fn) else path_or_fn
        if before is not None:
            before()
        t = time.perf_counter()
        response = client.get(path, headers=headers)
        elapsed = (time.perf_counter() - t) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
        if k >= warmup:
            times.append(elapsed)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    parser.add_argument("--schema", help="reuse an already seeded schema (with --keep runs)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from tracker.app import build
    from tracker.clock import FrozenClock
    from tracker.config import load_settings
    from tracker.db.engine import make_engine
    from tracker.db.migrate import upgrade
    from tracker.services import users
    from tracker.web.app import create_app

    base = os.environ.get("TRACKER_BENCH_POSTGRES_URL") or os.environ.get(
        "TRACKER_TEST_POSTGRES_URL", DEFAULT_PG
    )
    rng = random.Random(20261126)
    schema = args.schema or "bench_dash_" + uuid.uuid4().hex[:8]
    admin = _admin_engine(base)
    if not args.schema:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = _url(base, schema)
    settings = load_settings(
        {}, database_url=url, secret_key=KEY, cookie_secure=False,
        exports_dir=str(ROOT / "bench" / "results" / "tmp-exports"),
    )  # fmt: skip
    engine = make_engine(url)
    info: dict[str, object] = {}
    try:
        app = build(settings, clock=FrozenClock(NOW), engine=engine)
        if not args.schema:
            upgrade(engine)
            print(f"seeding {args.episodes:,} episodes into schema {schema} ...", flush=True)
            info = seed(engine, app.crypto, args.episodes, rng)
            print(f"seeded in {info['seed_seconds']} s", flush=True)
        else:
            site01 = [i for i in range(1, args.episodes + 1) if i % len(SITES) == 0]
            info = {"timeline_refs": [f"P{rng.choice(site01):08d}" for _ in range(50)]}
        with app.sessions() as session:
            for email, role, site in (
                ("admin@bench", "admin", None),
                ("staff@bench", "staff", "Site01"),
                ("research@bench", "researcher", None),
            ):
                if users.find_user(session, email) is None:
                    users.add_user(session, email=email, role=role, password=PASSWORD,
                                   site=site, now=NOW, actor="bench")  # fmt: skip
            admin_token = users.create_token(
                session, name=f"bench-admin-{uuid.uuid4().hex[:6]}", role="admin", now=NOW,
                actor="bench",
            ).secret  # fmt: skip
            staff_token = users.create_token(
                session, name=f"bench-staff-{uuid.uuid4().hex[:6]}", role="staff",
                site="Site01", now=NOW, actor="bench",
            ).secret  # fmt: skip
            session.commit()
        web = create_app(app)

        def cache_clear() -> None:
            cache = getattr(web.state, "overview_cache", None)
            if cache is not None:
                cache.clear()

        clients = {}
        for email in ("admin@bench", "staff@bench", "research@bench"):
            client = TestClient(web, follow_redirects=False)
            page = client.get("/login").text
            token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            r = client.post("/login", data={"email": email, "password": PASSWORD,
                                            "csrf_token": token, "next": "/"})  # fmt: skip
            assert r.status_code == 303, r.text[:300]
            clients[email.split("@")[0]] = client
        refs = info["timeline_refs"]
        cursor_after = args.episodes  # a page deep in the id order
        cases = [
            ("healthz (baseline)", "admin", "/healthz", None),
            ("overview, admin (all sites)", "admin", "/", None),
            ("overview, staff (one site)", "staff", "/", None),
            ("overview, researcher (<5 suppressed)", "research", "/", None),
            (COLD + "admin (all sites)", "admin", "/", None),
            (COLD + "staff (one site)", "staff", "/", None),
            ("alerts queue, admin", "admin", "/alerts", None),
            ("alerts queue, staff", "staff", "/alerts", None),
            ("patient timeline, staff", "staff", lambda k: f"/patients/{refs[k % len(refs)]}", None),
            ("audit browser, admin", "admin", "/audit", None),
            ("GET /api/checkins (first page, 100)", "admin", "/api/checkins?limit=100",
             {"Authorization": f"Bearer {admin_token}"}),
            ("GET /api/checkins (deep page, state=open)", "admin",
             f"/api/checkins?limit=100&state=open&after={cursor_after}",
             {"Authorization": f"Bearer {admin_token}"}),
            ("GET /api/checkins (staff token, one site)", "admin", "/api/checkins?limit=100",
             {"Authorization": f"Bearer {staff_token}"}),
            ("GET /api/alerts (unresolved)", "admin", "/api/alerts?limit=100",
             {"Authorization": f"Bearer {admin_token}"}),
        ]  # fmt: skip
        rounds: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in cases}
        for r in range(args.rounds):
            for name, who, path, headers in cases:
                cold = name.startswith(COLD)
                times = measure(
                    clients[who], path, max(args.requests // 3, 5) if cold else args.requests,
                    headers=headers, before=cache_clear if cold else None,
                )  # fmt: skip
                rounds[name].append((statistics.median(times), _percentile(times, 0.95)))
            print(f"round {r + 1}/{args.rounds} done", flush=True)
        base_p50 = statistics.median(p50 for p50, _ in rounds["healthz (baseline)"])
        rows = []
        for name, *_ in cases:
            p50 = statistics.median(p for p, _ in rounds[name])
            p95 = statistics.median(p for _, p in rounds[name])
            rows.append({
                "page": name, "p50_ms": round(p50, 1), "p95_ms": round(p95, 1),
                "ratio_to_healthz_p50": round(p50 / base_p50, 1),
                "rounds": [[round(a, 1), round(b, 1)] for a, b in rounds[name]],
                "meets_goal": p95 < 300,
            })  # fmt: skip
        result = {
            "benchmark": "dashboard_pages",
            "episodes": args.episodes,
            "checkins": info.get("checkins"),
            "messages": info.get("messages"),
            "seed_seconds": info.get("seed_seconds"),
            "vacuum_analyze_seconds": info.get("vacuum_analyze_seconds"),
            "requests_per_round": args.requests,
            "rounds": args.rounds,
            "goal": "p95 < 300 ms per page",
            "all_meet_goal": all(r["meets_goal"] for r in rows if not r["page"].startswith(COLD)),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "pages": rows,
        }
        write_results(result)
        print(json.dumps(rows, indent=1))
    finally:
        engine.dispose()
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        else:
            print(f"kept schema {schema}")
        admin.dispose()
    return 0


def write_results(result: dict[str, object]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dashboard_pages.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Dashboard and API latency, {result['episodes']:,} episodes (PostgreSQL)",
        "",
        f"{result['episodes']:,} episodes, {result['checkins']:,} check-ins, "
        f"{result['messages']:,} texts; seeded by COPY in {result['seed_seconds']} s. "
        f"In-process ASGI client; {result['requests_per_round']} requests per page per round, "
        f"{result['rounds']} rounds, medians of the per-round p50/p95. Machine: {result['machine']}.",
        "",
        "| page | p50 ms | p95 ms | p50 / healthz p50 | p95 < 300 ms |",
        "|---|---:|---:|---:|:---:|",
    ]
    for row in result["pages"]:  # type: ignore[attr-defined]
        lines.append(
            f"| {row['page']} | {row['p50_ms']} | {row['p95_ms']} | "
            f"{row['ratio_to_healthz_p50']} | {'yes' if row['meets_goal'] else 'NO'} |"
        )
    (RESULTS / "dashboard_pages.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
