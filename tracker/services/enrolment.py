"""Enrolling discharged episodes: upsert patients and episodes, plan their check-ins.

Bulk by design: rows arrive in batches (e.g. 1,000); each batch costs one SELECT per table to
find what already exists and one executemany per insert/update, never a query per row.

    Enroller(session, ...).enrol(batch)   several batches inside the caller's transaction
    enrol_episodes(app, rows)             one transaction (API, tests, factories)
    import_csv(app, path, ...)            the `tracker import` use case: validate, enrol, report

Re-enrolling an identical row changes nothing (and records nothing). A changed discharge date
(or consent) re-plans the check-ins that have not been sent yet and leaves an audit event that
names the changed fields, never their values.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from tracker import import_messages as msg
from tracker.db.bulk import among, insert_rows, insert_with_ids
from tracker.db.tables import AuditEvent, CheckIn, Episode, ErasedRef, Patient
from tracker.domain import PATTERN_RULE_VERSION, CheckInState, ContactState, derive_pattern
from tracker.importing import (
    EpisodeFile,
    EpisodeRow,
    RejectsWriter,
    RowError,
    checked_rows,
    rejects_path,
)
from tracker.privacy import Crypto
from tracker.schedule import PlannedCheckIn, SendWindow, plan_checkins
from tracker.services.contact import CONTACT_PREFIX

NO_CONSENT_REASON = "no consent to texts"
DEFAULT_BATCH = 1000

_patients = Patient.__table__
_episodes = Episode.__table__
_checkins = CheckIn.__table__
_audit = AuditEvent.__table__

# Episode columns compared on re-import (a difference means "updated").
_EPISODE_FIELDS = (
    "patient_id",
    "site",
    "referral_date",
    "discharge_date",
    "sessions",
    "connected_external",
    "pattern",
    "pattern_source",
    "pattern_rule_version",
    "consent_sms",
    "baseline_life_satisfaction",
    "baseline_worthwhile",
    "baseline_happy",
    "baseline_anxious",
    "baseline_lonely",
    "baseline_gp_visits",
)
_PATIENT_FIELDS = ("phone_index", "birth_year", "gender", "imd_quintile")
# Changes that move the check-in dates or whether texts may be sent at all.
_REPLAN_FIELDS = frozenset({"discharge_date", "consent_sms"})


@dataclass
class EnrolmentCounts:
    episodes_created: int = 0
    episodes_updated: int = 0
    episodes_unchanged: int = 0
    patients_created: int = 0
    patients_updated: int = 0
    checkins_scheduled: int = 0
    checkins_missed: int = 0
    checkins_cancelled: int = 0  # patient had stopped/paused/withdrawn before enrolment
    checkins_rescheduled: int = 0
    rows_erased: int = 0  # rows naming a patient or episode erased on request: not enrolled

    @property
    def changed(self) -> bool:
        return bool(
            self.episodes_created
            or self.episodes_updated
            or self.patients_created
            or self.patients_updated
        )

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Enroller:
    """Enrols batches of validated rows inside the caller's transaction."""

    def __init__(
        self,
        session: Session,
        *,
        now: datetime,
        crypto: Crypto,
        window: SendWindow,
        waves: Sequence[int],
        response_days: int,
        actor: str = "cli",
    ) -> None:
        self.session = session
        self.now = now
        self.crypto = crypto
        self.window = window
        self.waves = list(waves)
        self.response_days = response_days
        self.actor = actor
        self.counts = EnrolmentCounts()
        # Plans depend only on (discharge date, consent) for one `now`: many rows share them.
        self._plans: dict[tuple[date, bool], list[PlannedCheckIn]] = {}
        self._any_erased: bool | None = None

    # --- planning ----------------------------------------------------------------------

    def plans(self, discharge: date, consent: bool) -> list[PlannedCheckIn]:
        key = (discharge, consent)
        found = self._plans.get(key)
        if found is None:
            found = plan_checkins(
                discharge=discharge,
                waves=self.waves,
                window=self.window,
                response_days=self.response_days,
                now=self.now,
                consent=consent,
            )
            self._plans[key] = found
        return found

    # --- one batch ---------------------------------------------------------------------

    def _without_erased(self, rows: Sequence[EpisodeRow]) -> Sequence[EpisodeRow]:
        """Drop rows naming a patient or episode erased on request (never enrol them again)."""
        if not rows:
            return rows
        if self._any_erased is None:
            self._any_erased = (
                self.session.scalars(select(ErasedRef.id).limit(1)).first() is not None
            )
        if not self._any_erased:
            return rows
        tokens = {
            row.episode_ref: (
                self.crypto.erased_ref_token(row.patient_ref),
                self.crypto.erased_ref_token(row.episode_ref),
            )
            for row in rows
        }
        wanted = [t for pair in tokens.values() for t in pair]
        erased = set(
            self.session.scalars(select(ErasedRef.token).where(ErasedRef.token.in_(wanted)))
        )
        kept = [row for row in rows if not erased.intersection(tokens[row.episode_ref])]
        self.counts.rows_erased += len(rows) - len(kept)
        return kept

    def enrol(self, rows: Sequence[EpisodeRow]) -> None:
        rows = self._without_erased(rows)
        if not rows:
            return
        patients = self._upsert_patients(rows)
        self._upsert_episodes(rows, patients)

    def _upsert_patients(self, rows: Sequence[EpisodeRow]) -> dict[str, tuple[int, str]]:
        """patient_ref -> (id, contact_state); the latest row in the batch wins."""
        latest: dict[str, EpisodeRow] = {}
        for row in rows:
            latest[row.patient_ref] = row
        existing = {
            r.patient_ref: r
            for r in self.session.execute(
                select(
                    _patients.c.id,
                    _patients.c.patient_ref,
                    _patients.c.phone_index,
                    _patients.c.birth_year,
                    _patients.c.gender,
                    _patients.c.imd_quintile,
                    _patients.c.contact_state,
                ).where(among(self.session, _patients.c.patient_ref, list(latest)))
            )
        }
        result: dict[str, tuple[int, str]] = {}
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for ref, row in latest.items():
            index = self.crypto.phone_index(row.phone) if row.phone else None
            old = existing.get(ref)
            if old is None:
                inserts.append(
                    {
                        "patient_ref": ref,
                        "phone_ciphertext": self.crypto.encrypt_phone(row.phone)
                        if row.phone
                        else None,
                        "phone_index": index,
                        "birth_year": row.birth_year,
                        "gender": row.gender,
                        "imd_quintile": row.imd_quintile,
                        "contact_state": ContactState.ACTIVE.value,
                        "created_at": self.now,
                        "updated_at": self.now,
                    }
                )
                continue
            result[ref] = (old.id, old.contact_state)
            # A row without a number (no consent) keeps the number already on file.
            new_index = index if index is not None else old.phone_index
            wanted = (new_index, row.birth_year, row.gender, row.imd_quintile)
            if wanted != tuple(getattr(old, f) for f in _PATIENT_FIELDS):
                change = {
                    "b_id": old.id,
                    "phone_index": new_index,
                    "birth_year": row.birth_year,
                    "gender": row.gender,
                    "imd_quintile": row.imd_quintile,
                    "updated_at": self.now,
                }
                if new_index != old.phone_index:
                    updates.append(
                        {**change, "phone_ciphertext": self.crypto.encrypt_phone(row.phone)}  # type: ignore[arg-type]
                    )
                else:
                    updates.append(change)
        if inserts:
            created = insert_with_ids(self.session, _patients, inserts, "patient_ref")
            for ref, pid in created.items():
                result[ref] = (pid, ContactState.ACTIVE.value)
            self.counts.patients_created += len(inserts)
        for group in _same_keys(updates):
            self.session.execute(
                update(_patients)
                .where(_patients.c.id == bindparam("b_id"))
                .values({k: bindparam(k) for k in group[0] if k != "b_id"}),
                group,
            )
        self.counts.patients_updated += len(updates)
        return result

    def _episode_values(self, row: EpisodeRow, patient_id: int) -> dict[str, Any]:
        if row.pattern is not None:
            pattern, source, version = row.pattern.value, "recorded", None
        else:
            derived = derive_pattern(
                sessions=row.sessions, connected_external=row.connected_external
            )
            pattern, source, version = derived.value, "derived", PATTERN_RULE_VERSION
        return {
            "patient_id": patient_id,
            "site": row.site,
            "referral_date": row.referral_date,
            "discharge_date": row.discharge_date,
            "sessions": row.sessions,
            "connected_external": row.connected_external,
            "pattern": pattern,
            "pattern_source": source,
            "pattern_rule_version": version,
            "consent_sms": row.consent_sms,
            "baseline_life_satisfaction": row.baseline_life_satisfaction,
            "baseline_worthwhile": row.baseline_worthwhile,
            "baseline_happy": row.baseline_happy,
            "baseline_anxious": row.baseline_anxious,
            "baseline_lonely": row.baseline_lonely,
            "baseline_gp_visits": row.baseline_gp_visits,
        }

    def _upsert_episodes(
        self, rows: Sequence[EpisodeRow], patients: dict[str, tuple[int, str]]
    ) -> None:
        existing = {
            r.episode_ref: r
            for r in self.session.execute(
                select(_episodes.c.id, _episodes.c.episode_ref, *_episode_columns()).where(
                    among(self.session, _episodes.c.episode_ref, [r.episode_ref for r in rows])
                )
            )
        }
        inserts: list[dict[str, Any]] = []
        new_rows: list[EpisodeRow] = []
        updates: list[dict[str, Any]] = []
        replan: list[tuple[int, str, EpisodeRow, list[str]]] = []
        audits: list[dict[str, Any]] = []
        for row in rows:
            patient_id, _state = patients[row.patient_ref]
            values = self._episode_values(row, patient_id)
            old = existing.get(row.episode_ref)
            if old is None:
                inserts.append(
                    {
                        "episode_ref": row.episode_ref,
                        **values,
                        "created_at": self.now,
                        "updated_at": self.now,
                    }
                )
                new_rows.append(row)
                continue
            changed = [f for f in _EPISODE_FIELDS if getattr(old, f) != values[f]]
            if not changed:
                self.counts.episodes_unchanged += 1
                continue
            self.counts.episodes_updated += 1
            updates.append({"b_id": old.id, **values, "updated_at": self.now})
            if _REPLAN_FIELDS.intersection(changed):
                replan.append((old.id, row.episode_ref, row, changed))
            else:
                audits.append(self._audit_row(row.episode_ref, changed, 0))
        if inserts:
            ids = insert_with_ids(self.session, _episodes, inserts, "episode_ref")
            self.counts.episodes_created += len(inserts)
            self._insert_checkins(
                [(ids[row.episode_ref], row, patients[row.patient_ref][1]) for row in new_rows]
            )
        if updates:
            self.session.execute(
                update(_episodes)
                .where(_episodes.c.id == bindparam("b_id"))
                .values({k: bindparam(k) for k in updates[0] if k != "b_id"}),
                updates,
            )
        if replan:
            audits.extend(self._replan(replan, patients))
        if audits:
            self.session.execute(insert(_audit), audits)

    def _audit_row(self, episode_ref: str, changed: list[str], moved: int) -> dict[str, Any]:
        return {
            "at": self.now,
            "actor": self.actor,
            "action": "episode.updated",
            "entity": "episode",
            "entity_ref": episode_ref,
            # Field names only: the values may identify the patient.
            "detail": {"changed": changed, "checkins_replanned": moved},
        }

    def _checkin_row(
        self, episode_id: int, plan: PlannedCheckIn, contact_state: str
    ) -> dict[str, Any]:
        state, reason = plan.state, plan.reason
        if state == CheckInState.SCHEDULED and contact_state != ContactState.ACTIVE:
            # Someone who texted STOP (or was paused/withdrawn) gets nothing from a new episode;
            # the contact prefix lets START/resume restore it while its window is open.
            state = CheckInState.CANCELLED
            reason = f"{CONTACT_PREFIX}patient was {contact_state} when this episode was enrolled"
        if state == CheckInState.SCHEDULED:
            self.counts.checkins_scheduled += 1
        elif state == CheckInState.MISSED:
            self.counts.checkins_missed += 1
        else:
            self.counts.checkins_cancelled += 1
        live = state == CheckInState.SCHEDULED
        return {
            "episode_id": episode_id,
            "wave": plan.wave,
            "state": state.value,
            "target_date": plan.target_date,
            "due_at": plan.due_at,
            "window_closes_at": plan.window_closes_at,
            "next_attempt_at": plan.due_at if live else None,
            "send_attempts": 0,
            "question_index": 0,
            "clarifications": 0,
            "reminders_sent": 0,
            "reason": reason,
            "closed_at": None if live else self.now,
            "created_at": self.now,
            "updated_at": self.now,
        }

    def _insert_checkins(self, items: list[tuple[int, EpisodeRow, str]]) -> None:
        rows = [
            self._checkin_row(episode_id, plan, contact_state)
            for episode_id, row, contact_state in items
            for plan in self.plans(row.discharge_date, row.consent_sms)
        ]
        insert_rows(self.session, _checkins, rows)

    def _replan(
        self,
        items: list[tuple[int, str, EpisodeRow, list[str]]],
        patients: dict[str, tuple[int, str]],
    ) -> list[dict[str, Any]]:
        """Move unsent check-ins of episodes whose discharge date or consent changed."""
        ids = [episode_id for episode_id, *_ in items]
        current: dict[int, dict[int, Any]] = {}
        for checkin in self.session.execute(
            select(
                _checkins.c.id,
                _checkins.c.episode_id,
                _checkins.c.wave,
                _checkins.c.state,
                _checkins.c.reason,
                _checkins.c.send_attempts,
                _checkins.c.opened_at,
            ).where(among(self.session, _checkins.c.episode_id, ids))
        ):
            current.setdefault(checkin.episode_id, {})[checkin.wave] = checkin
        changes: list[dict[str, Any]] = []
        missing: list[dict[str, Any]] = []
        audits: list[dict[str, Any]] = []
        for episode_id, ref, row, changed in items:
            contact_state = patients[row.patient_ref][1]
            moved = 0
            for plan in self.plans(row.discharge_date, row.consent_sms):
                old = current.get(episode_id, {}).get(plan.wave)
                if old is None:
                    missing.append(self._checkin_row(episode_id, plan, contact_state))
                    moved += 1
                    continue
                if not _unsent(old):
                    continue  # already sent, answered or cancelled: history stays as it was
                new = self._checkin_row(episode_id, plan, contact_state)
                self._uncount(new["state"])
                changes.append(
                    {
                        "b_id": old.id,
                        **{
                            k: new[k]
                            for k in (
                                "state",
                                "target_date",
                                "due_at",
                                "window_closes_at",
                                "next_attempt_at",
                                "reason",
                                "closed_at",
                            )
                        },
                        "updated_at": self.now,
                    }
                )
                moved += 1
            self.counts.checkins_rescheduled += moved
            audits.append(self._audit_row(ref, changed, moved))
        if changes:
            self.session.execute(
                update(_checkins)
                .where(_checkins.c.id == bindparam("b_id"))
                .values({k: bindparam(k) for k in changes[0] if k != "b_id"}),
                changes,
            )
        insert_rows(self.session, _checkins, missing)
        return audits

    def _uncount(self, state: str) -> None:
        # Re-planned check-ins are counted as rescheduled, not as newly scheduled/missed.
        if state == CheckInState.SCHEDULED:
            self.counts.checkins_scheduled -= 1
        elif state == CheckInState.MISSED:
            self.counts.checkins_missed -= 1
        else:
            self.counts.checkins_cancelled -= 1


def _unsent(checkin: Any) -> bool:
    """Scheduled and never attempted, or missed only for want of consent."""
    if checkin.opened_at is not None or checkin.send_attempts:
        return False
    if checkin.state == CheckInState.SCHEDULED:
        return True
    return checkin.state == CheckInState.MISSED and checkin.reason == NO_CONSENT_REASON


def _episode_columns() -> list[Any]:
    return [_episodes.c[name] for name in _EPISODE_FIELDS]


def _same_keys(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """executemany needs the same keys in every row: group them."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


# --- use cases ---------------------------------------------------------------------------


def enroller_for(app: Any, session: Session, *, actor: str = "cli") -> Enroller:
    settings = app.settings
    return Enroller(
        session,
        now=app.clock.now(),
        crypto=app.crypto,
        window=app.window,
        waves=settings.waves_months,
        response_days=settings.response_window_days,
        actor=actor,
    )


def enrol_episodes(app: Any, rows: Iterable[EpisodeRow], *, actor: str = "api") -> EnrolmentCounts:
    """Enrol already validated rows in one transaction (API, factories)."""
    with app.sessions() as session, session.begin():
        enroller = enroller_for(app, session, actor=actor)
        batch: list[EpisodeRow] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= DEFAULT_BATCH:
                enroller.enrol(batch)
                batch = []
        enroller.enrol(batch)
        return enroller.counts


@dataclass
class ImportReport:
    """What an import did; `imported` is False when rows failed and nothing went in."""

    path: Path
    imported: bool
    rows_read: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: EnrolmentCounts = field(default_factory=EnrolmentCounts)
    rejects_file: Path | None = None


def service_today(app: Any) -> date:
    return app.clock.now().astimezone(app.settings.zone).date()


class _BackgroundEnroller:
    """Enrols batches on a second thread while the caller validates the next ones.

    The database does its share (indexes, foreign keys) while Python checks the next rows: the
    drivers release the GIL while they wait. The thread owns the session from begin to commit
    or rollback, so no connection is ever used by two threads. The queue holds at most two
    batches, so memory stays flat however large the file.
    """

    _DONE = object()

    def __init__(self, app: Any, *, actor: str, path: Path) -> None:
        self.app, self.actor, self.path = app, actor, path
        self.error: BaseException | None = None
        self.counts = EnrolmentCounts()
        self.rejected = 0
        self._commit = False
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="enrolment", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        session = self.app.sessions()
        try:
            session.begin()
            enroller = enroller_for(self.app, session, actor=self.actor)
            while True:
                batch = self._queue.get()
                if batch is self._DONE:
                    break
                if self.error is None:
                    try:
                        enroller.enrol(batch)
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        self.error = exc
            if self._commit and self.error is None:
                if enroller.counts.changed:
                    session.execute(
                        insert(_audit), [_import_audit(enroller, self.path, self.rejected)]
                    )
                session.commit()
                self.counts = enroller.counts
            else:
                session.rollback()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            self.error = self.error or exc
            session.rollback()
        finally:
            session.close()

    def put(self, batch: list[EpisodeRow]) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(batch)

    def finish(self, *, commit: bool, rejected: int = 0) -> EnrolmentCounts:
        """Commit (or roll back) and wait; re-raises whatever went wrong on the thread."""
        if self._thread.is_alive():
            self._commit, self.rejected = commit, rejected
            self._queue.put(self._DONE)
            self._thread.join()
        if self.error is not None:
            raise self.error
        return self.counts

    def abandon(self) -> None:
        """Roll back and stop the thread if it still runs (cleanup after an error)."""
        if self._thread.is_alive():
            self._commit = False
            self._queue.put(self._DONE)
            self._thread.join()


def import_csv(
    app: Any,
    path: Path,
    *,
    skip_invalid: bool = False,
    actor: str = "cli",
    batch_size: int = DEFAULT_BATCH,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Validate and enrol every row of `path` (see module docstring for the rules).

    All-or-nothing by default: rows are enrolled as they are validated, inside one transaction
    that is rolled back if any row fails, so the file is read once and nothing is half-written.
    With `skip_invalid`, valid rows go in and rejects go to `<file>.rejects.csv`.
    Raises ImportFileError when the file itself cannot be used (missing columns, not UTF-8).
    """
    path = Path(path)
    today = service_today(app)
    report = ImportReport(path=path, imported=False)
    rejects: RejectsWriter | None = None
    with EpisodeFile.open(path) as source:
        if source.unknown_columns:
            report.warnings.append(
                msg.UNKNOWN_COLUMNS.format(columns=", ".join(source.unknown_columns))
            )
        writer = _BackgroundEnroller(app, actor=actor, path=path)
        try:
            batch: list[EpisodeRow] = []
            for item in checked_rows(source, today=today):
                report.rows_read += 1
                if item.episode is None:
                    report.rejected += 1
                    report.errors.extend(item.errors)
                    if skip_invalid:
                        if rejects is None:
                            rejects = RejectsWriter(rejects_path(path), source.header)
                        rejects.write(item)
                    continue
                if report.rejected and not skip_invalid:
                    continue  # everything will be rolled back: just find the other errors
                batch.append(item.episode)
                if len(batch) >= batch_size:
                    writer.put(batch)
                    batch = []
                    if on_progress is not None:
                        on_progress(source.consumed, source.size)
            if report.rejected and not skip_invalid:
                writer.finish(commit=False)
                return report
            writer.put(batch)
            report.counts = writer.finish(commit=True, rejected=report.rejected)
            report.imported = True
        finally:
            writer.abandon()  # no-op when already finished; rolls back otherwise
            if rejects is not None:
                rejects.close()
                report.rejects_file = rejects.path
            if on_progress is not None:
                on_progress(source.size, source.size)
    return report


def _import_audit(enroller: Enroller, path: Path, rejected: int) -> dict[str, Any]:
    return {
        "at": enroller.now,
        "actor": enroller.actor,
        "action": "import",
        "entity": "import",
        "entity_ref": path.name[-64:],
        "detail": {**enroller.counts.as_dict(), "rejected": rejected},
    }
