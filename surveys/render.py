"""Turn questions and service texts into SMS bodies.

Question texts are "<n>/<total> <sms_text> <reply hint>", e.g.
"3/8 Overall, how happy did you feel yesterday? Reply 0 (not at all) to 10 (completely)".
Every question and clarification must be one GSM-7 text (160 septets); ``render_question``
raises ``RenderError`` otherwise, and the tests render every question of every instrument.
Opening, closing, help and crisis texts may take several parts but must stay GSM-7.
"""

from __future__ import annotations

from surveys.gsm import SINGLE_GSM7, gsm7_length, gsm7_offenders, is_gsm7, sms_segments
from surveys.model import Question, QuestionKind, Survey
from surveys.parse import ClarifyReason
from surveys.texts import ServiceTexts, default_service_texts

__all__ = [
    "RenderError",
    "is_gsm7",
    "sms_segments",
    "reply_hint",
    "render_question",
    "render_clarification",
    "render_opening",
    "render_closing",
    "render_reminder",
    "render_help",
    "render_crisis",
    "render_unknown_sender",
    "render_late_reply",
]


class RenderError(ValueError):
    """A rendered text breaks the SMS rules (non-GSM-7 character or too long)."""


def _texts(texts: ServiceTexts | None) -> ServiceTexts:
    return texts if texts is not None else default_service_texts()


def _gsm7(name: str, body: str) -> str:
    bad = gsm7_offenders(body)
    if bad:
        raise RenderError(f"{name}: characters outside GSM-7 {bad!r} (check the wording files)")
    return body


def _single(name: str, body: str) -> str:
    _gsm7(name, body)
    if gsm7_length(body) > SINGLE_GSM7:
        raise RenderError(
            f"{name}: {gsm7_length(body)} characters, more than one text ({SINGLE_GSM7}); "
            "shorten sms_text or reply_hint"
        )
    return body


def reply_hint(question: Question, texts: ServiceTexts | None = None) -> str:
    """The 'Reply ...' part, repeating the scale anchors or listing the options."""
    if question.reply_hint:
        return question.reply_hint
    t = _texts(texts)
    kind = question.kind
    if kind is QuestionKind.SCALE:
        return t.scale_hint.format(
            min=question.min, max=question.max, low=question.anchor_low, high=question.anchor_high
        )
    if kind is QuestionKind.COUNT:
        return t.count_hint.format(min=question.min, max=question.max)
    if kind is QuestionKind.YESNO:
        return t.yesno_hint
    options = ", ".join(
        t.choice_option.format(value=c.value, label=c.label) for c in question.choices
    )
    return t.choice_hint.format(options=options)


def render_question(survey: Survey, index: int, texts: ServiceTexts | None = None) -> str:
    """The text asking question ``index`` (0-based) of ``survey``, with progress and hint."""
    question = survey.question(index)
    body = f"{index + 1}/{len(survey)} {question.sms_text} {reply_hint(question, texts)}"
    return _single(f"question {question.key}", body)


def render_clarification(
    question: Question, reason: ClarifyReason, texts: ServiceTexts | None = None
) -> str:
    """The one follow-up text after a reply we could not use (``ParseResult.reason``)."""
    t = _texts(texts)
    body = t.fill(t.clarification[ClarifyReason(reason)], hint=reply_hint(question, t))
    return _single(f"clarification {reason} for {question.key}", body)


def render_opening(survey: Survey, *, months: int, texts: ServiceTexts | None = None) -> str:
    """First text of a check-in: who is texting, why, how many questions, STOP, 999."""
    t = _texts(texts)
    return _gsm7("opening", t.fill(t.opening, question_count=len(survey), months=months))


def render_closing(texts: ServiceTexts | None = None) -> str:
    """Thank-you after the last question."""
    t = _texts(texts)
    return _gsm7("closing", t.fill(t.closing))


def render_reminder(survey: Survey, index: int, texts: ServiceTexts | None = None) -> str:
    """A reminder that repeats the question still awaiting an answer (may be two parts)."""
    t = _texts(texts)
    return _gsm7("reminder", t.fill(t.reminder, question=render_question(survey, index, t)))


def render_help(texts: ServiceTexts | None = None) -> str:
    """Reply to HELP or INFO: who we are and how to reach the service."""
    t = _texts(texts)
    return _gsm7("help", t.fill(t.help))


def render_crisis(texts: ServiceTexts | None = None) -> str:
    """Crisis signposting sent whenever a text matches a risk rule."""
    t = _texts(texts)
    return _gsm7("crisis", t.fill(t.crisis))


def render_unknown_sender(texts: ServiceTexts | None = None) -> str:
    """The same neutral reply for every number we cannot match."""
    t = _texts(texts)
    return _gsm7("unknown_sender", t.unknown_sender)


def render_late_reply(texts: ServiceTexts | None = None) -> str:
    """Reply to a text that arrives after the check-in closed."""
    t = _texts(texts)
    return _gsm7("late_reply", t.fill(t.late_reply))
