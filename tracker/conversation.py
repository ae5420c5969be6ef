"""The conversation engine (pure): one inbound text + what we know -> what to do about it.

`interpret()` takes the sender (unknown, or a patient's contact state), the conversation the
text belongs to (if any), the survey, the service texts and `now`, and returns an `Outcome`:
answers to store, texts to send (in order), alerts to raise, a contact-state change and the
check-in's new position. It reads no clock and touches no database; `tracker.services.inbound`
does the I/O around it.

Order of decisions (DESIGN section 5):

1. Risk scan, for everyone (also stopped and unknown senders): crisis signposting + `risk`
   alert. A risky text is never scored as an answer and the next question waits: a crisis
   text followed by "4/8 How happy did you feel yesterday?" would be tone-deaf.
2. Unknown senders: the neutral reply (nothing for STOP; the carrier confirms it).
3. Keywords: STOP and synonyms -> stopped, no text of our own; a sentence asking to stop ->
   stopped + `opt_out_review` alert; START/UNSTOP (and YES while stopped) -> active;
   HELP/INFO -> help text.
4. Patients who are not active get no texts and no answers are recorded.
5. The open check-in: a reply after its window is stored as `late` and not scored; a picture
   without text asks the question again; otherwise the reply is parsed: a value or SKIP moves
   on, the first unusable reply gets one clarification, the second is stored as `invalid` and
   the conversation moves on. The last answer completes the check-in (closing text); a yes to
   the recontact question raises a `recontact` alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from surveys import (
    YES,
    Keyword,
    ParseKind,
    RiskMatch,
    ServiceTexts,
    Survey,
    asks_to_stop,
    classify_keyword,
    parse_reply,
    render_clarification,
    render_closing,
    render_crisis,
    render_help,
    render_late_reply,
    render_question,
    render_unknown_sender,
    scan_for_risk,
)
from tracker.domain import AlertKind, AnswerOutcome, ContactState

# The question whose "yes" means a person must get in touch (surveys/instruments/recontact.yaml).
RECONTACT_KEY = "recontact_requested"


class Purpose(StrEnum):
    """Why an outbound text is sent (stored in messages.purpose)."""

    QUESTION = "question"
    CLARIFICATION = "clarification"
    CLOSING = "closing"
    CRISIS = "crisis"
    HELP = "help"
    NEUTRAL = "neutral"
    LATE = "late_reply"


class Route(StrEnum):
    """What the text turned out to be; for logs, metrics and tests (never the body)."""

    RISK = "risk"
    UNKNOWN_SENDER = "unknown_sender"
    STOP = "stop"
    STOP_SENTENCE = "stop_sentence"
    START = "start"
    HELP = "help"
    NOT_ACTIVE = "not_active"
    NO_CHECKIN = "no_checkin"
    LATE = "late"
    PICTURE = "picture"
    ANSWER = "answer"
    CLARIFY = "clarify"


@dataclass(frozen=True)
class Conversation:
    """The check-in a reply belongs to, as far as the engine needs to know."""

    question_index: int
    clarifications: int
    window_closes_at: datetime
    open: bool = True  # False: closed (expired/partial/...): any reply is late


@dataclass(frozen=True)
class AnswerRecord:
    question_key: str
    outcome: AnswerOutcome
    value: int | None = None


@dataclass(frozen=True)
class Reply:
    purpose: Purpose
    body: str
    question_key: str | None = None


@dataclass(frozen=True)
class AlertRecord:
    kind: AlertKind
    detail: str


@dataclass(frozen=True)
class Outcome:
    route: Route
    replies: list[Reply] = field(default_factory=list)
    answers: list[AnswerRecord] = field(default_factory=list)
    alerts: list[AlertRecord] = field(default_factory=list)
    contact_change: ContactState | None = None
    contact_reason: str | None = None
    # New position of the conversation; None = unchanged.
    question_index: int | None = None
    clarifications: int | None = None
    completed: bool = False
    late: bool = False
    risk: RiskMatch | None = None


def interpret(
    *,
    body: str | None,
    media_count: int,
    now: datetime,
    contact_state: ContactState | str | None,
    conversation: Conversation | None,
    survey: Survey,
    texts: ServiceTexts,
) -> Outcome:
    """Decide what one inbound text means. `contact_state` None = the sender is not enrolled."""
    risk = scan_for_risk(body or "")
    if risk is not None:
        return _risk(risk, body, contact_state, texts)
    if contact_state is None:
        if classify_keyword(body) is Keyword.STOP:
            return Outcome(Route.UNKNOWN_SENDER)
        return Outcome(
            Route.UNKNOWN_SENDER, replies=[Reply(Purpose.NEUTRAL, render_unknown_sender(texts))]
        )
    state = ContactState(contact_state)
    keyword = classify_keyword(body)
    if keyword is Keyword.STOP:
        return Outcome(
            Route.STOP,
            contact_change=ContactState.STOPPED if state == ContactState.ACTIVE else None,
            contact_reason="patient texted a stop keyword",
        )
    if keyword is None and asks_to_stop(body):
        return _stop_sentence(state)
    if keyword is Keyword.START or (keyword is Keyword.YES and state == ContactState.STOPPED):
        # START only undoes a STOP by text: a staff pause or a withdrawal stays as it is.
        return Outcome(
            Route.START,
            contact_change=ContactState.ACTIVE if state == ContactState.STOPPED else None,
            contact_reason="patient texted a start keyword",
        )
    if keyword is Keyword.HELP:
        if state != ContactState.ACTIVE:
            return Outcome(Route.HELP)  # the carrier answers HELP for opted-out numbers
        return Outcome(Route.HELP, replies=[Reply(Purpose.HELP, render_help(texts))])
    if state != ContactState.ACTIVE:
        return Outcome(Route.NOT_ACTIVE)
    if conversation is None:
        return Outcome(Route.NO_CHECKIN, replies=[Reply(Purpose.HELP, render_help(texts))])
    return answer_question(
        body=body, media_count=media_count, now=now, conversation=conversation, survey=survey,
        texts=texts,
    )  # fmt: skip


def answer_question(
    *,
    body: str | None,
    media_count: int,
    now: datetime,
    conversation: Conversation,
    survey: Survey,
    texts: ServiceTexts,
) -> Outcome:
    """The reply to the question in hand (keywords and risk already ruled out)."""
    index = min(conversation.question_index, len(survey) - 1)
    question = survey.question(index)
    if not conversation.open or now > conversation.window_closes_at:
        return Outcome(
            Route.LATE,
            answers=[AnswerRecord(question.key, AnswerOutcome.LATE)],
            replies=[Reply(Purpose.LATE, render_late_reply(texts))],
            late=True,
        )
    if media_count > 0 and not (body or "").strip():
        again = render_question(survey, index, texts)
        return Outcome(Route.PICTURE, replies=[Reply(Purpose.QUESTION, again, question.key)])

    result = parse_reply(question, body)
    if result.kind is ParseKind.VALUE:
        record = AnswerRecord(question.key, AnswerOutcome.PARSED, result.value)
        alerts = []
        if question.key == RECONTACT_KEY and result.value == YES:
            alerts.append(AlertRecord(AlertKind.RECONTACT, "patient asked to be contacted"))
        return _move_on(index, [record], alerts, survey, texts)
    if result.kind is ParseKind.SKIP:
        return _move_on(
            index, [AnswerRecord(question.key, AnswerOutcome.SKIPPED)], [], survey, texts
        )

    if conversation.clarifications >= 1:
        # Second failure: keep the attempt as invalid and move on rather than nag.
        return _move_on(
            index, [AnswerRecord(question.key, AnswerOutcome.INVALID)], [], survey, texts
        )
    answers = []
    if result.kind is ParseKind.AMBIGUOUS:
        answers.append(AnswerRecord(question.key, AnswerOutcome.AMBIGUOUS))
    reason = result.reason
    assert reason is not None
    return Outcome(
        Route.CLARIFY,
        answers=answers,
        replies=[
            Reply(
                Purpose.CLARIFICATION, render_clarification(question, reason, texts), question.key
            )
        ],
        question_index=index,
        clarifications=conversation.clarifications + 1,
    )


def _move_on(
    index: int,
    answers: list[AnswerRecord],
    alerts: list[AlertRecord],
    survey: Survey,
    texts: ServiceTexts,
) -> Outcome:
    following = index + 1
    if following >= len(survey):
        return Outcome(
            Route.ANSWER,
            answers=answers,
            alerts=alerts,
            replies=[Reply(Purpose.CLOSING, render_closing(texts))],
            question_index=following,
            clarifications=0,
            completed=True,
        )
    question = survey.question(following)
    return Outcome(
        Route.ANSWER,
        answers=answers,
        alerts=alerts,
        replies=[Reply(Purpose.QUESTION, render_question(survey, following, texts), question.key)],
        question_index=following,
        clarifications=0,
    )


def _risk(
    risk: RiskMatch, body: str | None, contact_state: ContactState | str | None, texts: ServiceTexts
) -> Outcome:
    alerts = [AlertRecord(AlertKind.RISK, f"risk language: {risk.category} ({risk.rule})")]
    change = None
    reason = None
    state = ContactState(contact_state) if contact_state is not None else None
    if state is not None and classify_keyword(body) is None and asks_to_stop(body):
        alerts.append(AlertRecord(AlertKind.OPT_OUT_REVIEW, "asked to stop in a sentence"))
        if state == ContactState.ACTIVE:
            change, reason = ContactState.STOPPED, "patient asked to stop in a sentence"
    # Signposting goes to everyone, stopped senders included: safety outranks the opt-out.
    return Outcome(
        Route.RISK,
        replies=[Reply(Purpose.CRISIS, render_crisis(texts))],
        alerts=alerts,
        contact_change=change,
        contact_reason=reason,
        risk=risk,
    )


def _stop_sentence(state: ContactState) -> Outcome:
    return Outcome(
        Route.STOP_SENTENCE,
        alerts=[AlertRecord(AlertKind.OPT_OUT_REVIEW, "asked to stop in a sentence")],
        contact_change=ContactState.STOPPED if state == ContactState.ACTIVE else None,
        contact_reason="patient asked to stop in a sentence",
    )
