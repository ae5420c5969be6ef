"""Database -> pseudonymised research tables (outcomes and contacts), set-based.

Four plain reads do the work, whatever the cohort size: the exported patients with their
episodes, the follow-up check-ins, every answer and every text tied to a patient (no joins or
aggregates, so the database only scans). Check-ins and answers are pivoted beside each episode
and texts ordered per patient in vectorised numpy/pandas; the only per-patient Python loop is
the HMAC of each patient reference (about a microsecond each with the pads hashed once)."""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
CONTACT_SLICE_ROWS = 1 << 20  # texts per contacts slice (about; slices end at a patient)


@dataclass
class StudyDataset:
    """The two export tables plus what the writers and the codebook need to describe them."""

    study: str
    survey: Survey
    outcomes: pd.DataFrame
    contacts: Contacts  # built slice by slice as the writers stream it
    outcome_columns: list[Column]
    contact_columns: list[Column]
    # Aligned with outcomes rows: True where a follow-up check-in's opening text went out.
    opened: np.ndarray

    @property
    def patients(self) -> int:
        return len(self.outcomes) // len(WAVES)


def pseudonyms(key: bytes, refs: pd.Series | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    """Crypto.pseudonym (HMAC-SHA256, first 16 hex digits) for many refs at once.

    The HMAC pads are hashed once and copied per id: three times faster than hmac.new per
    id, the same digests (a unit test checks them against Crypto.pseudonym).
    """
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner_copy = hashlib.sha256(bytes(b ^ 0x36 for b in key)).copy
    outer_copy = hashlib.sha256(bytes(b ^ 0x5C for b in key)).copy

    def one(ref: str) -> str:
        inner = inner_copy()
        inner.update(ref.encode("utf-8"))
        outer = outer_copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:PID_LENGTH]

    # A plain list of str: iterating a pyarrow-backed Series costs as much as the hashing.
    values = refs.to_pylist() if isinstance(refs, pa.ChunkedArray) else refs.tolist()
    return pd.array([one(ref) for ref in values], dtype="string[pyarrow]")


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
        people = _index_episodes(people_table)
        del people_table
        pid = pseudonyms(study_key, people["patient_ref"])
        lap("pseudonyms")
        waves = _follow_ups(people, checkins_future.result())
        lap("checkins")
        answers = answers_future.result()
        lap("query_answers")
        _add_answers(waves, answers, keys)
        del answers
        lap("pivot_answers")
        # The texts (the longest read) are still streaming in: build the outcomes meanwhile.
        o_cols = outcome_columns(survey)
        outcomes, opened = _outcomes(people, waves, pid, keys, tz)
        outcomes = outcomes[[c.name for c in o_cols]]
        lap("outcomes")
        messages_table = messages_future.result()
        del messages_future
        lap("query_messages")

    c_cols = contact_columns(include_free_text=include_free_text)
    contacts = Contacts(messages_table, people, waves, pid, tz, [c.name for c in c_cols])
    del messages_table  # Contacts keeps only what its slices need
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


# --- reshaping (numpy/Arrow; pandas only for the finished tables) ----------------------------

_NONE = np.iinfo(np.int64).min  # "no value" inside the int64 work arrays


def _nullable(values: np.ndarray, missing: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """An Int64 column from int64 values and a missing-mask, without copying."""
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype("int64", copy=False), missing)


def _text(values: pa.Array | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    return pd.arrays.ArrowStringArray(values.cast(pa.large_string()))


def _ints(table: pa.Table, name: str, missing: int = _NONE) -> np.ndarray:
    return table[name].fill_null(missing).to_numpy()


def _index_episodes(people: pa.Table) -> pa.Table:
    """One episode per patient: the earliest discharged (then the first enrolled), sorted by
    patient id."""
    patient = _ints(people, "patient_id")
    if len(patient) and np.all(patient[1:] > patient[:-1]):
        return people  # the usual case: one episode each, already in id order
    order = np.lexsort((_ints(people, "episode_id"), _ints(people, "discharge_day"), patient))
    first = np.ones(len(order), dtype=bool)
    first[1:] = patient[order][1:] != patient[order][:-1]
    return people.take(pa.array(order[first]))


@dataclass
class _FollowUp:
    """One follow-up wave's check-in beside each exported episode (arrays aligned with the
    people rows; `_NONE` or -1 where there is no check-in or no value)."""

    wave: int
    checkin_id: np.ndarray  # -1: no check-in at this wave
    state: np.ndarray  # index into states (-1: none)
    states: list[str]
    target_day: np.ndarray
    opened: np.ndarray  # bool: the opening text went out
    closes_us: np.ndarray
    first_at: np.ndarray | None = None  # first answer parsed in the window (seconds)
    invalid: np.ndarray | None = None  # answers counted invalid
    answers: dict[str, np.ndarray] | None = None  # largest value parsed in the window


def _follow_ups(people: pa.Table, checkins: pa.Table) -> list[_FollowUp]:
    n = people.num_rows
    episodes = _ints(people, "episode_id")
    by_episode = np.argsort(episodes, kind="stable")
    row, found = _locate(episodes[by_episode], _ints(checkins, "episode_id"))
    row = by_episode[row] if n else row
    wave = _ints(checkins, "wave")
    coded = pc.dictionary_encode(checkins["state"]).combine_chunks()
    states = coded.dictionary.to_pylist()
    state_code = coded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64")
    opened_codes = np.array([s in OPENED_STATES for s in states] + [False], dtype=bool)
    columns = {name: _ints(checkins, name) for name in ("id", "target_day", "opened", "closes_us")}
    out = []
    for w in FOLLOW_UP_WAVES:
        pick = np.flatnonzero(found & (wave == w))  # at most one per episode and wave
        at = row[pick]

        def spread(values: np.ndarray, empty: int = _NONE) -> np.ndarray:
            full = np.full(n, empty, dtype="int64")
            full[at] = values[pick]  # noqa: B023 - used at once, inside this iteration
            return full

        state = spread(state_code, -1)
        opened = (spread(columns["opened"], 0) == 1) | opened_codes[state]
        out.append(
            _FollowUp(
                wave=w,
                checkin_id=spread(columns["id"], -1),
                state=state,
                states=states,
                target_day=spread(columns["target_day"]),
                opened=opened,
                closes_us=spread(columns["closes_us"]),
            )
        )
    return out


def _add_answers(waves: list[_FollowUp], answers: pa.Table, keys: list[str]) -> None:
    """Per follow-up wave: each question's answer (the largest value parsed inside the
    response window), the first such answer's instant and the count of invalid answers."""
    n = len(waves[0].checkin_id) if waves else 0
    ck_ids = np.concatenate([f.checkin_id for f in waves])
    closes = np.concatenate([f.closes_us for f in waves])
    exists = np.flatnonzero(ck_ids >= 0)
    sort = exists[np.argsort(ck_ids[exists], kind="stable")]
    pos, found = _locate(ck_ids[sort], _ints(answers, "checkin_id"))
    slot = sort[pos] if len(sort) else pos  # wave_index * n + row
    at = _ints(answers, "at_us")

    outcome = answers["outcome"]
    parsed = pc.equal(outcome, AnswerOutcome.PARSED.value).to_numpy(zero_copy_only=False)
    invalid = pc.is_in(outcome, value_set=pa.array(ANSWER_OUTCOMES_COUNTED_INVALID))
    invalid = found & invalid.to_numpy(zero_copy_only=False)
    # Parsed after the window closed (late, not scored) counts as neither.
    parsed &= found & (at <= (closes[slot] if len(closes) else at))

    key = pc.index_in(answers["key"], value_set=pa.array(keys, pa.string()))
    key = key.fill_null(-1).to_numpy(zero_copy_only=False)
    value = _ints(answers, "value")
    scored = parsed & (value != _NONE)

    invalid_count = np.bincount(slot[invalid], minlength=2 * n)
    first = np.full(2 * n, np.iinfo(np.int64).max, dtype="int64")
    np.minimum.at(first, slot[parsed], at[parsed])
    first = np.where(first == np.iinfo(np.int64).max, _NONE, first // 1_000_000)
    best = {}
    for i, k in enumerate(keys):
        pick = scored & (key == i)
        top = np.full(2 * n, _NONE, dtype="int64")
        np.maximum.at(top, slot[pick], value[pick])
        best[k] = top
    for j, follow_up in enumerate(waves):
        part = slice(j * n, (j + 1) * n)
        follow_up.first_at = first[part]
        follow_up.invalid = invalid_count[part]
        follow_up.answers = {k: best[k][part] for k in keys}


def _local_days(epoch_s: np.ndarray, tz: ZoneInfo) -> np.ndarray:
    """Seconds since the epoch -> days since 1970-01-01 of the local calendar date
    (`_NONE` stays `_NONE`)."""
    missing = epoch_s == _NONE
    stamps = pd.DatetimeIndex(np.where(missing, 0, epoch_s).astype("datetime64[s]"), tz="UTC")
    local = stamps.tz_convert(tz).tz_localize(None)
    days = local.to_numpy().astype("datetime64[D]").astype("int64")
    return np.where(missing, _NONE, days)


def _outcomes(
    people: pa.Table,
    waves: list[_FollowUp],
    pid: pd.api.extensions.ExtensionArray,
    keys: list[str],
    tz: ZoneInfo,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Long table: row 3*i + k is patient i at WAVES[k]."""
    n = people.num_rows
    nw = len(WAVES)
    take = np.repeat(np.arange(n), nw)
    take_arrow = pa.array(take)
    days = _ints(people, "referral_day", 0)
    ref_year = days.astype("datetime64[D]").astype("datetime64[Y]").astype("int64") + 1970
    birth_year = _ints(people, "birth_year")
    age = np.where(birth_year == _NONE, _NONE, ref_year - birth_year)

    def repeated(name: str) -> pd.api.extensions.ExtensionArray:
        return _text(people[name].take(take_arrow))

    def per_row(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
        values = values[take]
        return _nullable(values, values == _NONE)

    # Work arrays, one slot per outcome row; wave 0 (baseline) first.
    answers = {k: np.full(n * nw, _NONE, dtype="int64") for k in keys}
    responded = np.zeros(n * nw, dtype="int64")
    days_from_due = np.full(n * nw, _NONE, dtype="int64")
    opened = np.zeros(n * nw, dtype=bool)
    rows = np.arange(n) * nw
    any_baseline = np.zeros(n, dtype=bool)
    for k in OUTCOME_QUESTION_KEYS[:6]:
        values = _ints(people, f"baseline_{k}")
        answers[k][rows] = values
        any_baseline |= values != _NONE
    responded[rows] = any_baseline

    # States as codes into one small vocabulary, decoded by Arrow at the end.
    vocabulary = [BASELINE_STATE, NOT_SCHEDULED_STATE]
    state = np.full(n * nw, 1, dtype="int32")
    state[rows] = 0
    for follow_up in waves:
        rows = np.arange(n) * nw + WAVES.index(follow_up.wave)
        assert follow_up.answers is not None and follow_up.first_at is not None
        for k in keys:
            answers[k][rows] = follow_up.answers[k]
        first_at = follow_up.first_at
        answered = first_at != _NONE
        responded[rows] = answered
        local = _local_days(first_at, tz)
        days_from_due[rows] = np.where(
            answered & (follow_up.target_day != _NONE), local - follow_up.target_day, _NONE
        )
        offset = len(vocabulary)
        vocabulary += follow_up.states
        state[rows] = np.where(follow_up.state >= 0, follow_up.state + offset, 1)
        opened[rows] = follow_up.opened

    checkin_state = pa.DictionaryArray.from_arrays(
        pa.array(state), pa.array(vocabulary, pa.string())
    ).dictionary_decode()
    frame = pd.DataFrame(
        {
            "pid": pid.take(take),
            "site": repeated("site"),
            "pattern": repeated("pattern"),
            "sessions": per_row(_ints(people, "sessions")),
            "age": per_row(age),
            "gender": repeated("gender"),
            "imd_quintile": per_row(_ints(people, "imd_quintile")),
            "wave": np.tile(np.asarray(WAVES, dtype="int64"), n),
            "responded": responded,
            "days_from_due": _nullable(days_from_due, days_from_due == _NONE),
            **{k: _nullable(v, v == _NONE) for k, v in answers.items()},
            "checkin_state": _text(checkin_state),
        }
    )
    return frame, opened


class Contacts:
    """The contacts table (one row per text, patient then time order), built slice by slice.

    A national export holds tens of millions of texts; built whole, the table and its
    conversions took three times the memory of the texts themselves. Here only the texts as
    read and a few int64 arrays stay in memory; `slices()` builds the rows a slice at a time
    (each slice ends at a patient boundary, so reply delays never need the next slice) and
    the writers stream them. `frame()` gives the whole table for writers that need it.
    """

    def __init__(
        self,
        messages: pa.Table,
        people: pa.Table,
        waves: list[_FollowUp],
        pid: pd.api.extensions.ExtensionArray,
        tz: ZoneInfo,
        columns: list[str],
        slice_rows: int | None = None,
    ) -> None:
        self.columns = columns
        self.tz = tz
        self.pid = pid
        # Lookups on sorted int64 ids (people are sorted by patient_id): far cheaper than
        # hashing millions of nullable values.
        ck_ids = np.concatenate([f.checkin_id for f in waves])
        ck_wave = np.concatenate([np.full(len(f.checkin_id), f.wave) for f in waves])
        ck_invalid = np.concatenate([f.invalid for f in waves if f.invalid is not None])
        exists = ck_ids >= 0
        sort = np.argsort(ck_ids[exists], kind="stable")
        ck_ids, self.ck_wave, ck_invalid = (a[exists][sort] for a in (ck_ids, ck_wave, ck_invalid))
        patient_row, known = _locate(_ints(people, "patient_id"), _ints(messages, "patient_id"))
        checkin = _ints(messages, "checkin_id", -1)
        slot, in_export = _locate(ck_ids, checkin)
        # Texts of other check-ins (another episode of the patient) are left out, like that
        # episode's outcomes.
        keep = known & ((checkin < 0) | in_export)
        self.slot = np.where(checkin >= 0, slot, -1)
        self.at_s = _ints(messages, "at_us", 0) // 1_000_000
        self.patient_row = patient_row
        self.order = _patient_time_order(
            patient_row, self.at_s, _ints(messages, "message_id"), keep
        )
        # Unreadable replies per check-in: clarification texts sent plus answers stored
        # invalid (counted over every kept text, whatever slice it falls in).
        clarification = pc.equal(messages["purpose"], "clarification").fill_null(False)
        counted = keep & (self.slot >= 0) & clarification.to_numpy(zero_copy_only=False)
        self.unreadable = ck_invalid + np.bincount(self.slot[counted], minlength=len(ck_ids))
        self.discharge = _ints(people, "discharge_day")
        # Per slice, rows are gathered from all over the texts: plain arrays for the numbers
        # and dictionary codes for the few-valued text columns gather several times faster
        # than the strings (and take less memory than the table as read).
        self.numbers = {name: _ints(messages, name) for name in ("attempt", "segments", "late")}
        self.codes = {
            name: pc.dictionary_encode(messages[name]).combine_chunks()
            for name in ("direction", "purpose", "question_key", "status", "error_code")
        }
        self.body = messages["body"] if "body" in columns else None
        self.bounds = _patient_bounds(patient_row[self.order], slice_rows or CONTACT_SLICE_ROWS)

    def __len__(self) -> int:
        return len(self.order)

    def slices(self) -> Iterator[pd.DataFrame]:
        """The rows in order, a slice at a time (at least one slice, maybe empty)."""
        for start, stop in itertools.pairwise(self.bounds):
            yield self._rows(self.order[start:stop])

    def frame(self) -> pd.DataFrame:
        return pd.concat(list(self.slices()), ignore_index=True)

    def _rows(self, rows: np.ndarray) -> pd.DataFrame:
        positions = pa.array(rows)
        texts = {
            name: codes.take(positions).dictionary_decode() for name, codes in self.codes.items()
        }
        patient = self.patient_row[rows]
        at_s = self.at_s[rows]
        slot = self.slot[rows]
        tied = slot >= 0
        # Reply delay: from each outbound text to the same patient's next inbound text.
        inbound = pc.equal(texts["direction"], "inbound").fill_null(False)
        inbound = inbound.to_numpy(zero_copy_only=False)
        delay = np.full(len(rows), np.nan)
        inbound_rows = np.flatnonzero(inbound)
        if len(inbound_rows):
            k = np.searchsorted(inbound_rows, np.arange(len(rows)), side="right")
            following = inbound_rows[np.minimum(k, len(inbound_rows) - 1)]
            ok = (k < len(inbound_rows)) & (patient[following] == patient) & ~inbound
            delay[ok] = (at_s[following[ok]] - at_s[ok]) / 3600.0
        slot = np.where(tied, slot, 0)
        per_checkin = self.unreadable[slot] if len(self.unreadable) else np.zeros(len(rows), int)
        wave = self.ck_wave[slot] if len(self.ck_wave) else np.zeros(len(rows), dtype=int)
        discharge = self.discharge[patient]

        def ints(name: str) -> pd.api.extensions.ExtensionArray:
            values = self.numbers[name][rows]
            return _nullable(values, values == _NONE)

        frame = pd.DataFrame(
            {
                "pid": self.pid.take(patient),
                "wave": _nullable(wave, ~tied),
                "direction": _text(texts["direction"]),
                "purpose": _text(texts["purpose"]),
                "question_key": _text(texts["question_key"]),
                "attempt": ints("attempt"),
                "sent_day": _nullable(_local_days(at_s, self.tz) - discharge, discharge == _NONE),
                "status": _text(texts["status"]),
                "error_code": _text(texts["error_code"]),
                "segments": ints("segments"),
                "reply_delay_hours": np.round(delay, 3),
                "invalid_replies": _nullable(per_checkin, ~tied),
                "late": ints("late"),
            }
        )
        if self.body is not None:
            body = _text(self.body.take(positions))
            frame["body"] = redact_phone_numbers(pd.Series(body)).array
        return frame[self.columns]


def _patient_bounds(patient_in_order: np.ndarray, slice_rows: int) -> np.ndarray:
    """Slice boundaries (start positions plus the end) about `slice_rows` apart, each at the
    first text of a patient, so no patient's texts are split between slices."""
    n = len(patient_in_order)
    starts = np.flatnonzero(patient_in_order[1:] != patient_in_order[:-1]) + 1
    wanted = np.arange(slice_rows, n, slice_rows)
    at = np.searchsorted(starts, wanted)
    cuts = np.unique(starts[at[at < len(starts)]])
    return np.concatenate([[0], cuts, [n]]).astype("int64")


def _patient_time_order(
    patient_row: np.ndarray, at_s: np.ndarray, ids: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    """Positions of the kept texts ordered by patient, then time, then id."""
    kept = np.flatnonzero(keep)
    if not len(kept):
        return kept
    if not np.all(ids[kept][1:] > ids[kept][:-1]):
        kept = kept[np.argsort(ids[kept], kind="stable")]
    span = int(at_s[kept].max() - at_s[kept].min())
    if span < 2**33 and int(patient_row[kept].max()) < 2**29:
        # Patient and second packed into one int64, ties left in id order by a stable sort:
        # eight times faster than a three-key lexsort over millions of texts.
        key = (patient_row[kept] << 33) + (at_s[kept] - at_s[kept].min())
        return kept[np.argsort(key, kind="stable")]
    return kept[np.lexsort((at_s[kept], patient_row[kept]))]
