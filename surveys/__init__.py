"""Survey instruments, SMS rendering and reply reading: pure, imports nothing from tracker.

Typical use by the conversation engine::

    survey = build_survey(CORE_SURVEY)
    text = render_question(survey, 0)                  # "1/8 Overall, how satisfied ..."
    if (risk := scan_for_risk(body)) is not None: ...  # before anything else
    keyword = classify_keyword(body)                   # STOP / START / YES / HELP or None
    if keyword is None and asks_to_stop(body): ...     # stop + opt_out_review alert
    result = parse_reply(survey.question(0), body)     # ParseResult(kind=..., value=...)
"""

from surveys.catalogue import (
    CORE_SURVEY,
    EXTENDED_INSTRUMENTS,
    InstrumentError,
    available_instruments,
    build_survey,
    load_instrument,
)
from surveys.gsm import is_gsm7, sms_segments
from surveys.keywords import Keyword, asks_to_stop, classify_keyword
from surveys.model import NO, YES, Choice, Instrument, Question, QuestionKind, Survey
from surveys.parse import ClarifyReason, ParseKind, ParseResult, parse_reply
from surveys.render import (
    RenderError,
    render_clarification,
    render_closing,
    render_crisis,
    render_help,
    render_late_reply,
    render_opening,
    render_question,
    render_reminder,
    render_unknown_sender,
    reply_hint,
)
from surveys.risk import RiskCategory, RiskMatch, scan_for_risk
from surveys.texts import ServiceTexts, ServiceTextsError, default_service_texts, load_service_texts

__all__ = [
    "CORE_SURVEY",
    "EXTENDED_INSTRUMENTS",
    "NO",
    "YES",
    "Choice",
    "ClarifyReason",
    "Instrument",
    "InstrumentError",
    "Keyword",
    "ParseKind",
    "ParseResult",
    "Question",
    "QuestionKind",
    "RenderError",
    "RiskCategory",
    "RiskMatch",
    "ServiceTexts",
    "ServiceTextsError",
    "Survey",
    "asks_to_stop",
    "available_instruments",
    "build_survey",
    "classify_keyword",
    "default_service_texts",
    "is_gsm7",
    "load_instrument",
    "load_service_texts",
    "parse_reply",
    "render_clarification",
    "render_closing",
    "render_crisis",
    "render_help",
    "render_late_reply",
    "render_opening",
    "render_question",
    "render_reminder",
    "render_unknown_sender",
    "reply_hint",
    "scan_for_risk",
    "sms_segments",
]
