"""Opt-out keywords exactly as DESIGN section 5, and sentences that ask us to stop."""

from __future__ import annotations

import pytest

from surveys import Keyword, asks_to_stop, classify_keyword

KEYWORDS = [
    *[
        (w, Keyword.STOP)
        for w in ("STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "OPTOUT", "REVOKE")
    ],
    *[(w, Keyword.START) for w in ("START", "UNSTOP")],
    ("YES", Keyword.YES),
    *[(w, Keyword.HELP) for w in ("HELP", "INFO")],
]


@pytest.mark.parametrize(("word", "keyword"), KEYWORDS)
@pytest.mark.parametrize(
    "dress", ["{}", "{l}", "{t}", "  {} ", "{}.", "{}!!", "{}?", "{}\n", "\x00{}", "{} \U0001f64f"]
)
def test_keywords_any_case_with_trailing_punctuation(
    word: str, keyword: Keyword, dress: str
) -> None:
    text = dress.format(word, l=word.lower(), t=word.title())
    assert classify_keyword(text) is keyword


@pytest.mark.parametrize(
    "text",
    [
        "stop please",
        "please stop",
        "stopp",
        "stopped",
        "end of",
        "endless",
        "help me",
        "yes please",
        "no",
        "y",
        "7",
        "",
        None,
        "S T O P",
        "can I have some info",
    ],
)
def test_sentences_and_other_words_are_not_keywords(text: str | None) -> None:
    assert classify_keyword(text) is None


def test_full_width_keyword() -> None:
    assert classify_keyword("\uff33\uff34\uff2f\uff30") is Keyword.STOP


ASKS_TO_STOP = [
    "stop texting me",
    "Please don't text me again",
    "please don\u2019t text me again",
    "take me off your list",
    "Take me off your system please",
    "leave me alone",
    "I don't want these messages",
    "I do not want any more messages",
    "I no longer wish to receive these texts",
    "please stop",
    "Stop it",
    "Stop please",
    "please stop, thanks",
    "STOP texting",
    "stop sending me these",
    "can you stop messaging me",
    "Don't contact me",
    "dont message me",
    "no more texts please",
    "I want to unsubscribe",
    "I'd like to stop getting these texts",
    "remove my number",
    "please remove me from your list",
    "opt me out",
    "not interested thanks",
    "wrong number",
    "STOP STOP STOP",
    "Stop!!! Stop!!!",
    "STOPPPP",
    "no stop",
    "unsubscribe please",
    "I want to opt out",
]

NOT_A_STOP = [
    "I stopped going to the group",
    "no",
    "No thanks",
    "nope",
    "yes",
    "7",
    "STOP",  # a single keyword: classify_keyword handles it
    "I had to stop the walking group",
    "I can't stop crying",
    "the bus didn't stop",
    "I don't want to stop going",
    "non-stop rain this week",
    "I don't text much",
    "I didn't get your last message",
    "I want to stop smoking",
    "I opted out of the walking group",
    "please cancel my appointment",
    "No, not interested in groups",
    "Don't hesitate to call me",
    "stopped",
    "can I stop by the surgery",
    "I don't want to miss the message from my GP",
    "message me on Tuesday instead",
    "my daughter texts me every day",
    "",
    None,
]


@pytest.mark.parametrize("text", ASKS_TO_STOP)
def test_sentences_that_ask_to_stop(text: str) -> None:
    assert asks_to_stop(text)


@pytest.mark.parametrize("text", NOT_A_STOP)
def test_answers_and_stories_are_not_stop_requests(text: str | None) -> None:
    assert not asks_to_stop(text)
