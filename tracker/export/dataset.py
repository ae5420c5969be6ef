"""Database -> pseudonymised research tables (outcomes and contacts), set-based.

Two queries do the work, whatever the cohort size: one row per episode with its follow-up
check-ins and their answers pivoted side by side (one GROUP BY over check-ins and answers,
conditional aggregation), and every text tied to a patient. Everything after that is
vectorised pandas/numpy; the only per-patient Python loop is the HMAC of each patient
reference (about a microsecond each with the pads hashed once).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, text

from surveys.catalogue import build_survey
from surveys.model import Survey
from tracker.domain import AnswerOutcome, CheckInState, ContactState
from tracker.export.codebook import (
    ANSWER_OUTCOMES_COUNTED_INVALID,
    BASELINE_STATE,
    NOT_SCHEDULED_STATE,
    OUTCOME_QUESTION_KEYS,
    WAVES,
    Column,
    contact_columns,
    extra_question_keys,
    outcome_columns,
)
from tracker.export.fetch import epoch_days, epoch_seconds, fetch_table, is_postgres

PID_LENGTH = 16  # hex digits, as tracker.privacy.Crypto.pseudonym
FOLLOW_UP_WAVES = (6, 12)
# Check-in states in which the opening text went out (the check-in was "opened").
OPENED_STATES = frozenset(
    {CheckInState.OPEN, CheckInState.COMPLETED, CheckInState.PARTIAL, CheckInState.EXPIRED}
)
# Phone-like digit runs in free text (+44 7700 900123, 07700-900123, (0161) 496 0000).
_PHONE_LIKE = re.compile(r"\+?\(?\d[\d\s().-]{7,}\d")
NUMBER_REMOVED = "[number removed]"
_BLOCK = 64  # SHA-256 block size, for HMAC


@dataclass
class StudyDataset:
    """The two export tables plus what the writers and the codebook need to describe them."""

    study: str
    survey: Survey
    outcomes: pd.DataFrame
    contacts: pd.DataFrame
    outcome_columns: list[Column]
    contact_columns: list[Column]
    # Aligned with outcomes rows: True where a follow-up check-in's opening text went out.
    opened: np.ndarray

    @property
    def patients(self) -> int:
        return len(self.outcomes) // len(WAVES)


def pseudonyms(key: bytes, refs: pd.Series) -> np.ndarray:
    """Crypto.pseudonym (HMAC-SHA256, first 16 hex digits) for many refs at once.

    The HMAC pads are hashed once and copied per id: three times faster than hmac.new per
    id, the same digests (a unit test checks them against Crypto.pseudonym).
    """
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner_copy = hashlib.sha256(bytes(b ^ 0x36 for b in key)).copy
    outer_copy = hashlib.sha256(bytes(b ^ 0x5C for b in key)).copy
    out = np.empty(len(refs), dtype=object)
    for i, ref in enumerate(refs):
        inner = inner_copy()
        inner.update(ref.encode("utf-8"))
        outer = outer_copy()
        outer.update(inner.digest())
        out[i] = outer.hexdigest()[:PID_LENGTH]
    return out


def redact_phone_numbers(text: pd.Series) -> pd.Series:
    """Replace anything that looks like a phone number in free text."""
    return text.str.replace(_PHONE_LIKE, NUMBER_REMOVED, regex=True)


def build_dataset(
    conn: Connection,
    *,
    study: str,
    study_key: bytes,
    zone: str,
    instruments: list[str],
    include_free_text: bool = False,
    timings: dict[str, float] | None = None,
) -> StudyDataset:
    """Read the database through `conn` and build the outcomes and contacts tables.

    `timings`, if given, receives the seconds spent in each stage (for benchmarks)."""
    survey = build_survey(instruments)
    keys = [*OUTCOME_QUESTION_KEYS, *extra_question_keys(survey)]
    tz = ZoneInfo(zone)

    lap = _Stopwatch(timings)
    # Three independent reads. On PostgreSQL the answers run on a second connection that
    # shares this transaction's snapshot (pg_export_snapshot), so the database uses two
    # cores and both connections see the same data.
    # The pseudonyms (pure Python, holding the GIL) are computed while the texts and answers
    # are still being read.
    with _Parallel(conn) as reads:
        answers_future = reads.submit(lambda c: fetch_table(c, *_answers_sql(c, keys)))
        people_table = fetch_table(conn, *_people_sql(conn))
        lap("query_people")
        messages_future = reads.submit_here(
            lambda c: fetch_table(c, *_messages_sql(c, include_free_text))
        )
        people = _index_episodes(people_table.to_pandas(types_mapper=_pandas_types))
        del people_table
        pid = pseudonyms(study_key, people["patient_ref"])
        lap("pseudonyms")
        messages_table = messages_future.result()
        lap("query_messages")
        answers = answers_future.result()
        lap("query_answers")
    people = _pivot_answers(people, answers, keys)
    del answers
    lap("pivot_answers")

    o_cols = outcome_columns(survey)
    outcomes, opened = _outcomes(people, pid, keys, tz)
    outcomes = outcomes[[c.name for c in o_cols]]
    lap("outcomes")

    c_cols = contact_columns(include_free_text=include_free_text)
    messages = messages_table.to_pandas(types_mapper=_pandas_types)
    contacts = _contacts(messages, people, pid, tz, include_free_text)
    contacts = contacts[[c.name for c in c_cols]]
    lap("contacts")
    return StudyDataset(study, survey, outcomes, contacts, o_cols, c_cols, opened)


class _Stopwatch:
    def __init__(self, into: dict[str, float] | None) -> None:
        self.into = into
        self.last = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        if self.into is not None:
            self.into[stage] = round(now - self.last, 3)
        self.last = now


def _pandas_types(t: pa.DataType) -> object:
    if pa.types.is_integer(t):
        return pd.Int64Dtype()
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pd.StringDtype("pyarrow")
    return None


def _included(alias: str = "p") -> str:
    # Withdrawn from research or erased: never exported (DESIGN section 4, issue 5).
    return (
        f"{alias}.contact_state <> '{ContactState.WITHDRAWN.value}' AND {alias}.erased_at IS NULL"
    )


class _Parallel:
    """Run reads beside `conn`: on PostgreSQL in a thread on a second connection that imports
    `conn`'s snapshot (so both see exactly the same rows); elsewhere inline on `conn`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.side: Connection | None = None
        self.pool: ThreadPoolExecutor | None = None
        self.here: ThreadPoolExecutor | None = None

    def __enter__(self) -> _Parallel:
        if is_postgres(self.conn):
            snapshot = self.conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            side = self.conn.engine.connect().execution_options(isolation_level="REPEATABLE READ")
            try:
                side.begin()
                side.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            except BaseException:
                side.close()
                raise
            self.side = side
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="export-read")
            self.here = ThreadPoolExecutor(1, thread_name_prefix="export-read-main")
        return self

    def submit_here(self, read: Callable[[Connection], Any]) -> Future[Any]:
        """Run `read(conn)` in a thread (inline when not parallel); leave `conn` alone until
        its result is taken."""
        if self.here is None:
            return _run_now(read, self.conn)
        return self.here.submit(read, self.conn)

    def submit(self, read: Callable[[Connection], Any]) -> Future[Any]:
        if self.pool is None or self.side is None:
            return _run_now(read, self.conn)
        return self.pool.submit(read, self.side)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for pool in (self.pool, self.here):
            if pool is not None:
                pool.shutdown(wait=True)
        if self.side is not None:
            self.side.rollback()  # read-only: nothing to keep
            self.side.close()


def _run_now(read: Callable[[Connection], Any], conn: Connection) -> Future[Any]:
    done: Future[Any] = Future()
    try:
        done.set_result(read(conn))
    except Exception as error:  # noqa: BLE001 - re-raised by .result()
        done.set_exception(error)
    return done


def _people_sql(conn: Connection) -> tuple[str, dict[str, pa.DataType]]:
    """One row per episode of an exported patient: the patient, the episode and, side by side,
    each follow-up wave's check-in (a GROUP BY over check-ins only; answers come separately)."""
    days = lambda c: epoch_days(conn, c)  # noqa: E731
    baseline = ", ".join(f"e.baseline_{k}" for k in OUTCOME_QUESTION_KEYS[:6])
    aggregates = []
    outer = []
    i64, s = pa.int64(), pa.string()
    schema: dict[str, pa.DataType] = {
        "patient_id": i64,
        "patient_ref": s,
        "birth_year": i64,
        "gender": s,
        "imd_quintile": i64,
        "episode_id": i64,
        "site": s,
        "pattern": s,
        "sessions": i64,
        "referral_day": i64,
        "discharge_day": i64,
        **{f"baseline_{k}": i64 for k in OUTCOME_QUESTION_KEYS[:6]},
    }
    for w in FOLLOW_UP_WAVES:
        c = f"c{w}"
        on = f"c.wave = {w}"
        aggregates += [
            f"MAX(CASE WHEN {on} THEN c.id END) AS {c}_id",
            f"MAX(CASE WHEN {on} THEN c.state END) AS {c}_state",
            f"MAX(CASE WHEN {on} THEN c.target_date END) AS {c}_target",
            f"MAX(CASE WHEN {on} AND c.opened_at IS NOT NULL THEN 1 ELSE 0 END) AS {c}_opened",
        ]
        outer.append(f"ck.{c}_id, ck.{c}_state, {days(f'ck.{c}_target')}, ck.{c}_opened")
        schema.update(
            {
                f"{c}_id": i64,
                f"{c}_state": s,
                f"{c}_target_day": i64,
                f"{c}_opened": i64,
            }
        )
    waves = ", ".join(str(w) for w in FOLLOW_UP_WAVES)
    checkins = (
        f"SELECT c.episode_id, {', '.join(aggregates)} FROM checkins c "
        f"WHERE c.wave IN ({waves}) GROUP BY c.episode_id"
    )
    sql = (
        "SELECT p.id, p.patient_ref, p.birth_year, p.gender, p.imd_quintile, e.id, e.site, "
        f"e.pattern, e.sessions, {days('e.referral_date')}, {days('e.discharge_date')}, "
        f"{baseline}, {', '.join(outer)} FROM patients p "
        f"JOIN episodes e ON e.patient_id = p.id LEFT JOIN ({checkins}) ck "
        f"ON ck.episode_id = e.id WHERE {_included()}"
    )
    return sql, schema


_PARSED_IN_WINDOW = 1
_INVALID = 2


def _answers_sql(conn: Connection, keys: list[str]) -> tuple[str, dict[str, pa.DataType]]:
    """Every answer to a follow-up check-in as small integers: check-in id, question (index
    into `keys`, -1 for others), value, kind (1 parsed inside the response window, 2 counted
    invalid, 0 otherwise) and, for the former, when (seconds since the epoch). The pivot is done in numpy."""
    key_code = " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(keys))
    bad = ", ".join(f"'{o}'" for o in ANSWER_OUTCOMES_COUNTED_INVALID)
    parsed = f"a.outcome = '{AnswerOutcome.PARSED.value}' AND a.answered_at <= c.window_closes_at"
    waves = ", ".join(str(w) for w in FOLLOW_UP_WAVES)
    sql = (
        f"SELECT a.checkin_id, CASE a.question_key {key_code} ELSE -1 END, a.value, "
        f"CASE WHEN {parsed} THEN {_PARSED_IN_WINDOW} WHEN a.outcome IN ({bad}) THEN {_INVALID} "
        f"ELSE 0 END, CASE WHEN {parsed} THEN {epoch_seconds(conn, 'a.answered_at')} END "
        f"FROM answers a JOIN checkins c ON c.id = a.checkin_id WHERE c.wave IN ({waves})"
    )
    i64 = pa.int64()
    return sql, {"checkin_id": i64, "key": i64, "value": i64, "kind": i64, "at": i64}


def _pivot_answers(people: pd.DataFrame, answers: pa.Table, keys: list[str]) -> pd.DataFrame:
    """Add, per follow-up wave, each question's answer (the largest value parsed inside the
    window), the first such answer's instant and the count of invalid answers."""
    n = len(people)
    ck_ids = np.concatenate(
        [people[f"c{w}_id"].to_numpy("int64", na_value=-1) for w in FOLLOW_UP_WAVES]
    )
    exists = np.flatnonzero(ck_ids >= 0)
    sort = exists[np.argsort(ck_ids[exists], kind="stable")]
    pos, found = _locate(ck_ids[sort], answers["checkin_id"].to_numpy(zero_copy_only=False))
    slot = sort[pos] if len(sort) else pos  # wave_index * n + row
    kind = answers["kind"].to_numpy(zero_copy_only=False)
    at = answers["at"].fill_null(0).to_numpy(zero_copy_only=False)
    key = answers["key"].to_numpy(zero_copy_only=False)
    value_col = answers["value"]
    has_value = ~np.asarray(value_col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    value = value_col.fill_null(0).to_numpy(zero_copy_only=False)

    parsed = found & (kind == _PARSED_IN_WINDOW)
    invalid = np.bincount(slot[found & (kind == _INVALID)], minlength=2 * n)
    none = np.iinfo(np.int64).max
    first = np.full(len(ck_ids), none, dtype="int64")
    np.minimum.at(first, slot[parsed], at[parsed])
    columns: dict[str, Any] = {}
    best: dict[str, np.ndarray] = {}
    for i, k in enumerate(keys):
        pick = parsed & has_value & (key == i)
        top = np.full(len(ck_ids), np.iinfo(np.int64).min, dtype="int64")
        np.maximum.at(top, slot[pick], value[pick])
        best[k] = top
    for j, w in enumerate(FOLLOW_UP_WAVES):
        part = slice(j * n, (j + 1) * n)
        f = first[part]
        columns[f"c{w}_first_at"] = pd.array(np.where(f == none, 0, f), dtype="Int64")
        columns[f"c{w}_first_at"][f == none] = pd.NA
        columns[f"c{w}_invalid"] = pd.array(invalid[part], dtype="Int64")
        for k in keys:
            v = best[k][part]
            missing = v == np.iinfo(np.int64).min
            col = pd.array(np.where(missing, 0, v), dtype="Int64")
            col[missing] = pd.NA
            columns[f"c{w}_{k}"] = col
    return pd.concat([people, pd.DataFrame(columns, index=people.index)], axis=1)


def _index_episodes(frame: pd.DataFrame) -> pd.DataFrame:
    """One episode per patient: the earliest discharged (then the first enrolled)."""
    if frame["patient_id"].is_unique:
        if frame["patient_id"].is_monotonic_increasing:
            return frame
        return frame.sort_values("patient_id", kind="stable").reset_index(drop=True)
    frame = frame.sort_values(["patient_id", "discharge_day", "episode_id"], kind="stable")
    return frame.drop_duplicates("patient_id", keep="first").reset_index(drop=True)


def _messages_sql(conn: Connection, with_body: bool) -> tuple[str, dict[str, pa.DataType]]:
    """Every text tied to a patient, no joins: which patients and check-ins are exported is
    decided from the people table, so the database only scans."""
    at = epoch_seconds(conn, "COALESCE(m.sent_at, m.created_at)")
    late = "CASE WHEN m.late THEN 1 ELSE 0 END"
    sql = (
        "SELECT m.id, m.patient_id, m.checkin_id, m.direction, m.purpose, m.question_key, "
        f"m.attempt, {at}, m.status, m.error_code, m.segments, {late}"
        + (", m.body" if with_body else "")
        + " FROM messages m WHERE m.patient_id IS NOT NULL"
    )
    i64, s = pa.int64(), pa.string()
    schema = {
        "message_id": i64,
        "patient_id": i64,
        "checkin_id": i64,
        "direction": s,
        "purpose": s,
        "question_key": s,
        "attempt": i64,
        "at": i64,
        "status": s,
        "error_code": s,
        "segments": i64,
        "late": i64,
    }
    if with_body:
        schema["body"] = s
    return sql, schema


def _locate(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `ids` in the sorted unique array `sorted_ids`, and which were found."""
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), dtype="int64"), np.zeros(len(ids), dtype=bool)
    top = int(sorted_ids[-1])
    if sorted_ids[0] >= 0 and top <= 8 * len(sorted_ids) + 4096:
        # Database ids are dense: a direct lookup table beats binary search (cache misses).
        table = np.full(top + 2, -1, dtype="int64")
        table[sorted_ids] = np.arange(len(sorted_ids))
        pos = table[np.where((ids >= 0) & (ids <= top), ids, top + 1)]
        found = pos >= 0
        return np.where(found, pos, 0), found
    pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return pos, sorted_ids[pos] == ids


def _local_days(epoch: pd.Series, tz: ZoneInfo) -> pd.Series:
    """Seconds since the epoch -> days since 1970-01-01 of the local calendar date (nullable)."""
    stamps = pd.to_datetime(epoch.astype("float64"), unit="s", utc=True)
    local = stamps.dt.tz_convert(tz).dt.tz_localize(None)
    days = local.to_numpy(dtype="datetime64[D]", na_value=np.datetime64("NaT")).astype("int64")
    out = pd.array(days, dtype="Int64")
    out[epoch.isna().to_numpy()] = pd.NA
    return pd.Series(out, index=epoch.index)


def _outcomes(
    people: pd.DataFrame,
    pid: np.ndarray,
    keys: list[str],
    tz: ZoneInfo,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Long table: row 3*i + k is patient i at WAVES[k]."""
    n = len(people)
    nw = len(WAVES)
    take = np.repeat(np.arange(n), nw)
    days = people["referral_day"].to_numpy(dtype="int64", na_value=0)
    ref_year = days.astype("datetime64[D]").astype("datetime64[Y]").astype("int64") + 1970
    age = pd.array(ref_year, dtype="Int64") - people["birth_year"].array

    def text(name: str) -> pd.api.extensions.ExtensionArray:
        return people[name].astype("string[pyarrow]").array.take(take)

    frame = pd.DataFrame(
        {
            "pid": pd.array(pid, dtype="string[pyarrow]").take(take),
            "site": text("site"),
            "pattern": text("pattern"),
            "sessions": people["sessions"].array.take(take),
            "age": age.take(take),
            "gender": text("gender"),
            "imd_quintile": people["imd_quintile"].array.take(take),
            "wave": np.tile(np.asarray(WAVES, dtype="int64"), n),
        }
    )
    empty = np.full(n * nw, -1, dtype="int64")
    answers = {k: pd.array(empty, dtype="Int64") for k in keys}
    for k in keys:
        answers[k][:] = pd.NA
    responded = np.zeros(n * nw, dtype="int64")
    days_from_due = pd.array(empty, dtype="Int64")
    days_from_due[:] = pd.NA
    state = np.full(n * nw, NOT_SCHEDULED_STATE, dtype=object)
    opened = np.zeros(n * nw, dtype=bool)

    # Wave 0: the baseline recorded at referral.
    rows = np.arange(n) * nw
    any_baseline = np.zeros(n, dtype=bool)
    for k in OUTCOME_QUESTION_KEYS[:6]:
        col = people[f"baseline_{k}"]
        answers[k][rows] = col.array
        any_baseline |= col.notna().to_numpy()
    responded[rows] = any_baseline.astype("int64")
    state[rows] = BASELINE_STATE

    # Follow-up waves: the check-in's answers, parsed inside its response window.
    for w in FOLLOW_UP_WAVES:
        c = f"c{w}"
        rows = np.arange(n) * nw + WAVES.index(w)
        for k in keys:
            answers[k][rows] = people[f"{c}_{k}"].array
        first_at = people[f"{c}_first_at"]
        responded[rows] = first_at.notna().to_numpy().astype("int64")
        days_from_due[rows] = (_local_days(first_at, tz) - people[f"{c}_target_day"]).array
        exists = people[f"{c}_id"].notna().to_numpy()
        state[rows[exists]] = people.loc[exists, f"{c}_state"].to_numpy(dtype=object)
        went = (people[f"{c}_opened"].to_numpy(dtype="int64", na_value=0) == 1) | people[
            f"{c}_state"
        ].isin([s.value for s in OPENED_STATES]).to_numpy(dtype=bool, na_value=False)
        opened[rows] = went

    frame["responded"] = responded
    frame["days_from_due"] = days_from_due
    for k in keys:
        frame[k] = answers[k]
    frame["checkin_state"] = pd.array(state, dtype="string[pyarrow]")
    return frame, opened


def _contacts(
    messages: pd.DataFrame,
    people: pd.DataFrame,
    pid: np.ndarray,
    tz: ZoneInfo,
    include_free_text: bool,
) -> pd.DataFrame:
    """One row per text of an exported patient (texts of non-exported episodes left out)."""
    # Lookups by binary search on sorted int64 ids (people are sorted by patient_id): far
    # cheaper than hashing millions of nullable values.
    patients = people["patient_id"].to_numpy(dtype="int64")
    ck_ids = np.concatenate(
        [people[f"c{w}_id"].to_numpy("int64", na_value=-1) for w in FOLLOW_UP_WAVES]
    )
    ck_wave = np.repeat(np.asarray(FOLLOW_UP_WAVES, dtype="int64"), len(people))
    ck_invalid = np.concatenate(
        [people[f"c{w}_invalid"].to_numpy("int64", na_value=0) for w in FOLLOW_UP_WAVES]
    )
    exists = ck_ids >= 0
    sort = np.argsort(ck_ids[exists], kind="stable")
    ck_ids, ck_wave, ck_invalid = (a[exists][sort] for a in (ck_ids, ck_wave, ck_invalid))

    patient = messages["patient_id"].to_numpy(dtype="int64")
    checkin = messages["checkin_id"].to_numpy(dtype="int64", na_value=-1)
    where, known = _locate(patients, patient)
    slot, in_export = _locate(ck_ids, checkin)
    # Texts of other check-ins (another episode of the patient) are left out, like that
    # episode's outcomes.
    keep = known & ((checkin < 0) | in_export)
    # Patient, then time order. Low-cardinality text becomes categorical first, so that the
    # reordering moves small integer codes instead of millions of strings.
    at_s = messages["at"].to_numpy(dtype="int64", na_value=0)
    ids = messages["message_id"].to_numpy(dtype="int64")
    order = np.flatnonzero(keep)[np.lexsort((ids[keep], at_s[keep], patient[keep]))]
    texts = ["direction", "purpose", "question_key", "status", "error_code"]
    messages = messages.assign(**{c: messages[c].astype("category") for c in texts})
    messages = messages.take(order).reset_index(drop=True)
    patient, at_s, where, slot, checkin = (a[order] for a in (patient, at_s, where, slot, checkin))
    tied = checkin >= 0

    # Reply delay: from each outbound text to the same patient's next inbound text.
    inbound = (messages["direction"] == "inbound").to_numpy(dtype=bool, na_value=False)
    at = at_s.astype("float64")
    delay = np.full(len(messages), np.nan)
    inbound_rows = np.flatnonzero(inbound)
    if len(inbound_rows):
        k = np.searchsorted(inbound_rows, np.arange(len(messages)), side="right")
        following = inbound_rows[np.minimum(k, len(inbound_rows) - 1)]
        ok = (k < len(inbound_rows)) & (patient[following] == patient) & ~inbound
        delay[ok] = (at[following[ok]] - at[ok]) / 3600.0

    # Unreadable replies per check-in: clarification texts sent plus answers stored invalid.
    clarification = (messages["purpose"] == "clarification").to_numpy(dtype=bool, na_value=False)
    unreadable = ck_invalid + np.bincount(slot[tied & clarification], minlength=len(ck_ids))
    per_checkin = pd.array(np.where(tied, unreadable[slot] if len(ck_ids) else 0, 0), dtype="Int64")
    per_checkin[~tied] = pd.NA
    wave = pd.array(np.where(tied, ck_wave[slot] if len(ck_ids) else 0, 0), dtype="Int64")
    wave[~tied] = pd.NA

    discharge = people["discharge_day"].to_numpy(dtype="int64")[where]
    frame = pd.DataFrame(
        {
            "pid": pd.array(pid, dtype="string[pyarrow]").take(where),
            "wave": wave,
            "direction": messages["direction"].array,
            "purpose": messages["purpose"].array,
            "question_key": messages["question_key"].array,
            "attempt": messages["attempt"].array,
            "sent_day": (_local_days(messages["at"], tz) - discharge).array,
            "status": messages["status"].array,
            "error_code": messages["error_code"].array,
            "segments": messages["segments"].array,
            "reply_delay_hours": np.round(delay, 3),
            "invalid_replies": per_checkin,
            "late": messages["late"].array,
        }
    )
    if include_free_text:
        frame["body"] = redact_phone_numbers(messages["body"]).array
    return frame
