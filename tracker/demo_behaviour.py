"""How the demo's simulated patients behave: who answers, when, and in what words.

Pure (no database, no clock): a `Cohort` is drawn once from `analysis.simulate` (so the
answers carry known differences between engagement patterns that the analysis should find),
and each patient's phone "sees" the texts the tracker sends and decides what to text back.

Behaviour, per patient and wave (6 or 12 months):
- `answer`: replies, first after a delay (hours to weeks; some only after a reminder), then
  question by question a few minutes apart. Most replies are tidy ("7"); some are what people
  really type ("7/10", "seven", "Seven!!", "about 3", "hardly ever", "yes please"); a few are
  ambiguous or out of range ("7 8", "11") and get a clarification first. Items the cohort has
  missing are answered "SKIP"; about one responder in ten gives up part-way (a partial check-in).
- `silent`: never answers (the follow-up missingness of `analysis.simulate`).
- `late`: answers only after the response window has closed (stored, not scored).
- `stop`: texts STOP (one writes "please stop texting me" instead): no more texts, wave 12
  cancelled.
Scripted once per cohort: one patient discloses risk mid-conversation (then carries on), one
texts HELP first.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

import numpy as np

from analysis.simulate import simulate_cohort

SITES = ("Northgate", "Riverside", "Hillfield", "Marketon", "Westbrook", "Eastmoor", "Southdale")
FOLLOW_UP_WAVES = (6, 12)
ANSWER_KEYS = (
    "life_satisfaction",
    "worthwhile",
    "happy",
    "anxious",
    "lonely",
    "gp_visits",
    "community_activity",
    "recontact_requested",
)
SCALE_KEYS = ("life_satisfaction", "worthwhile", "happy", "anxious")
YESNO_KEYS = ("community_activity", "recontact_requested")

RISK_TEXT = "Honestly some days I just want to end it all"
HELP_TEXT = "HELP"
STOP_TEXT = "STOP"
STOP_SENTENCE = "Please stop texting me"
LATE_PREFIX = "Sorry only just seen this. "

# Shares of patient-waves (of those who would otherwise answer) that behave differently.
NO_CONSENT_SHARE = 0.03  # enrolled without consent to texts: both waves recorded `missed`
STOP_SHARE = 0.015
LATE_SHARE_OF_SILENT = 0.08
ABANDON_SHARE = 0.10
MESSY_SHARE = 0.30
NEEDS_CLARIFYING_SHARE = 0.04


class Plan(StrEnum):
    ANSWER = "answer"
    SILENT = "silent"
    LATE = "late"
    STOP = "stop"


@dataclass
class WaveBehaviour:
    plan: Plan
    first_reply_after: timedelta  # from the first text of the check-in
    answers: dict[str, int | None]  # None = skip this question
    give_up_after: int | None = None  # answers given before giving up (partial check-in)
    stop_sentence: bool = False
    discloses_risk_at: str | None = None  # question key at which the risk text is sent
    asks_for_help: bool = False


@dataclass
class DemoPatient:
    number: int  # 0-based position in the cohort
    pattern: str
    site: str
    sessions: int
    age: int
    gender: str
    imd_quintile: int
    baseline: dict[str, int]
    consent_sms: bool = True
    waves: dict[int, WaveBehaviour] = field(default_factory=dict)


@dataclass
class Cohort:
    patients: list[DemoPatient]
    seed: int

    def counts_by_pattern(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.patients:
            out[p.pattern] = out.get(p.pattern, 0) + 1
        return out


def _int_or_none(value: float) -> int | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def draw_cohort(n_patients: int, *, seed: int) -> Cohort:
    """Patients with baseline values and per-wave behaviour, reproducible from `seed`."""
    frame = simulate_cohort(n_patients, seed=seed, n_sites=len(SITES))
    rng = random.Random(seed)
    site_names = dict(zip(sorted(frame["site"].cat.categories), SITES, strict=True))
    patients: list[DemoPatient] = []
    rows = frame.to_dict("records")
    for i in range(n_patients):
        base, six, twelve = rows[3 * i], rows[3 * i + 1], rows[3 * i + 2]
        patient = DemoPatient(
            number=i,
            pattern=str(base["pattern"]),
            site=site_names[str(base["site"])],
            sessions=int(base["sessions"]),
            age=int(base["age"]),
            gender=str(base["gender"]),
            imd_quintile=int(base["imd_quintile"]),
            baseline={k: int(base[k]) for k in ANSWER_KEYS[:6]},
            consent_sms=rng.random() >= NO_CONSENT_SHARE,
        )
        for wave, row in ((6, six), (12, twelve)):
            patient.waves[wave] = _wave_behaviour(rng, row)
        patients.append(patient)
    _script_one_offs(rng, patients)
    return Cohort(patients=patients, seed=seed)


def _wave_behaviour(rng: random.Random, row: dict) -> WaveBehaviour:
    answers = {k: _int_or_none(row[k]) for k in ANSWER_KEYS}
    if not row["responded"]:
        plan = Plan.LATE if rng.random() < LATE_SHARE_OF_SILENT else Plan.SILENT
        return WaveBehaviour(plan=plan, first_reply_after=timedelta(0), answers=answers)
    if rng.random() < STOP_SHARE:
        return WaveBehaviour(
            plan=Plan.STOP,
            first_reply_after=timedelta(minutes=rng.uniform(2, 240)),
            answers=answers,
        )
    # The simulated day of the first reply (0-27, mostly the first few days) plus some hours.
    days = row["days_from_due"]
    days = 0.0 if days is None or np.isnan(days) else float(days)
    delay = timedelta(days=days, hours=rng.uniform(0.1, 9))
    give_up = rng.randint(1, len(ANSWER_KEYS) - 2) if rng.random() < ABANDON_SHARE else None
    return WaveBehaviour(
        plan=Plan.ANSWER, first_reply_after=delay, answers=answers, give_up_after=give_up
    )


def _script_one_offs(rng: random.Random, patients: list[DemoPatient]) -> None:
    """One risk disclosure, one HELP, at least one STOP, one "please stop texting me"."""
    answering = [
        p.waves[6]
        for p in patients
        if p.consent_sms and p.waves[6].plan is Plan.ANSWER and p.waves[6].give_up_after is None
    ]
    if len(answering) >= 3:
        risk, helper, stopper = rng.sample(answering, 3)
        risk.discloses_risk_at = "anxious"
        helper.asks_for_help = True
        stoppers = [
            w for p in patients if p.consent_sms for w in p.waves.values() if w.plan is Plan.STOP
        ]
        if not stoppers:  # small cohorts: make sure the demo shows a STOP
            stopper.plan = Plan.STOP
            stopper.first_reply_after = timedelta(minutes=rng.uniform(2, 240))
            stoppers = [stopper]
        stoppers[0].stop_sentence = True


# --- what people type --------------------------------------------------------------------

NUMBER_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
)
LONELY_WORDS = {
    1: ("never", "Never", "not at all"),
    2: ("hardly ever", "rarely", "Hardly ever"),
    3: ("occasionally", "now and then", "Occasionally"),
    4: ("some of the time", "sometimes", "Sometimes"),
    5: ("often", "always", "most of the time"),
}
YES_WORDS = ("yes", "Yes", "y", "yes please", "Yeah", "YES")
NO_WORDS = ("no", "No", "n", "no thanks", "Nope", "NO")


def tidy_reply(key: str, value: int | None) -> str:
    """The plain answer: a number, or yes/no."""
    if value is None:
        return "SKIP"
    if key in YESNO_KEYS:
        return "yes" if value == 1 else "no"
    return str(value)


def messy_reply(rng: random.Random, key: str, value: int | None) -> str:
    """An answer as people really write it, which the parser must still read."""
    if value is None:
        return rng.choice(("SKIP", "skip", "Skip"))
    if key in YESNO_KEYS:
        return rng.choice(YES_WORDS if value == 1 else NO_WORDS)
    if key == "lonely":
        return rng.choice(LONELY_WORDS[value] + (str(value),))
    if key == "gp_visits":
        if value == 0:
            return rng.choice(("none", "0", "zero", "None!"))
        options = [f"{value} times", f"about {value}", f" {value} "]
        if value <= 10:
            options.append(NUMBER_WORDS[value])
        return rng.choice(options)
    options = [f"{value}/10", f"{value} out of 10", f" {value} ", f"{value}."]
    options += [NUMBER_WORDS[value], NUMBER_WORDS[value].capitalize() + "!!"]
    return rng.choice(options)


def unclear_reply(rng: random.Random, key: str, value: int | None) -> str | None:
    """A reply that needs a clarification first (two numbers, out of range), or None."""
    if value is None or key not in SCALE_KEYS:
        return None
    other = value + 1 if value < 10 else value - 1
    return rng.choice((f"{value} {other}", f"{value} or {other}", "11", "12/10"))


@dataclass
class Conversation:
    """One patient's side of one check-in, as the demo plays it."""

    patient: DemoPatient
    wave: int
    behaviour: WaveBehaviour
    answered: int = 0
    replies: int = 0  # texts sent by the patient in this check-in (answers or not)
    finished: bool = False
    risk_sent: bool = False
    help_sent: bool = False
    unclear_sent: set[str] = field(default_factory=set)

    def reply_to(self, rng: random.Random, key: str | None, *, clarifying: bool) -> str | None:
        """What this patient texts when the latest question is `key` (None: nothing)."""
        text = self._choose(rng, key, clarifying=clarifying)
        if text is not None:
            self.replies += 1
        return text

    def _choose(self, rng: random.Random, key: str | None, *, clarifying: bool) -> str | None:
        b = self.behaviour
        if self.finished or key is None:
            return None
        if b.plan is Plan.STOP:
            self.finished = True
            return STOP_SENTENCE if b.stop_sentence else STOP_TEXT
        if b.plan is Plan.LATE:
            self.finished = True
            return LATE_PREFIX + tidy_reply(key, b.answers.get(key))
        if b.plan is not Plan.ANSWER:
            return None
        if b.asks_for_help and not self.help_sent:
            self.help_sent = True
            return HELP_TEXT
        if b.discloses_risk_at == key and not self.risk_sent:
            self.risk_sent = True
            return RISK_TEXT
        if b.give_up_after is not None and self.answered >= b.give_up_after:
            self.finished = True
            return None
        value = b.answers.get(key)
        if (
            not clarifying
            and key not in self.unclear_sent
            and rng.random() < NEEDS_CLARIFYING_SHARE
        ):
            unclear = unclear_reply(rng, key, value)
            if unclear is not None:
                self.unclear_sent.add(key)
                return unclear
        self.answered += 1
        if clarifying or rng.random() >= MESSY_SHARE:
            return tidy_reply(key, value)
        return messy_reply(rng, key, value)


def gap_between_answers(rng: random.Random) -> timedelta:
    """Time to answer the next question: usually a minute or two, now and then hours."""
    if rng.random() < 0.05:
        return timedelta(hours=rng.uniform(1, 20))
    return timedelta(seconds=rng.lognormvariate(math.log(90), 0.8))


def discharge_dates(rng: random.Random, n: int, *, before: date, spread_days: int) -> list[date]:
    """Discharges spread over the weeks before the demo starts."""
    return [before - timedelta(days=rng.randint(1, spread_days)) for _ in range(n)]
