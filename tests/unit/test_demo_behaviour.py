"""The demo's simulated patients say what they mean: every way they write an answer is read
back as that answer by the real parser, and unclear replies are not."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from surveys import CORE_SURVEY, ParseKind, build_survey, parse_reply
from tracker.demo_behaviour import (
    ANSWER_KEYS,
    SCALE_KEYS,
    Conversation,
    Plan,
    draw_cohort,
    messy_reply,
    tidy_reply,
    unclear_reply,
)

SURVEY = build_survey(CORE_SURVEY)
QUESTIONS = {q.key: q for q in SURVEY.questions}


def values_for(key: str) -> range:
    if key in SCALE_KEYS:
        return range(0, 11)
    if key == "lonely":
        return range(1, 6)
    if key == "gp_visits":
        return range(0, 16)
    return range(0, 2)


def test_the_demo_asks_the_core_survey() -> None:
    assert tuple(QUESTIONS) == ANSWER_KEYS


@pytest.mark.parametrize("key", ANSWER_KEYS)
def test_every_way_a_patient_writes_an_answer_parses_to_it(key: str) -> None:
    rng = random.Random(key)
    for value in values_for(key):
        assert parse_reply(QUESTIONS[key], tidy_reply(key, value)).value == value
        written = {messy_reply(rng, key, value) for _ in range(60)}
        for text in written:
            assert parse_reply(QUESTIONS[key], text).value == value, (key, text)
    assert parse_reply(QUESTIONS[key], tidy_reply(key, None)).kind is ParseKind.SKIP


@pytest.mark.parametrize("key", SCALE_KEYS)
def test_unclear_replies_are_not_read_as_a_value(key: str) -> None:
    rng = random.Random(key)
    for value in range(0, 11):
        for _ in range(10):
            text = unclear_reply(rng, key, value)
            assert text is not None
            assert parse_reply(QUESTIONS[key], text).value is None, text


def test_cohort_is_reproducible_and_scripts_the_one_offs() -> None:
    first, second = draw_cohort(200, seed=5), draw_cohort(200, seed=5)
    assert [p.waves[6].plan for p in first.patients] == [p.waves[6].plan for p in second.patients]
    waves = [w for p in first.patients for w in p.waves.values()]
    assert sum(w.discloses_risk_at is not None for w in waves) == 1
    assert sum(w.asks_for_help for w in waves) == 1
    assert sum(w.stop_sentence for w in waves) == 1
    assert any(w.plan is Plan.STOP for w in waves)
    plans = Counter(w.plan for w in waves)
    assert plans[Plan.ANSWER] > plans[Plan.SILENT] > plans[Plan.LATE] > 0
    assert set(first.counts_by_pattern()) == {"rapid", "anchored", "with_only"}
    assert len({p.site for p in first.patients}) == 7


def test_a_conversation_answers_then_gives_up_where_planned() -> None:
    cohort = draw_cohort(300, seed=11)
    quitter = next(
        (p, w)
        for p in cohort.patients
        for w in p.waves.values()
        if w.plan is Plan.ANSWER
        and w.give_up_after
        and not w.asks_for_help
        and w.discloses_risk_at is None
    )
    patient, behaviour = quitter
    conversation = Conversation(patient, 6, behaviour)
    rng = random.Random(0)
    replies = []
    for key in ANSWER_KEYS:
        text = conversation.reply_to(rng, key, clarifying=True)
        if text is None:
            break
        replies.append(text)
    assert len(replies) == behaviour.give_up_after
    assert conversation.finished
