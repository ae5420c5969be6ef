"""The pure conversation engine, driven by a FrozenClock: no database, no gateway."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from surveys import build_survey, default_service_texts
from tracker.clock import FrozenClock
from tracker.conversation import (
    Conversation,
    Outcome,
    Purpose,
    Route,
    interpret,
)
from tracker.domain import AlertKind, AnswerOutcome, ContactState

SURVEY = build_survey()
TEXTS = default_service_texts()
OPENED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(OPENED)


def fresh() -> Conversation:
    return Conversation(
        question_index=0, clarifications=0, window_closes_at=OPENED + timedelta(days=28)
    )


def step(
    clock: FrozenClock,
    state: Conversation | None,
    body: str | None,
    *,
    media: int = 0,
    contact: ContactState | None = ContactState.ACTIVE,
) -> Outcome:
    return interpret(
        body=body,
        media_count=media,
        now=clock.now(),
        contact_state=contact,
        conversation=state,
        survey=SURVEY,
        texts=TEXTS,
    )


def advance(state: Conversation, outcome: Outcome) -> Conversation:
    return replace(
        state,
        question_index=outcome.question_index
        if outcome.question_index is not None
        else state.question_index,
        clarifications=outcome.clarifications
        if outcome.clarifications is not None
        else state.clarifications,
    )


def test_full_eight_question_walk(clock: FrozenClock) -> None:
    assert len(SURVEY) == 8
    state = fresh()
    values = []
    for i, body in enumerate(["8", " 7 ", "Seven!!", "2/10", "2", "none", "yep", "no thanks"]):
        clock.advance(hours=1)
        outcome = step(clock, state, body)
        assert outcome.route is Route.ANSWER
        (answer,) = outcome.answers
        assert answer.outcome is AnswerOutcome.PARSED
        assert answer.question_key == SURVEY.question(i).key
        values.append(answer.value)
        state = advance(state, outcome)
        (reply,) = outcome.replies
        if i < 7:
            assert reply.purpose is Purpose.QUESTION and reply.body.startswith(f"{i + 2}/8 ")
            assert not outcome.completed
        else:
            assert reply.purpose is Purpose.CLOSING and outcome.completed
    assert values == [8, 7, 7, 2, 2, 0, 1, 0]
    assert state.question_index == 8


def test_clarification_then_invalid_moves_on(clock: FrozenClock) -> None:
    first = step(clock, fresh(), "11")
    assert first.route is Route.CLARIFY and first.answers == []
    assert first.clarifications == 1 and first.question_index == 0
    (reply,) = first.replies
    assert reply.purpose is Purpose.CLARIFICATION and "outside the range" in reply.body
    second = step(clock, advance(fresh(), first), "12")
    assert [a.outcome for a in second.answers] == [AnswerOutcome.INVALID]
    assert second.answers[0].value is None
    assert second.question_index == 1 and second.clarifications == 0
    assert second.replies[0].body.startswith("2/8 ")


def test_decimal_gets_whole_number_clarification(clock: FrozenClock) -> None:
    outcome = step(clock, fresh(), "7.5")
    assert outcome.route is Route.CLARIFY and "whole number" in outcome.replies[0].body


def test_ambiguous_is_kept_and_asked_again(clock: FrozenClock) -> None:
    outcome = step(clock, fresh(), "7 8")
    assert [a.outcome for a in outcome.answers] == [AnswerOutcome.AMBIGUOUS]
    assert outcome.clarifications == 1 and "just one answer" in outcome.replies[0].body
    then = step(clock, advance(fresh(), outcome), "8")
    assert then.answers[0].outcome is AnswerOutcome.PARSED and then.answers[0].value == 8


def test_skip_moves_on_without_a_value(clock: FrozenClock) -> None:
    outcome = step(clock, fresh(), "SKIP")
    assert [(a.outcome, a.value) for a in outcome.answers] == [(AnswerOutcome.SKIPPED, None)]
    assert outcome.question_index == 1


def test_picture_only_asks_again_and_scores_nothing(clock: FrozenClock) -> None:
    state = replace(fresh(), question_index=3)
    outcome = step(clock, state, "", media=1)
    assert outcome.route is Route.PICTURE and outcome.answers == []
    assert outcome.question_index is None and outcome.clarifications is None
    assert outcome.replies[0].body.startswith("4/8 ")


def test_empty_text_without_picture_is_a_clarification(clock: FrozenClock) -> None:
    outcome = step(clock, fresh(), "   ")
    assert outcome.route is Route.CLARIFY and "only read text" in outcome.replies[0].body


def test_late_reply_is_stored_not_scored(clock: FrozenClock) -> None:
    state = replace(fresh(), question_index=2)
    clock.advance(days=28, seconds=1)
    outcome = step(clock, state, "9")
    assert outcome.route is Route.LATE and outcome.late
    assert [(a.question_key, a.outcome, a.value) for a in outcome.answers] == [
        ("happy", AnswerOutcome.LATE, None)
    ]
    assert outcome.question_index is None
    assert outcome.replies[0].purpose is Purpose.LATE


def test_reply_on_the_last_second_of_the_window_counts(clock: FrozenClock) -> None:
    clock.advance(days=28)
    assert step(clock, fresh(), "9").route is Route.ANSWER


def test_closed_conversation_is_late(clock: FrozenClock) -> None:
    outcome = step(clock, replace(fresh(), open=False), "9")
    assert outcome.route is Route.LATE


def test_completion_and_recontact_alert(clock: FrozenClock) -> None:
    last = replace(fresh(), question_index=7)
    outcome = step(clock, last, "yes please")
    assert outcome.completed and outcome.question_index == 8
    assert [a.kind for a in outcome.alerts] == [AlertKind.RECONTACT]
    assert step(clock, last, "no").alerts == []


def test_risk_comes_first_for_everyone(clock: FrozenClock) -> None:
    for contact in (ContactState.ACTIVE, ContactState.STOPPED, None):
        outcome = step(clock, fresh(), "honestly I want to die", contact=contact)
        assert outcome.route is Route.RISK
        assert [r.purpose for r in outcome.replies] == [Purpose.CRISIS]
        assert "116 123" in outcome.replies[0].body and "85258" in outcome.replies[0].body
        assert [a.kind for a in outcome.alerts] == [AlertKind.RISK]
        assert outcome.answers == [] and outcome.question_index is None


def test_risk_with_stop_sentence_stops_and_signposts(clock: FrozenClock) -> None:
    outcome = step(clock, fresh(), "stop texting me, I want to kill myself")
    assert outcome.route is Route.RISK and outcome.contact_change is ContactState.STOPPED
    assert {a.kind for a in outcome.alerts} == {AlertKind.RISK, AlertKind.OPT_OUT_REVIEW}


def test_harmless_figures_of_speech_are_answers(clock: FrozenClock) -> None:
    outcome = step(clock, fresh(), "7, just killing time today")
    assert outcome.route is Route.ANSWER and outcome.answers[0].value == 7


@pytest.mark.parametrize("word", ["STOP", "stop", "Unsubscribe", "QUIT", "cancel", "end", "optout"])
def test_stop_keywords_stop_without_a_reply(clock: FrozenClock, word: str) -> None:
    outcome = step(clock, fresh(), word)
    assert outcome.route is Route.STOP and outcome.replies == [] and outcome.alerts == []
    assert outcome.contact_change is ContactState.STOPPED


def test_stop_sentence_raises_review(clock: FrozenClock) -> None:
    outcome = step(clock, fresh(), "please stop texting me")
    assert outcome.route is Route.STOP_SENTENCE and outcome.replies == []
    assert outcome.contact_change is ContactState.STOPPED
    assert [a.kind for a in outcome.alerts] == [AlertKind.OPT_OUT_REVIEW]


def test_start_and_yes_from_stopped_resume(clock: FrozenClock) -> None:
    for word in ("START", "unstop", "YES"):
        outcome = step(clock, None, word, contact=ContactState.STOPPED)
        assert outcome.route is Route.START and outcome.contact_change is ContactState.ACTIVE
        assert outcome.replies == []


def test_yes_from_active_answers_the_question(clock: FrozenClock) -> None:
    outcome = step(clock, replace(fresh(), question_index=6), "YES")
    assert outcome.route is Route.ANSWER and outcome.answers[0].value == 1


def test_start_does_not_undo_a_withdrawal(clock: FrozenClock) -> None:
    outcome = step(clock, None, "START", contact=ContactState.WITHDRAWN)
    assert outcome.contact_change is None


def test_help_gives_contact_details(clock: FrozenClock) -> None:
    outcome = step(clock, fresh(), "HELP")
    assert outcome.route is Route.HELP and "GP practice" in outcome.replies[0].body
    assert outcome.question_index is None


def test_stopped_patients_get_no_texts_and_no_answers(clock: FrozenClock) -> None:
    outcome = step(clock, fresh(), "8", contact=ContactState.STOPPED)
    assert outcome.route is Route.NOT_ACTIVE and outcome.replies == [] and outcome.answers == []


def test_unknown_sender_neutral_reply_reveals_nothing(clock: FrozenClock) -> None:
    outcome = step(clock, None, "8", contact=None)
    assert outcome.route is Route.UNKNOWN_SENDER
    (reply,) = outcome.replies
    assert reply.purpose is Purpose.NEUTRAL
    assert "link worker" not in reply.body and TEXTS.service_name not in reply.body
    assert step(clock, None, "STOP", contact=None).replies == []
    # the same words whatever was sent
    assert step(clock, None, "HELP", contact=None).replies == outcome.replies


def test_engine_reads_no_clock(clock: FrozenClock) -> None:
    state = fresh()
    a = step(clock, state, "5")
    clock.advance(days=3)
    b = step(clock, state, "5")
    assert a == b
