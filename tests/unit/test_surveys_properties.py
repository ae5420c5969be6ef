"""Properties that must hold for any text a phone can send."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from surveys import (
    CORE_SURVEY,
    ParseKind,
    QuestionKind,
    asks_to_stop,
    build_survey,
    classify_keyword,
    parse_reply,
    scan_for_risk,
)

SURVEY = build_survey([*CORE_SURVEY, "ucla3"])
QUESTIONS = SURVEY.questions
NUMERIC = [q for q in QUESTIONS if q.kind is not QuestionKind.YESNO]
ANY_TEXT = st.text(max_size=1600)


@settings(max_examples=150, deadline=None)
@given(index=st.integers(0, len(QUESTIONS) - 1), text=ANY_TEXT)
def test_reading_any_text_never_fails_and_values_are_valid(index: int, text: str) -> None:
    question = QUESTIONS[index]
    result = parse_reply(question, text)
    if result.kind is ParseKind.VALUE:
        assert result.value is not None and question.is_valid_value(result.value)
    else:
        assert result.value is None
    scan_for_risk(text)
    classify_keyword(text)
    asks_to_stop(text)


@settings(max_examples=100, deadline=None)
@given(
    index=st.integers(0, len(NUMERIC) - 1),
    data=st.data(),
    before=st.sampled_from(["", " ", "  ", "\x00", "\U0001f642 ", "I'd say "]),
    after=st.sampled_from(["", " ", "!", "!!", ".", " thanks", " \U0001f44d", "\n"]),
)
def test_every_valid_number_is_read_back(
    index: int, data: st.DataObject, before: str, after: str
) -> None:
    question = NUMERIC[index]
    low, high = question.value_range()
    value = data.draw(st.integers(low, high).filter(question.is_valid_value))
    result = parse_reply(question, f"{before}{value}{after}")
    assert (result.kind, result.value) == (ParseKind.VALUE, value)


@settings(max_examples=100, deadline=None)
@given(
    index=st.integers(0, len(NUMERIC) - 1),
    first=st.integers(0, 99),
    second=st.integers(0, 99),
)
def test_two_different_numbers_are_never_taken_as_an_answer(
    index: int, first: int, second: int
) -> None:
    question = NUMERIC[index]
    result = parse_reply(question, f"{first} {second}")
    if first != second:
        assert result.kind is ParseKind.AMBIGUOUS
