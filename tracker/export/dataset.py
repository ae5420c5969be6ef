"""Database -> pseudonymised research tables (outcomes and contacts), set-based.

Three queries do the work, whatever the cohort size: patients with their episodes, check-ins
with their answers pivoted to one row by conditional aggregation, and messages. Everything
after that is vectorised pandas/numpy: no per-patient Python loops except the HMAC of each
patient reference, which the standard library does at about a million ids a second.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
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
from tracker.export.fetch import epoch_days, epoch_seconds, fetch_table

PID_LENGTH = 16  # hex digits, as tracker.privacy.Crypto.pseudonym
FOLLOW_UP_WAVES = (6, 12)
# Check-in states in which the opening text went out (the check-in was "opened").
OPENED_STATES = frozenset(
    {CheckInState.OPEN, CheckInState.COMPLETED, CheckInState.PARTIAL, CheckInState.EXPIRED}
)
# Phone-like digit runs in free text (+44 7700 900123, 07700-900123, (0161) 496 0000).
_PHONE_LIKE = re.compile(r"\+?\(?\d[\d\s().-]{7,}\d")
NUMBER_REMOVED = "[number removed]"


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
    """Crypto.pseudonym for many refs with the study key derived once."""
    new = hmac.new
    sha = hashlib.sha256
    return np.array(
        [new(key, r.encode("utf-8"), sha).hexdigest()[:PID_LENGTH] for r in refs], dtype=object
    )


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
) -> StudyDataset:
    """Read the database through `conn` and build the outcomes and contacts tables."""
    survey = build_survey(instruments)
    keys = [*OUTCOME_QUESTION_KEYS, *extra_question_keys(survey)]
    tz = ZoneInfo(zone)

    people = _index_episodes(fetch_table(conn, *_patients_sql(conn)).to_pandas())
    pid = pseudonyms(study_key, people["patient_ref"])
    checkins = fetch_table(conn, *_checkins_sql(conn, keys)).to_pandas(types_mapper=_nullable_ints)
    checkins = checkins[checkins["episode_id"].isin(people["episode_id"])]

    o_cols = outcome_columns(survey)
    outcomes, opened = _outcomes(people, pid, checkins, keys, tz)
    outcomes = outcomes[[c.name for c in o_cols]]

    c_cols = contact_columns(include_free_text=include_free_text)
    messages = fetch_table(conn, *_messages_sql(conn, include_free_text)).to_pandas(
        types_mapper=_nullable_ints
    )
    contacts = _contacts(messages, people, pid, checkins, tz, include_free_text)
    contacts = contacts[[c.name for c in c_cols]]
    return StudyDataset(study, survey, outcomes, contacts, o_cols, c_cols, opened)


def _nullable_ints(t: pa.DataType) -> pd.api.extensions.ExtensionDtype | None:
    return pd.Int64Dtype() if pa.types.is_integer(t) else None


def _included(conn: Connection, alias: str = "p") -> str:
    # Withdrawn from research or erased: never exported (DESIGN section 4, issue 5).
    return (
        f"{alias}.contact_state <> '{ContactState.WITHDRAWN.value}' AND {alias}.erased_at IS NULL"
    )


def _patients_sql(conn: Connection) -> tuple[str, dict[str, pa.DataType]]:
    days = lambda c: epoch_days(conn, c)  # noqa: E731
    baseline = ", ".join(f"e.baseline_{k}" for k in OUTCOME_QUESTION_KEYS[:6])
    sql = (
        "SELECT p.id, p.patient_ref, p.birth_year, p.gender, p.imd_quintile, e.id, e.site, "
        f"e.pattern, e.sessions, {days('e.referral_date')}, {days('e.discharge_date')}, "
        f"{baseline} FROM patients p JOIN episodes e ON e.patient_id = p.id "
        f"WHERE {_included(conn)}"
    )
    i64, s = pa.int64(), pa.string()
    schema = {
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
    return sql, schema


def _index_episodes(frame: pd.DataFrame) -> pd.DataFrame:
    """One episode per patient: the earliest discharged (then the first enrolled)."""
    frame = frame.sort_values(["patient_id", "discharge_day", "episode_id"], kind="stable")
    frame = frame.drop_duplicates("patient_id", keep="first")
    return frame.sort_values("patient_id", kind="stable").reset_index(drop=True)


def _checkins_sql(conn: Connection, keys: list[str]) -> tuple[str, dict[str, pa.DataType]]:
    parsed = f"a.outcome = '{AnswerOutcome.PARSED.value}' AND a.answered_at <= c.window_closes_at"
    pivots = ", ".join(
        f"MAX(CASE WHEN {parsed} AND a.question_key = '{k}' THEN a.value END) AS ans{i}"
        for i, k in enumerate(keys)
    )
    bad = ", ".join(f"'{o}'" for o in ANSWER_OUTCOMES_COUNTED_INVALID)
    sub = (
        f"SELECT a.checkin_id, MIN(CASE WHEN {parsed} THEN a.answered_at END) AS first_at, "
        f"SUM(CASE WHEN a.outcome IN ({bad}) THEN 1 ELSE 0 END) AS n_invalid, {pivots} "
        "FROM answers a JOIN checkins c ON c.id = a.checkin_id GROUP BY a.checkin_id"
    )
    names = ["first_at", "n_invalid", *[f"ans{i}" for i in range(len(keys))]]
    sql = (
        f"SELECT c.id, c.episode_id, c.wave, c.state, {epoch_days(conn, 'c.target_date')}, "
        "CASE WHEN c.opened_at IS NULL THEN 0 ELSE 1 END, "
        f"{epoch_seconds(conn, 'x.first_at')}, x.n_invalid, "
        + ", ".join(f"x.{n}" for n in names[2:])
        + " FROM checkins c JOIN episodes e ON e.id = c.episode_id "
        "JOIN patients p ON p.id = e.patient_id "
        f"LEFT JOIN ({sub}) x ON x.checkin_id = c.id WHERE {_included(conn)}"
    )
    i64 = pa.int64()
    schema = {
        "checkin_id": i64,
        "episode_id": i64,
        "wave": i64,
        "state": pa.string(),
        "target_day": i64,
        "opened": i64,
        "first_at": i64,
        "n_invalid": i64,
        **{k: i64 for k in keys},
    }
    return sql, schema


def _messages_sql(conn: Connection, with_body: bool) -> tuple[str, dict[str, pa.DataType]]:
    at = epoch_seconds(conn, "COALESCE(m.sent_at, m.created_at)")
    late = "CASE WHEN m.late THEN 1 ELSE 0 END"
    sql = (
        "SELECT m.id, m.patient_id, m.checkin_id, c.wave, m.direction, m.purpose, "
        f"m.question_key, m.attempt, {at}, m.status, m.error_code, m.segments, {late}"
        + (", m.body" if with_body else "")
        + " FROM messages m JOIN patients p ON p.id = m.patient_id "
        f"LEFT JOIN checkins c ON c.id = m.checkin_id WHERE {_included(conn)}"
    )
    i64, s = pa.int64(), pa.string()
    schema = {
        "message_id": i64,
        "patient_id": i64,
        "checkin_id": i64,
        "wave": i64,
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
    checkins: pd.DataFrame,
    keys: list[str],
    tz: ZoneInfo,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Long table: row 3*i + k is patient i at WAVES[k]."""
    n = len(people)
    nw = len(WAVES)
    ref_year = (
        people["referral_day"]
        .to_numpy(dtype="int64")
        .astype("datetime64[D]")
        .astype("datetime64[Y]")
        .astype("int64")
        + 1970
    )
    birth = people["birth_year"].astype("Int64")
    age = pd.array(ref_year, dtype="Int64") - birth.array

    def per_patient(values: object) -> object:
        return (
            np.repeat(np.asarray(values, dtype=object), nw)
            if not isinstance(values, pd.api.extensions.ExtensionArray)
            else values.repeat(nw)
        )

    frame = pd.DataFrame(
        {
            "pid": np.repeat(pid, nw),
            "site": per_patient(people["site"].to_numpy(dtype=object)),
            "pattern": per_patient(people["pattern"].to_numpy(dtype=object)),
            "sessions": people["sessions"].astype("Int64").array.repeat(nw),
            "age": age.repeat(nw),
            "gender": per_patient(people["gender"].to_numpy(dtype=object)),
            "imd_quintile": people["imd_quintile"].astype("Int64").array.repeat(nw),
            "wave": np.tile(np.asarray(WAVES, dtype="int64"), n),
        }
    )
    answers = {k: pd.array(np.zeros(n * nw, dtype="int64"), dtype="Int64") for k in keys}
    for k in keys:
        answers[k][:] = pd.NA
    responded = np.zeros(n * nw, dtype="int64")
    days_from_due = pd.array(np.zeros(n * nw, dtype="int64"), dtype="Int64")
    days_from_due[:] = pd.NA
    state = np.full(n * nw, NOT_SCHEDULED_STATE, dtype=object)
    opened = np.zeros(n * nw, dtype=bool)

    # Wave 0: the baseline recorded at referral.
    base = np.arange(n) * nw
    any_baseline = np.zeros(n, dtype=bool)
    for k in OUTCOME_QUESTION_KEYS[:6]:
        col = people[f"baseline_{k}"].astype("Int64")
        answers[k][base] = col.array
        any_baseline |= col.notna().to_numpy()
    responded[base] = any_baseline.astype("int64")
    state[base] = BASELINE_STATE

    # Waves 6 and 12: check-ins, placed by (patient position, wave position).
    position = pd.Series(np.arange(n), index=people["episode_id"].to_numpy())
    ck = checkins[checkins["wave"].isin(FOLLOW_UP_WAVES)]
    rows = position.loc[ck["episode_id"].to_numpy(dtype="int64")].to_numpy() * nw + np.searchsorted(
        np.asarray(WAVES), ck["wave"].to_numpy(dtype="int64")
    )
    for k in keys:
        answers[k][rows] = ck[k].array
    has_answer = ck["first_at"].notna().to_numpy()
    responded[rows] = has_answer.astype("int64")
    first_day = _local_days(ck["first_at"], tz)
    days_from_due[rows] = (first_day - ck["target_day"].astype("Int64")).array
    state[rows] = ck["state"].to_numpy(dtype=object)
    opened[rows] = (ck["opened"].to_numpy(dtype="int64") == 1) | ck["state"].isin(
        [s.value for s in OPENED_STATES]
    ).to_numpy()

    frame["responded"] = responded
    frame["days_from_due"] = days_from_due
    for k in keys:
        frame[k] = answers[k]
    frame["checkin_state"] = state
    return frame, opened


def _contacts(
    messages: pd.DataFrame,
    people: pd.DataFrame,
    pid: np.ndarray,
    checkins: pd.DataFrame,
    tz: ZoneInfo,
    include_free_text: bool,
) -> pd.DataFrame:
    """One row per text of an exported patient (texts of non-exported episodes left out)."""
    position = pd.Series(np.arange(len(people)), index=people["patient_id"].to_numpy())
    messages = messages[messages["patient_id"].isin(position.index)]
    # Texts tied to a check-in of another (non-exported) episode of the patient are left out.
    in_index = messages["checkin_id"].isna() | messages["checkin_id"].isin(checkins["checkin_id"])
    messages = messages[in_index.to_numpy(dtype=bool)]
    messages = messages.sort_values(["patient_id", "at", "message_id"], kind="stable")
    messages = messages.reset_index(drop=True)
    where = position.loc[messages["patient_id"].to_numpy(dtype="int64")].to_numpy()

    inbound = (messages["direction"] == "inbound").to_numpy()
    at = messages["at"].to_numpy(dtype="float64", na_value=np.nan)
    inbound_at = pd.Series(np.where(inbound, at, np.nan))
    next_inbound = inbound_at.groupby(messages["patient_id"].to_numpy()).bfill().to_numpy()
    delay = np.where(inbound, np.nan, (next_inbound - at) / 3600.0)

    # Unreadable replies per check-in: clarification texts sent plus answers stored invalid.
    tied = messages["checkin_id"].notna().to_numpy()
    clarified = (
        messages.loc[tied & (messages["purpose"] == "clarification").to_numpy(), "checkin_id"]
        .astype("int64")
        .value_counts()
    )
    invalid = checkins.set_index("checkin_id")["n_invalid"].astype("float64").fillna(0.0)
    invalid = invalid.add(clarified.astype("float64"), fill_value=0.0)
    ids = messages["checkin_id"].to_numpy(dtype="float64", na_value=np.nan)
    per_checkin = pd.array(invalid.reindex(ids).fillna(0.0).to_numpy(), dtype="Int64")
    per_checkin[~tied] = pd.NA

    discharge = people["discharge_day"].to_numpy(dtype="int64")[where]
    frame = pd.DataFrame(
        {
            "pid": pid[where],
            "wave": messages["wave"].astype("Int64"),
            "direction": messages["direction"].to_numpy(dtype=object),
            "purpose": messages["purpose"].to_numpy(dtype=object),
            "question_key": messages["question_key"].to_numpy(dtype=object),
            "attempt": messages["attempt"].astype("Int64"),
            "sent_day": _local_days(messages["at"], tz) - discharge,
            "status": messages["status"].to_numpy(dtype=object),
            "error_code": messages["error_code"].to_numpy(dtype=object),
            "segments": messages["segments"].astype("Int64"),
            "reply_delay_hours": np.round(delay, 3),
            "invalid_replies": per_checkin,
            "late": messages["late"].astype("Int64"),
        }
    )
    if include_free_text:
        frame["body"] = redact_phone_numbers(messages["body"].astype("string")).to_numpy(
            dtype=object, na_value=None
        )
    return frame
