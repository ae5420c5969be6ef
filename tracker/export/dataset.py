"""Database -> pseudonymised research tables (outcomes and contacts), set-based.

Four plain reads do the work, whatever the cohort size: the exported patients with their
episodes, the follow-up check-ins, every answer and every text tied to a patient (no joins or
aggregates, so the database only scans). Check-ins and answers are pivoted beside each episode
and texts ordered per patient in vectorised numpy/pandas; the only per-patient Python loop is
the HMAC of each patient reference (about a microsecond each with the pads hashed once)."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection

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
from tracker.export.fetch import SnapshotReads, day_of, micros_of

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
    # Four plain reads (no joins or aggregates for the database to do) started together; on
    # PostgreSQL they run side by side on one snapshot. The people table comes first: its
    # pseudonyms (pure Python) are computed while the other three are still streaming in.
    with SnapshotReads(conn) as reads:
        answers_future = reads.submit(*_answers_sql(conn))
        messages_future = reads.submit(*_messages_sql(conn, include_free_text))
        checkins_future = reads.submit(*_checkins_sql(conn))
        people_table = reads.submit(*_people_sql(conn)).result()
        lap("query_people")
        people = _index_episodes(people_table.to_pandas(types_mapper=_pandas_types))
        del people_table
        pid = pseudonyms(study_key, people["patient_ref"])
        lap("pseudonyms")
        people = _join_checkins(people, checkins_future.result())
        lap("checkins")
        answers = answers_future.result()
        lap("query_answers")
        people = _pivot_answers(people, answers, keys)
        del answers
        lap("pivot_answers")
        messages_table = messages_future.result()
        lap("query_messages")

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


_I64, _STR = pa.int64(), pa.string()


def _people_sql(conn: Connection) -> tuple[str, dict[str, pa.DataType]]:
    """One row per episode of an exported patient: the patient and the episode."""
    baseline = ", ".join(f"e.baseline_{k}" for k in OUTCOME_QUESTION_KEYS[:6])
    sql = (
        "SELECT p.id, p.patient_ref, p.birth_year, p.gender, p.imd_quintile, e.id, e.site, "
        f"e.pattern, e.sessions, {day_of(conn, 'e.referral_date')}, "
        f"{day_of(conn, 'e.discharge_date')}, {baseline} "
        f"FROM patients p JOIN episodes e ON e.patient_id = p.id WHERE {_included()}"
    )
    schema: dict[str, pa.DataType] = {
        "patient_id": _I64,
        "patient_ref": _STR,
        "birth_year": _I64,
        "gender": _STR,
        "imd_quintile": _I64,
        "episode_id": _I64,
        "site": _STR,
        "pattern": _STR,
        "sessions": _I64,
        "referral_day": _I64,
        "discharge_day": _I64,
        **{f"baseline_{k}": _I64 for k in OUTCOME_QUESTION_KEYS[:6]},
    }
    return sql, schema


def _checkins_sql(conn: Connection) -> tuple[str, dict[str, pa.DataType]]:
    """Every follow-up check-in; which belong to exported episodes is decided in numpy."""
    waves = ", ".join(str(w) for w in FOLLOW_UP_WAVES)
    opened = "CASE WHEN c.opened_at IS NULL THEN 0 ELSE 1 END"
    sql = (
        f"SELECT c.id, c.episode_id, c.wave, c.state, {day_of(conn, 'c.target_date')}, "
        f"{opened}, {micros_of(conn, 'c.window_closes_at')} "
        f"FROM checkins c WHERE c.wave IN ({waves})"
    )
    schema = {
        "id": _I64,
        "episode_id": _I64,
        "wave": _I64,
        "state": _STR,
        "target_day": _I64,
        "opened": _I64,
        "closes_us": _I64,
    }
    return sql, schema


def _join_checkins(people: pd.DataFrame, checkins: pa.Table) -> pd.DataFrame:
    """Add, per follow-up wave, the episode's check-in side by side: c<w>_id, _state,
    _target_day, _opened and _closes_us (missing where the wave has no check-in)."""
    n = len(people)
    episodes = people["episode_id"].to_numpy(dtype="int64")
    by_episode = np.argsort(episodes, kind="stable")
    episode_of = checkins["episode_id"].to_numpy()
    row, found = _locate(episodes[by_episode], episode_of)
    row = by_episode[row] if n else row
    wave = checkins["wave"].to_numpy()
    columns: dict[str, Any] = {}
    for w in FOLLOW_UP_WAVES:
        pick = np.flatnonzero(found & (wave == w))
        at = row[pick]
        have = np.zeros(n, dtype=bool)
        have[at] = True
        for name, source in (
            ("id", "id"),
            ("target_day", "target_day"),
            ("opened", "opened"),
            ("closes_us", "closes_us"),
        ):
            values = np.zeros(n, dtype="int64")
            values[at] = checkins[source].to_numpy()[pick]
            col = pd.array(values, dtype="Int64")
            col[~have] = pd.NA
            columns[f"c{w}_{name}"] = col
        states = np.full(n, None, dtype=object)
        states[at] = checkins["state"].take(pa.array(pick)).to_numpy(zero_copy_only=False)
        columns[f"c{w}_state"] = pd.array(states, dtype="string[pyarrow]")
    return pd.concat([people, pd.DataFrame(columns, index=people.index)], axis=1)


_PARSED_IN_WINDOW = 1
_INVALID = 2


def _answers_sql(conn: Connection) -> tuple[str, dict[str, pa.DataType]]:
    """Every stored answer as stored; questions, outcomes and the response window are read
    in numpy (a join or CASE here would cost the database more than the transfer saves)."""
    sql = (
        "SELECT a.checkin_id, a.question_key, a.value, a.outcome, "
        f"{micros_of(conn, 'a.answered_at')} FROM answers a"
    )
    return sql, {"checkin_id": _I64, "key": _STR, "value": _I64, "outcome": _STR, "at_us": _I64}


def _answer_kinds(answers: pa.Table, closes_us: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """1 = parsed inside the check-in's response window, 2 = counted invalid, 0 = otherwise
    (skipped, ambiguous, late, or parsed after the window closed)."""
    outcome = answers["outcome"]
    parsed = pc.equal(outcome, AnswerOutcome.PARSED.value).to_numpy(zero_copy_only=False)
    invalid = pc.is_in(outcome, value_set=pa.array(ANSWER_OUTCOMES_COUNTED_INVALID))
    at = answers["at_us"].to_numpy()
    in_window = parsed & (at <= closes_us[slot]) if len(closes_us) else parsed & False
    kinds = np.where(invalid.to_numpy(zero_copy_only=False), _INVALID, 0)
    return np.where(in_window, _PARSED_IN_WINDOW, kinds)


def _pivot_answers(people: pd.DataFrame, answers: pa.Table, keys: list[str]) -> pd.DataFrame:
    """Add, per follow-up wave, each question's answer (the largest value parsed inside the
    window), the first such answer's instant (seconds) and the count of invalid answers."""
    n = len(people)
    ck_ids = np.concatenate(
        [people[f"c{w}_id"].to_numpy("int64", na_value=-1) for w in FOLLOW_UP_WAVES]
    )
    closes = np.concatenate(
        [people[f"c{w}_closes_us"].to_numpy("int64", na_value=-1) for w in FOLLOW_UP_WAVES]
    )
    exists = np.flatnonzero(ck_ids >= 0)
    sort = exists[np.argsort(ck_ids[exists], kind="stable")]
    pos, found = _locate(ck_ids[sort], answers["checkin_id"].to_numpy())
    slot = sort[pos] if len(sort) else pos  # wave_index * n + row
    kind = np.where(found, _answer_kinds(answers, closes, slot), 0)
    key = pc.index_in(answers["key"], value_set=pa.array(keys, pa.string()))
    key = key.fill_null(-1).to_numpy(zero_copy_only=False)
    at = answers["at_us"].to_numpy()
    value_col = answers["value"]
    has_value = ~np.asarray(value_col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    value = value_col.fill_null(0).to_numpy(zero_copy_only=False)

    parsed = kind == _PARSED_IN_WINDOW
    invalid = np.bincount(slot[kind == _INVALID], minlength=2 * n)
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
        # Whole seconds (floor), as every other instant in the export.
        columns[f"c{w}_first_at"] = pd.array(np.where(f == none, 0, f // 1_000_000), "Int64")
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
    sql = (
        "SELECT m.id, m.patient_id, m.checkin_id, m.direction, m.purpose, m.question_key, "
        f"m.attempt, {micros_of(conn, 'COALESCE(m.sent_at, m.created_at)')}, m.status, "
        "m.error_code, m.segments, m.late"
        + (", m.body" if with_body else "")
        + " FROM messages m WHERE m.patient_id IS NOT NULL"
    )
    schema = {
        "message_id": _I64,
        "patient_id": _I64,
        "checkin_id": _I64,
        "direction": _STR,
        "purpose": _STR,
        "question_key": _STR,
        "attempt": _I64,
        "at_us": _I64,
        "status": _STR,
        "error_code": _STR,
        "segments": _I64,
        "late": _I64,
    }
    if with_body:
        schema["body"] = _STR
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
    at_s = messages["at_us"].to_numpy(dtype="int64", na_value=0) // 1_000_000
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
            "sent_day": (_local_days(pd.Series(at_s), tz) - discharge).array,
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
