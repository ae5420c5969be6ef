"""`tracker demo`: the whole loop on a simulated cohort, with embedded defaults.

    run_demo(out_dir, patients=500, seed=2026) -> DemoResult

1. A fresh SQLite database `demo.db` in `out_dir` (re-running replaces it, and the `export/`
   and `report/` folders; `tracker.key` is kept), the simulator gateway and a FrozenClock.
2. A cohort from `tracker.demo_behaviour` (values from `analysis.simulate`, so the engagement
   patterns really differ), written as an import CSV and enrolled through `import_csv`, the
   same path as `tracker import`.
3. Thirteen simulated months, jumping from event to event: the scheduler's `tick` whenever a
   check-in, reminder or expiry falls due, and each simulated patient's reply whenever it
   comes, through the normal inbound pipeline (`inbound.receive_and_reply`). Patients react
   to the texts that reach their phone (the simulator's sent list), so clarifications,
   reminders and crisis replies are answered as the software actually sends them.
4. The research export (CSV and Parquet) and the full analysis (`analysis.run.analyse`).

Everything goes through the public service functions: the demo is also an end-to-end test.
"""

from __future__ import annotations

import csv
import heapq
import random
import shutil
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, select

from tracker.app import App, build
from tracker.clock import FrozenClock
from tracker.config import Settings, load_settings
from tracker.db.migrate import upgrade
from tracker.db.tables import Alert, CheckIn, Message
from tracker.demo_behaviour import (
    FOLLOW_UP_WAVES,
    Cohort,
    Conversation,
    Plan,
    discharge_dates,
    draw_cohort,
    gap_between_answers,
)
from tracker.domain import CheckInState, Direction
from tracker.importing import ALL_COLUMNS
from tracker.phone import normalise_mobile
from tracker.privacy import ensure_key_file
from tracker.sample import sample_rows
from tracker.services import dispatch, inbound
from tracker.services.enrolment import import_csv
from tracker.sms.port import InboundSms

# A Monday morning inside the default send window; fixed so every run tells the same story.
DEMO_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SIMULATED_MONTHS = 13
DISCHARGE_SPREAD_DAYS = 42
DEMO_DB = "demo.db"
MARKER = ".tracker-demo"
EXPORT_DIR = "export"
REPORT_DIR = "report"
IMPORT_FILE = "demo-import.csv"
WORKER_ID = "demo"
SERVICE_NAME = "Anytown social prescribing (demo)"
SERVICE_CONTACT = "call Anytown Health Centre on 01632 960000"
STUDY = "demo"
# Texts the patient's phone shows that ask for an answer.
ASKING = {"opening", "question", "clarification", "reminder"}


class DemoError(Exception):
    """The demo cannot run here; the message says what to do."""


class Progress:
    """Where the demo reports progress (the CLI draws rich bars; tests pass nothing)."""

    def start(self, phase: str, total: float) -> None:  # pragma: no cover - interface
        pass

    def update(self, phase: str, completed: float) -> None:  # pragma: no cover - interface
        pass

    def finish(self, phase: str) -> None:  # pragma: no cover - interface
        pass


@dataclass
class DemoSummary:
    patients: int
    checkins_by_state: dict[str, int]
    texts_sent: int
    texts_received: int
    opening_texts_per_checkin_max: int
    answered_by_pattern: dict[str, tuple[int, int]]  # pattern -> (answered, texted)
    alerts_by_kind: dict[str, int]
    alerts_open: int
    contrasts: list[tuple[str, str, str, str]]  # outcome, contrast, estimate, 95% CI
    behaviour: dict[str, int]


@dataclass
class DemoResult:
    out_dir: Path
    database: Path
    import_file: Path
    exports: dict[str, Path]
    report_html: Path | None
    results_json: Path | None
    summary: DemoSummary
    seconds: dict[str, float] = field(default_factory=dict)
    simulated_until: datetime | None = None
    analysis_problem: str | None = None


# --- set-up ------------------------------------------------------------------------------


def prepare_out_dir(out_dir: Path) -> Path:
    """Make `out_dir` ready for a fresh run; only ever removes what an earlier demo wrote."""
    out_dir.mkdir(parents=True, exist_ok=True)
    marker = out_dir / MARKER
    db = out_dir / DEMO_DB
    if db.exists() and not marker.exists():
        raise DemoError(
            f"{db} exists but was not written by `tracker demo`; choose another folder with --out"
        )
    for name in (DEMO_DB, DEMO_DB + "-wal", DEMO_DB + "-shm", IMPORT_FILE):
        (out_dir / name).unlink(missing_ok=True)
    for name in (EXPORT_DIR, REPORT_DIR):
        if (out_dir / name).is_dir():
            shutil.rmtree(out_dir / name)
    marker.write_text("made by `tracker demo`; re-running replaces demo.db, export/, report/\n")
    return db


def demo_settings(out_dir: Path, **overrides: Any) -> Settings:
    """Settings of the demo database in `out_dir`; the environment's TRACKER_* are ignored."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{Path(out_dir).resolve() / DEMO_DB}",
        "sms_backend": "simulator",
        "service_name": SERVICE_NAME,
        "service_contact": SERVICE_CONTACT,
        "batch_size": 10_000,
        **overrides,
    }
    return load_settings({}, **values)


def demo_app(out_dir: Path) -> App:
    """An app on a migrated demo database: simulator gateway, frozen clock at DEMO_START."""
    settings = demo_settings(out_dir)
    ensure_key_file(settings.default_key_path)
    app = build(settings, clock=FrozenClock(DEMO_START))
    upgrade(app.engine)
    return app


def write_import_file(path: Path, cohort: Cohort, *, seed: int, today: date) -> dict[str, int]:
    """The cohort as an import CSV (the DESIGN columns); returns E.164 number -> patient."""
    rng = random.Random(seed)
    discharges = discharge_dates(
        rng, len(cohort.patients), before=today, spread_days=DISCHARGE_SPREAD_DAYS
    )
    phones: dict[str, int] = {}
    contact = sample_rows(len(cohort.patients) * 2, seed=seed, today=today)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ALL_COLUMNS))
        writer.writeheader()
        for patient, discharge in zip(cohort.patients, discharges, strict=True):
            while True:  # the sample generator reuses a few patients; the demo wants each once
                sample = next(contact)
                number = normalise_mobile(sample["phone"])
                if number not in phones:
                    break
            phones[number] = patient.number
            referral = discharge - timedelta(days=rng.randint(30, 150))
            writer.writerow(
                {
                    "episode_ref": f"DEMO-E{patient.number + 1:05d}",
                    "patient_ref": f"DEMO-P{patient.number + 1:05d}",
                    "phone": sample["phone"],
                    "birth_year": referral.year - patient.age,
                    "gender": patient.gender,
                    "imd_quintile": patient.imd_quintile,
                    "site": patient.site,
                    "referral_date": referral.isoformat(),
                    "discharge_date": discharge.isoformat(),
                    "sessions": patient.sessions,
                    "connected_external": "no" if patient.pattern == "with_only" else "yes",
                    "pattern": patient.pattern,
                    "consent_sms": "yes" if patient.consent_sms else "no",
                    **{f"baseline_{k}": v for k, v in patient.baseline.items()},
                }
            )
    return phones


# --- the simulated year ------------------------------------------------------------------


class _Unpaced:
    """Simulated time needs no real pacing (the simulator sends instantly)."""

    waited = 0.0

    def acquire(self, count: float = 1.0) -> float:
        return 0.0

    def hold_off(self, seconds: float) -> None:
        return None


@dataclass
class _Phones:
    """The simulated patients' phones: what they were last asked, and when they reply."""

    app: App
    cohort: Cohort
    numbers: dict[str, int]
    rng: random.Random
    events: list[tuple[datetime, int, int, int]] = field(default_factory=list)
    conversations: dict[tuple[int, int], Conversation] = field(default_factory=dict)
    asked: dict[tuple[int, int], tuple[str | None, str]] = field(default_factory=dict)
    pending: set[tuple[int, int]] = field(default_factory=set)
    current_wave: dict[int, int] = field(default_factory=dict)
    seen: int = 0
    sequence: int = 0
    sent_by_us: int = 0
    by_patient: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_patient = {patient: number for number, patient in self.numbers.items()}

    def read_new_texts(self) -> None:
        """Look at the texts the simulator delivered since last time and plan the replies."""
        sent = self.app.gateway.sent  # type: ignore[attr-defined]
        new = sent[self.seen :]
        self.seen = len(sent)
        if not new:
            return
        ids = [sms.message_id for sms in new]
        info: dict[int, tuple[str, str | None, int | None, datetime | None]] = {}
        # Core, not ORM: this runs after every event, and a plain SELECT is several times
        # cheaper than a Session round trip.
        with self.app.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                rows = conn.execute(_TEXTS_SENT, {"ids": ids[start : start + 500]})
                for mid, purpose, key, wave, closes in rows:
                    info[mid] = (purpose, key, wave, closes)
        now = self.app.clock.now()
        for sms in new:
            patient = self.numbers.get(sms.to)
            if patient is None or sms.message_id not in info:
                continue
            purpose, key, wave, closes = info[sms.message_id]
            if wave is None:
                wave = self.current_wave.get(patient)
                if wave is None:
                    continue
            self.current_wave[patient] = wave
            self._on_text(patient, wave, purpose, key, closes, now)

    def _on_text(
        self,
        patient: int,
        wave: int,
        purpose: str,
        key: str | None,
        closes: datetime | None,
        now: datetime,
    ) -> None:
        slot = (patient, wave)
        conv = self.conversations.get(slot)
        if conv is None:
            behaviour = self.cohort.patients[patient].waves[wave]
            conv = Conversation(self.cohort.patients[patient], wave, behaviour)
            self.conversations[slot] = conv
        if purpose in ASKING and key is not None:
            self.asked[slot] = (key, purpose)
        if purpose == "closing":
            conv.finished = True
        if conv.finished or slot in self.pending or slot not in self.asked:
            return
        plan = conv.behaviour.plan
        if plan is Plan.SILENT:
            return
        if conv.replies == 0:
            if plan is Plan.LATE:
                base = closes or now
                at = base + timedelta(days=self.rng.uniform(1, 6))
            else:
                at = now + conv.behaviour.first_reply_after
        else:
            at = now + gap_between_answers(self.rng)
        self.pending.add(slot)
        self.sequence += 1
        heapq.heappush(self.events, (at, self.sequence, patient, wave))

    def next_reply_at(self) -> datetime | None:
        return self.events[0][0] if self.events else None

    def reply_now(self) -> None:
        """Send every reply due at the current instant."""
        now = self.app.clock.now()
        while self.events and self.events[0][0] <= now:
            _, _, patient, wave = heapq.heappop(self.events)
            slot = (patient, wave)
            self.pending.discard(slot)
            key, purpose = self.asked.get(slot, (None, ""))
            body = self.conversations[slot].reply_to(
                self.rng, key, clarifying=purpose == "clarification"
            )
            if body is None:
                continue
            number = self._number_of(patient)
            self.sequence += 1
            inbound.receive_and_reply(
                self.app,
                InboundSms(
                    provider_sid=f"SMdemo{self.sequence:026d}", from_number=number, body=body
                ),
            )
            self.sent_by_us += 1
            self.read_new_texts()

    def _number_of(self, patient: int) -> str:
        return self.by_patient[patient]


_NOT_WORK = {"window_open", "paced_seconds"}


_TEXTS_SENT = (
    select(
        Message.id, Message.purpose, Message.question_key, CheckIn.wave, CheckIn.window_closes_at
    )
    .outerjoin(CheckIn, CheckIn.id == Message.checkin_id)
    .where(Message.id.in_(bindparam("ids", expanding=True)))
)


def next_scheduler_time(app: App, after: datetime, *, idle: int = 0) -> datetime | None:
    """The next instant at which a tick has something to do, strictly after `after`.

    `idle` ticks in a row found nothing to do: wait longer each time (up to a day), so a
    check-in the scheduler deliberately holds back cannot spin the loop minute by minute."""
    with app.engine.connect() as conn:
        due, reminder, closes = conn.execute(_NEXT_WORK).one()
    floor = after + timedelta(minutes=min(2**idle, 24 * 60))
    candidates = []
    for sending in (due, reminder):
        if sending is not None:
            candidates.append(app.window.next_slot(max(_aware(sending), floor)))
    if closes is not None:
        candidates.append(max(_aware(closes), floor))
    return min(candidates) if candidates else None


_LIVE = (CheckInState.SCHEDULED.value, CheckInState.SENDING.value)
_NEXT_WORK = select(
    select(func.min(func.coalesce(CheckIn.next_attempt_at, CheckIn.due_at)))
    .where(CheckIn.state.in_(_LIVE))
    .scalar_subquery(),
    select(func.min(CheckIn.next_reminder_at))
    .where(CheckIn.state == CheckInState.OPEN.value)
    .scalar_subquery(),
    select(func.min(CheckIn.window_closes_at))
    .where(CheckIn.state.in_((*_LIVE, CheckInState.OPEN.value)))
    .scalar_subquery(),
)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


STAFF = "link.worker@demo.example"
STAFF_ROUND = dt_time(9, 30)
RESOLUTION_NOTES = {
    "risk": "Phoned this morning: safe, has support at home; GP informed (demo)",
    "recontact": "Phoned; follow-up session booked with the link worker (demo)",
    "opt_out_review": "Checked: does not want more texts; left stopped (demo)",
    "delivery_problem": "Number checked with the practice; record updated (demo)",
}
# Recontact requests from the last weeks still waiting at the end, so the demo's alerts queue
# shows what a working queue looks like.
LEFT_FOR_THE_QUEUE = 0.5
QUEUE_WEEKS = 6


def next_staff_round(app: App, after: datetime) -> datetime:
    """The link worker looks at the alerts at 09:30 on each working day (local time)."""
    zone = app.settings.zone
    day = after.astimezone(zone).date()
    while True:
        at = datetime.combine(day, STAFF_ROUND, tzinfo=zone).astimezone(UTC)
        if at > after and day.weekday() in app.settings.weekdays:
            return at
        day += timedelta(days=1)


def handle_alerts(app: App, rng: random.Random, left: set[int], *, queue_from: datetime) -> int:
    """A link worker resolves waiting alerts, apart from some recontact requests raised after
    `queue_from` (kept in `left`), which stay in the queue for the demo's dashboard."""
    from tracker.services import alert_actions

    now = app.clock.now()
    handled = 0
    with app.sessions() as session:
        waiting = session.scalars(
            select(Alert).where(Alert.state == "open", Alert.raised_at < now).order_by(Alert.id)
        ).all()
        for alert in waiting:
            if alert.id in left:
                continue
            if (
                alert.kind == "recontact"
                and alert.raised_at >= queue_from
                and rng.random() < LEFT_FOR_THE_QUEUE
            ):
                left.add(alert.id)
                continue
            alert_actions.resolve(
                session, alert, now=now, actor=STAFF, note=RESOLUTION_NOTES.get(alert.kind)
            )
            handled += 1
        session.commit()
    return handled


def simulate_year(
    app: App, phones: _Phones, *, until: datetime, on_progress: Callable[[datetime], None]
) -> dict[str, int]:
    """Tick and reply, event to event, until nothing is left to do or `until`."""
    clock: FrozenClock = app.clock  # type: ignore[assignment]
    pacer = _Unpaced()
    rng = random.Random(phones.cohort.seed)
    counts: Counter[str] = Counter()
    staff_rng = random.Random(phones.cohort.seed + 2)
    left_open: set[int] = set()
    last_tick = clock.now() - timedelta(minutes=5)
    idle = 0  # ticks in a row that found nothing to do (e.g. a retry waiting for its slot)
    # Replies only ever make the scheduler's next job later (a completed or stopped check-in
    # needs no reminder), so the next tick time is re-read only after a tick and just before
    # acting on it.
    tick_at = next_scheduler_time(app, last_tick, idle=idle)
    staff_at = next_staff_round(app, clock.now())
    while True:
        reply_at = phones.next_reply_at()
        options = [t for t in (tick_at, reply_at) if t is not None and t <= until]
        if not options:
            break
        at = max(min(options), clock.now())
        if staff_at <= at:  # the link worker's morning look at the alerts comes first
            clock.set(max(staff_at, clock.now()))
            counts["alerts handled"] += handle_alerts(
                app, staff_rng, left_open, queue_from=until - timedelta(weeks=QUEUE_WEEKS)
            )
            staff_at = next_staff_round(app, clock.now())
            continue
        if tick_at is not None and at >= tick_at:
            fresh = next_scheduler_time(app, last_tick, idle=idle)
            if fresh != tick_at:
                tick_at = fresh
                continue
        clock.set(at)
        if tick_at is not None and at >= tick_at:
            report = dispatch.tick(app, worker_id=WORKER_ID, pacer=pacer, rng=rng)
            busy = any(v for k, v in report.as_dict().items() if k not in _NOT_WORK)
            idle = 0 if busy else idle + 1
            last_tick = at
            counts["ticks"] += 1
            phones.read_new_texts()
            tick_at = next_scheduler_time(app, last_tick, idle=idle)
        if reply_at is not None and at >= reply_at:
            phones.reply_now()
        on_progress(at)
    return dict(counts)


# --- summary -----------------------------------------------------------------------------


def summarise(app: App, cohort: Cohort, contrasts: Any = None) -> DemoSummary:
    with app.sessions() as session:
        states = dict(
            session.execute(select(CheckIn.state, func.count()).group_by(CheckIn.state)).all()
        )
        sent = session.scalar(
            select(func.count()).where(
                Message.direction == Direction.OUTBOUND.value, Message.provider_sid.is_not(None)
            )
        )
        received = session.scalar(
            select(func.count()).where(Message.direction == Direction.INBOUND.value)
        )
        openings = (
            select(Message.checkin_id, func.count().label("n"))
            .where(Message.purpose == "opening", Message.provider_sid.is_not(None))
            .group_by(Message.checkin_id)
            .subquery()
        )
        max_openings = session.scalar(select(func.max(openings.c.n))) or 0
        alerts = dict(session.execute(select(Alert.kind, func.count()).group_by(Alert.kind)).all())
        alerts_open = session.scalar(
            select(func.count()).select_from(Alert).where(Alert.state != "resolved")
        )
        from tracker.db.tables import Answer, Episode

        texted_rows = session.execute(
            select(Episode.pattern, CheckIn.id, func.count(Answer.id))
            .join(CheckIn, CheckIn.episode_id == Episode.id)
            .outerjoin(Answer, (Answer.checkin_id == CheckIn.id) & (Answer.outcome == "parsed"))
            .where(CheckIn.opened_at.is_not(None))
            .group_by(Episode.pattern, CheckIn.id)
        ).all()
    by_pattern: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pattern, _cid, answers in texted_rows:
        by_pattern[pattern][1] += 1
        if answers:
            by_pattern[pattern][0] += 1
    behaviour = Counter(
        w.plan.value
        for p in cohort.patients
        for wave, w in p.waves.items()
        if wave in FOLLOW_UP_WAVES
    )
    return DemoSummary(
        patients=len(cohort.patients),
        checkins_by_state={str(k): int(v) for k, v in states.items()},
        texts_sent=int(sent or 0),
        texts_received=int(received or 0),
        opening_texts_per_checkin_max=int(max_openings),
        answered_by_pattern={k: (v[0], v[1]) for k, v in sorted(by_pattern.items())},
        alerts_by_kind={str(k): int(v) for k, v in alerts.items()},
        alerts_open=int(alerts_open or 0),
        contrasts=headline_contrasts(contrasts),
        behaviour=dict(behaviour),
    )


HEADLINE_MODELS = {
    "life_satisfaction_mixed": "life satisfaction (difference, 0-10)",
    "lonely_gee": "loneliness (odds ratio)",
    "gp_visits_gee_poisson": "GP contacts (rate ratio)",
}


def headline_contrasts(contrasts: Any) -> list[tuple[str, str, str, str]]:
    """Change to month 12 of each pattern against `rapid`, for the headline models.

    Rows: (outcome, contrast, estimate, 95% CI) as display text. `contrasts` is the table of
    `analysis.run.AnalysisResult.contrasts`; ratios are shown for the log-link models.
    """
    if contrasts is None or len(contrasts) == 0:
        return []
    rows = contrasts[
        (contrasts["kind"] == "difference in change")
        & (contrasts["wave"] == 12)
        & (contrasts["versus"] == "rapid")
        & (contrasts["model"].isin(list(HEADLINE_MODELS)))
    ]

    def shown(value: float, fmt: str) -> str:
        return "n/a" if value != value else fmt.format(value)  # NaN: the fit failed

    out = []
    for _, row in rows.iterrows():
        label = HEADLINE_MODELS[row["model"]]
        if row["scale"] == "difference":
            est, lo, hi, fmt = row["estimate"], row["ci_low"], row["ci_high"], "{:+.2f}"
        else:
            est, lo, hi, fmt = row["ratio"], row["ratio_ci_low"], row["ratio_ci_high"], "{:.2f}"
        out.append(
            (
                label,
                str(row["contrast"]),
                shown(est, fmt),
                f"{shown(lo, fmt)} to {shown(hi, fmt)}",
            )
        )
    order = list(HEADLINE_MODELS.values())
    return sorted(out, key=lambda r: (order.index(r[0]), r[1]))


# --- the whole run -----------------------------------------------------------------------


def run_demo(
    out_dir: Path,
    *,
    patients: int = 500,
    seed: int = 2026,
    progress: Progress | None = None,
    analyse: bool = True,
) -> DemoResult:
    """Run the whole loop in `out_dir` (see the module docstring)."""
    if patients < 10:
        raise DemoError("the demo needs at least 10 patients (--patients)")
    progress = progress or Progress()
    seconds: dict[str, float] = {}
    out_dir = Path(out_dir).resolve()

    started = time.perf_counter()
    progress.start("set-up", 3)
    db = prepare_out_dir(out_dir)
    app = demo_app(out_dir)
    progress.update("set-up", 1)
    try:
        cohort = draw_cohort(patients, seed=seed)
        progress.update("set-up", 2)
        import_file = out_dir / IMPORT_FILE
        today = DEMO_START.astimezone(app.settings.zone).date()
        numbers = write_import_file(import_file, cohort, seed=seed, today=today)
        progress.finish("set-up")
        seconds["set-up"] = time.perf_counter() - started

        started = time.perf_counter()
        progress.start("import", 1)
        report = import_csv(app, import_file, actor="demo", on_progress=lambda done, total: None)
        if not report.imported:
            first = report.errors[0] if report.errors else "unknown problem"
            raise DemoError(f"the demo's import was refused: {first}")
        progress.finish("import")
        seconds["import"] = time.perf_counter() - started

        started = time.perf_counter()
        until = DEMO_START + timedelta(days=round(SIMULATED_MONTHS * 30.44))
        total_days = (until - DEMO_START).total_seconds() / 86400
        progress.start("simulated months", SIMULATED_MONTHS)
        phones = _Phones(app, cohort, numbers, random.Random(seed + 1))
        simulate_year(
            app,
            phones,
            until=until,
            on_progress=lambda at: progress.update(
                "simulated months",
                min(total_days, (at - DEMO_START).total_seconds() / 86400) / 30.44,
            ),
        )
        app.clock.set(until)  # type: ignore[attr-defined]
        dispatch.tick(app, worker_id=WORKER_ID, pacer=_Unpaced())  # expire what is left
        progress.finish("simulated months")
        seconds["simulation"] = time.perf_counter() - started

        started = time.perf_counter()
        progress.start("export", 2)
        from tracker.export import export_study

        exports = {}
        for i, fmt in enumerate(("csv", "parquet")):
            target = out_dir / EXPORT_DIR / fmt
            export_study(app, fmt=fmt, out_dir=target, study=STUDY, actor="demo")
            exports[fmt] = target
            progress.update("export", i + 1)
        progress.finish("export")
        seconds["export"] = time.perf_counter() - started

        report_html = results_json = contrasts = None
        problem = None
        if analyse:
            started = time.perf_counter()
            progress.start("analysis", 1)
            report_html, results_json, contrasts, problem = _analyse(
                exports["parquet"], out_dir / REPORT_DIR
            )
            progress.finish("analysis")
            seconds["analysis"] = time.perf_counter() - started

        summary = summarise(app, cohort, contrasts)
        return DemoResult(
            out_dir=out_dir,
            database=db,
            import_file=import_file,
            exports=exports,
            report_html=report_html,
            results_json=results_json,
            summary=summary,
            seconds=seconds,
            simulated_until=until,
            analysis_problem=problem,
        )
    finally:
        app.close()


def _analyse(
    export_dir: Path, report_dir: Path
) -> tuple[Path | None, Path | None, Any, str | None]:
    """The full analysis of the Parquet export: report.html, results.json, contrasts."""
    try:
        from analysis.run import analyse
    except ImportError:
        return None, None, None, "the analysis package (analysis.run) is not available"
    from analysis.dataset import AnalysisInputError

    try:
        with warnings.catch_warnings():
            # Small demo cohorts make some fits noisy; the report flags non-convergence itself.
            warnings.simplefilter("ignore")
            result = analyse(export_dir, report_dir)
    except AnalysisInputError as exc:
        return None, None, None, f"the export could not be analysed: {exc}"
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
        # Tiny cohorts (--patients 10) can leave a model without enough data to fit; the
        # rest of the demo stands, so say so instead of failing the whole run.
        return (
            None,
            None,
            None,
            f"a model could not be fitted ({type(exc).__name__}: {exc}); try more --patients",
        )
    return result.report_path, result.results_path, result.contrasts, None
