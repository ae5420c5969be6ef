"""Service texts: defaults from YAML, per-deployment overrides, checked at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveys import (
    CORE_SURVEY,
    ServiceTextsError,
    build_survey,
    default_service_texts,
    load_service_texts,
    render_clarification,
    render_crisis,
    render_help,
    render_opening,
    render_question,
)
from surveys.parse import ClarifyReason


def test_no_path_means_the_defaults() -> None:
    assert load_service_texts() == default_service_texts()


def test_a_deployment_overrides_only_what_it_sets(tmp_path: Path) -> None:
    path = tmp_path / "texts.yaml"
    path.write_text(
        "service_name: Riverside Social Prescribing\n"
        "contact_details: call 01632 960000, Mon-Fri 9-5\n"
        "clarification:\n"
        "  out_of_range: 'Oops, {hint}, or SKIP'\n",
        encoding="utf-8",
    )
    texts = load_service_texts(path)
    defaults = default_service_texts()
    assert texts.crisis == defaults.crisis
    survey = build_survey(CORE_SURVEY)
    assert render_opening(survey, months=12, texts=texts).startswith(
        "Hello from Riverside Social Prescribing. It is 12 months"
    )
    assert "call 01632 960000, Mon-Fri 9-5" in render_help(texts)
    q = survey.question(0)
    assert render_clarification(q, ClarifyReason.OUT_OF_RANGE, texts) == (
        "Oops, Reply 0 (not at all) to 10 (completely), or SKIP"
    )
    # Clarifications it did not set keep the default wording.
    assert render_clarification(q, ClarifyReason.NO_TEXT, texts) == render_clarification(
        q, ClarifyReason.NO_TEXT
    )
    assert render_question(survey, 0, texts) == render_question(survey, 0)


def test_a_deployment_can_reword_the_reply_hints(tmp_path: Path) -> None:
    path = tmp_path / "texts.yaml"
    path.write_text("scale_hint: 'Text a number {min}-{max} ({min} = {low}, {max} = {high})'\n")
    survey = build_survey(["ons4"])
    assert render_question(survey, 0, load_service_texts(path)).endswith(
        "Text a number 0-10 (0 = not at all, 10 = completely)"
    )


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("crisis: 'Call 999 \u2013 now'\n", "outside GSM-7"),
        ("opening: 'Hi from {service}'\n", "unknown placeholders"),
        ("unknown_sender: 'This is {service_name}'\n", "unknown placeholders"),
        ("closing: 'Thanks {'\n", "braces"),
        ("clossing: 'Thanks'\n", "unknown text names"),
        ("- a list\n", "mapping"),
        (
            "crisis: 'Call Samaritans on 116 123 or NHS 111, or text SHOUT to 85258'\n",
            "must mention 999",
        ),
        ("opening: 'Hello from {service_name}. In an emergency call 999.'\n", "must mention STOP"),
        ("crisis: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_overrides_fail_at_load(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "texts.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ServiceTextsError, match=message):
        load_service_texts(path)


def test_missing_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(ServiceTextsError, match="cannot read service texts"):
        load_service_texts(tmp_path / "nope.yaml")


def test_crisis_text_is_the_default_when_not_overridden(tmp_path: Path) -> None:
    path = tmp_path / "texts.yaml"
    path.write_text("")
    assert render_crisis(load_service_texts(path)) == render_crisis()
