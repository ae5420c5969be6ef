"""Survey preview: the whole conversation as a phone shows it, and a try-it box.

Decision: the try-it box runs each reply through `tracker.conversation.interpret`, the same pure
engine the inbound SMS pipeline uses, against a preview-only conversation whose state travels in
the page itself. Nothing is stored, no text is sent and no real patient is touched, so staff can
try risk phrases, STOP, HELP and odd answers safely; what they see is what a patient would get.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tracker.app import App
from tracker.conversation import Conversation, interpret
from tracker.domain import ContactState

MAX_TRANSCRIPT = 300


def _survey_and_texts(app: App) -> tuple[Any, Any]:
    from tracker.services.inbound import survey_for, texts_for

    return survey_for(app.settings), texts_for(app.settings)


def full_conversation(app: App) -> list[dict[str, str]]:
    """Every text of a check-in in order, as bubbles (opening, each question, closing)."""
    from surveys import render_closing, render_opening, render_question

    survey, texts = _survey_and_texts(app)
    months = app.settings.waves_months[0]
    bubbles = [
        {
            "who": "service",
            "label": "opening",
            "text": render_opening(survey, months=months, texts=texts),
        }
    ]
    for index in range(len(survey)):
        bubbles.append(
            {
                "who": "service",
                "label": f"question {index + 1} ({survey.question(index).key})",
                "text": render_question(survey, index, texts),
            }
        )
    bubbles.append({"who": "service", "label": "closing", "text": render_closing(texts)})
    return bubbles


def special_texts(app: App) -> list[dict[str, str]]:
    from surveys import render_crisis, render_help, render_unknown_sender

    _, texts = _survey_and_texts(app)
    return [
        {"label": "reply to HELP", "text": render_help(texts)},
        {"label": "crisis signposting (any risk phrase)", "text": render_crisis(texts)},
        {"label": "reply to an unknown number", "text": render_unknown_sender(texts)},
    ]


def _fresh_state(app: App) -> dict[str, Any]:
    from surveys import render_opening, render_question

    survey, texts = _survey_and_texts(app)
    months = app.settings.waves_months[0]
    return {
        "index": 0,
        "clarifications": 0,
        "contact": ContactState.ACTIVE.value,
        "done": False,
        "transcript": [
            ["out", render_opening(survey, months=months, texts=texts)],
            ["out", render_question(survey, 0, texts)],
        ],
    }


def _load_state(app: App, raw: str | None) -> dict[str, Any]:
    survey, _ = _survey_and_texts(app)
    try:
        state = json.loads(raw) if raw else None
        if not isinstance(state, dict):
            raise ValueError
        state["index"] = min(max(int(state["index"]), 0), len(survey) - 1)
        state["clarifications"] = min(max(int(state["clarifications"]), 0), 5)
        state["contact"] = ContactState(state["contact"]).value
        state["done"] = bool(state["done"])
        transcript = state["transcript"]
        if not isinstance(transcript, list):
            raise ValueError
        state["transcript"] = [
            [str(item[0])[:8], str(item[1])[:1600]]
            for item in transcript[-MAX_TRANSCRIPT:]
            if isinstance(item, list) and len(item) == 2
        ]
        return state
    except (ValueError, KeyError, TypeError):
        return _fresh_state(app)


def try_reply(app: App, state: dict[str, Any], reply: str) -> dict[str, Any]:
    """Run one reply through the conversation engine and return the new preview state."""
    survey, texts = _survey_and_texts(app)
    now = app.clock.now()
    state["transcript"].append(["in", reply])
    outcome = interpret(
        body=reply,
        media_count=0,
        now=now,
        contact_state=state["contact"],
        conversation=Conversation(
            question_index=state["index"],
            clarifications=state["clarifications"],
            window_closes_at=now + timedelta(days=app.settings.response_window_days),
            open=not state["done"],
        ),
        survey=survey,
        texts=texts,
    )
    for answer in outcome.answers:
        value = "" if answer.value is None else f" = {answer.value}"
        state["transcript"].append(
            ["note", f"recorded {answer.question_key}: {answer.outcome}{value}"]
        )
    for alert in outcome.alerts:
        state["transcript"].append(
            ["alert", f"{alert.kind} alert would be raised ({alert.detail})"]
        )
    if outcome.contact_change is not None:
        state["contact"] = outcome.contact_change.value
        state["transcript"].append(["note", f"patient would now be {outcome.contact_change.value}"])
    for text in outcome.replies:
        state["transcript"].append(["out", text.body])
    if not outcome.replies and not outcome.answers and outcome.contact_change is None:
        state["transcript"].append(["note", f"no reply is sent ({outcome.route})"])
    if outcome.question_index is not None:
        state["index"] = min(outcome.question_index, len(survey) - 1)
    if outcome.clarifications is not None:
        state["clarifications"] = outcome.clarifications
    if outcome.completed:
        state["done"] = True
        state["transcript"].append(["note", "check-in complete"])
    state["transcript"] = state["transcript"][-MAX_TRANSCRIPT:]
    return state


def page_context(app: App, raw_state: str | None, reply: str | None) -> dict[str, Any]:
    state = _load_state(app, raw_state)
    if reply is not None and reply.strip() and raw_state is not None:
        state = try_reply(app, state, reply)
    survey, _ = _survey_and_texts(app)
    return {
        "conversation": full_conversation(app),
        "specials": special_texts(app),
        "state": state,
        "state_json": json.dumps(state),
        "question_count": len(survey),
    }
