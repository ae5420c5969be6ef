"""Every question of every instrument, and every default text, fits the SMS rules."""

from __future__ import annotations

import re

import pytest

from surveys import (
    CORE_SURVEY,
    ClarifyReason,
    QuestionKind,
    RenderError,
    Survey,
    available_instruments,
    build_survey,
    default_service_texts,
    is_gsm7,
    load_instrument,
    render_clarification,
    render_closing,
    render_crisis,
    render_help,
    render_late_reply,
    render_opening,
    render_question,
    render_reminder,
    render_unknown_sender,
    sms_segments,
)
from surveys.gsm import gsm7_length

ALL_IDS = available_instruments()


def _every_survey() -> list[Survey]:
    # Each instrument on its own, the core survey, and everything at once (longest progress hint).
    core_first = [*CORE_SURVEY, *[i for i in ALL_IDS if i not in CORE_SURVEY]]
    return [build_survey([i]) for i in ALL_IDS] + [
        build_survey(CORE_SURVEY),
        build_survey(core_first),
    ]


SURVEYS = _every_survey()
RENDERED = [(s, i, render_question(s, i)) for s in SURVEYS for i in range(len(s))]


def test_every_instrument_is_rendered() -> None:
    rendered_instruments = {s.question(i).instrument for s, i, _ in RENDERED}
    assert rendered_instruments == set(ALL_IDS)
    assert {"ons4", "loneliness_direct", "gp_visits", "community", "recontact", "ucla3"} <= set(
        ALL_IDS
    )


@pytest.mark.parametrize(
    ("survey", "index", "text"), RENDERED, ids=[f"{s.version_tag}:{i}" for s, i, _ in RENDERED]
)
def test_question_is_one_gsm7_text_with_progress_and_anchors(
    survey: Survey, index: int, text: str
) -> None:
    question = survey.question(index)
    assert is_gsm7(text), text
    assert gsm7_length(text) <= 160, (len(text), text)
    assert sms_segments(text) == 1
    assert text.startswith(f"{index + 1}/{len(survey)} ")
    assert question.sms_text in text
    if question.kind is QuestionKind.SCALE:
        assert f"{question.min} ({question.anchor_low})" in text
        assert f"{question.max} ({question.anchor_high})" in text
    elif question.kind is QuestionKind.CHOICE:
        for choice in question.choices:
            assert f"{choice.value} {choice.label}" in text
    elif question.kind is QuestionKind.YESNO:
        assert "YES" in text and "NO" in text
    else:
        assert "number" in text


def test_example_from_the_brief() -> None:
    survey = build_survey(CORE_SURVEY)
    assert render_question(survey, 2) == (
        "3/8 Overall, how happy did you feel yesterday? Reply 0 (not at all) to 10 (completely)"
    )


@pytest.mark.parametrize("reason", list(ClarifyReason))
def test_every_clarification_is_one_gsm7_text(reason: ClarifyReason) -> None:
    for survey in SURVEYS:
        for question in survey.questions:
            text = render_clarification(question, reason)
            assert is_gsm7(text) and gsm7_length(text) <= 160, text
            assert "SKIP" in text


def test_default_texts_are_gsm7_and_say_what_they_must() -> None:
    survey = build_survey(CORE_SURVEY)
    opening = render_opening(survey, months=6)
    closing = render_closing()
    crisis = render_crisis()
    help_text = render_help()
    unknown = render_unknown_sender()
    late = render_late_reply()
    reminder = render_reminder(survey, 3)
    for text in (opening, closing, crisis, help_text, unknown, late, reminder):
        assert is_gsm7(text), text
        assert "{" not in text and "}" not in text
        assert sms_segments(text) <= 3
    assert "8 short questions" in opening and "6 months" in opening
    assert "Reply STOP to stop" in opening
    assert "not monitored" in opening and "999" in opening
    assert default_service_texts().service_name in opening
    assert "GP practice" in closing and "again" in closing
    for number in ("999", "NHS 111", "option 2", "116 123", "SHOUT", "85258"):
        assert number in crisis
    assert "not monitored around the clock" in crisis
    assert "STOP" in help_text
    assert render_question(survey, 3) in reminder


def test_unknown_sender_reply_reveals_nothing() -> None:
    unknown = render_unknown_sender()
    texts = default_service_texts()
    assert texts.service_name not in unknown
    for word in ("link worker", "check", "survey", "question", "enrol", "patient", "prescrib"):
        assert word not in unknown.lower()


def test_render_refuses_a_question_longer_than_one_text() -> None:
    base = load_instrument("community")
    long_question = base.questions[0].model_copy(update={"sms_text": "Really? " * 25})
    survey = Survey(instruments=[base.model_copy(update={"questions": [long_question]})])
    with pytest.raises(RenderError, match="more than one text"):
        render_question(survey, 0)


def test_segments() -> None:
    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2
    assert sms_segments("a" * 306) == 2
    assert sms_segments("a" * 307) == 3
    assert sms_segments("[" * 80) == 1  # extension characters take two septets
    assert sms_segments("[" * 81) == 2
    assert sms_segments("\u2019" + "a" * 69) == 1  # one curly quote: UCS-2
    assert sms_segments("\u2019" + "a" * 70) == 2
    assert sms_segments("\U0001f600" * 35) == 1  # emoji are two UTF-16 units
    assert sms_segments("\U0001f600" * 36) == 2
    assert sms_segments("") == 1


def test_gsm7_alphabet() -> None:
    assert is_gsm7("Hello! 0-10, 'quotes' \"ok\" @ £5 é ü ß [x] {y} \u20ac")
    for bad in ("\u2019", "\u201c", "\u00a0", "\u2013", "\U0001f600", "\u00e7", "\t"):
        assert not is_gsm7(f"a{bad}b"), repr(bad)


def test_progress_hint_counts_from_one() -> None:
    survey = build_survey(CORE_SURVEY)
    texts = [render_question(survey, i) for i in range(len(survey))]
    assert [re.match(r"(\d+)/8 ", t).group(1) for t in texts] == [str(i) for i in range(1, 9)]  # type: ignore[union-attr]
    with pytest.raises(IndexError):
        render_question(survey, 8)
