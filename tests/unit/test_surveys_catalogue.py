"""Instruments are data: loading, validating, adding a deployment's own folder."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import surveys
from surveys import (
    CORE_SURVEY,
    InstrumentError,
    QuestionKind,
    available_instruments,
    build_survey,
    load_instrument,
    parse_reply,
    render_question,
)

EXPORT_COLUMNS = [
    "life_satisfaction",
    "worthwhile",
    "happy",
    "anxious",
    "lonely",
    "gp_visits",
    "community_activity",
    "recontact_requested",
]

EXTRA_INSTRUMENT = """
id: sleep
title: Sleep quality (local item)
version: "1"
source: Local test item
licence: Test wording
questions:
  - key: sleep_quality
    link_id: sleep.quality
    kind: scale
    min: 1
    max: 5
    anchor_low: very poor
    anchor_high: very good
    text: How would you rate your sleep over the last week?
    sms_text: How would you rate your sleep over the last week?
"""


def test_core_survey_asks_the_export_columns_in_order() -> None:
    survey = build_survey(CORE_SURVEY)
    assert [q.key for q in survey.questions] == EXPORT_COLUMNS
    assert len(survey) == 8
    assert survey.instrument_ids == list(CORE_SURVEY)
    assert survey.version_tag.startswith("ons4@")
    assert survey.index_of("gp_visits") == 5


def test_official_wording_and_codes() -> None:
    ons4 = load_instrument("ons4")
    assert [q.text for q in ons4.questions][:3] == [
        "Overall, how satisfied are you with your life nowadays?",
        "Overall, to what extent do you feel that the things you do in your life are worthwhile?",
        "Overall, how happy did you feel yesterday?",
    ]
    assert ons4.questions[3].text == (
        'On a scale where nought is "not at all anxious" and 10 is "completely anxious", '
        "overall, how anxious did you feel yesterday?"
    )
    assert all(q.min == 0 and q.max == 10 for q in ons4.questions)
    lonely = load_instrument("loneliness_direct").questions[0]
    assert lonely.text == "How often do you feel lonely?"
    assert lonely.value_labels() == {
        1: "never",
        2: "hardly ever",
        3: "occasionally",
        4: "some of the time",
        5: "often or always",
    }
    ucla = load_instrument("ucla3")
    assert [q.key for q in ucla.questions] == [
        "ucla_companionship",
        "ucla_left_out",
        "ucla_isolated",
    ]
    assert ucla.questions[0].value_labels() == {
        1: "hardly ever or never",
        2: "some of the time",
        3: "often",
    }
    gp = load_instrument("gp_visits").questions[0]
    assert (gp.kind, gp.min, gp.max) == (QuestionKind.COUNT, 0, 99)
    assert gp.text.startswith(
        "In the last 6 months, how many times have you seen or spoken to a GP"
    )
    assert load_instrument("recontact").questions[0].value_labels() == {1: "yes", 0: "no"}


def test_link_ids_are_unique_and_every_question_knows_its_instrument() -> None:
    survey = build_survey(available_instruments())
    link_ids = [q.link_id for q in survey.questions]
    assert len(set(link_ids)) == len(link_ids)
    for inst in survey.instruments:
        assert inst.licence and inst.source
        assert all(q.instrument == inst.id for q in inst.questions)


def test_a_deployment_adds_an_instrument_by_dropping_a_file(tmp_path: Path) -> None:
    (tmp_path / "sleep.yaml").write_text(EXTRA_INSTRUMENT, encoding="utf-8")
    assert "sleep" in available_instruments([tmp_path])
    assert "sleep" not in available_instruments()
    survey = build_survey([*CORE_SURVEY, "sleep"], extra_dirs=[tmp_path])
    assert render_question(survey, 8) == (
        "9/9 How would you rate your sleep over the last week? Reply 1 (very poor) to 5 (very good)"
    )
    assert parse_reply(survey.question(8), "4/5").value == 4
    assert parse_reply(survey.question(8), "0").kind.value == "needs_clarification"


def test_a_local_file_cannot_replace_official_wording(tmp_path: Path) -> None:
    (tmp_path / "ons4.yaml").write_text(EXTRA_INSTRUMENT.replace("id: sleep", "id: ons4"))
    with pytest.raises(InstrumentError, match="defined in both"):
        build_survey(CORE_SURVEY, extra_dirs=[tmp_path])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("kind: scale", "kind: dial"), "kind"),
        (("anchor_low: very poor\n", ""), "anchor"),
        (("min: 1", "min: 9"), "min < max"),
        (("id: sleep", "id: sleepy"), "match the file name"),
        (("How would you rate", "How\u2019d you rate"), "GSM-7"),
        (("key: sleep_quality", "key: Sleep Quality"), "lower_case"),
        (("title:", "titel:"), "titel"),
    ],
)
def test_invalid_instrument_files_say_what_is_wrong(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    (tmp_path / "sleep.yaml").write_text(EXTRA_INSTRUMENT.replace(*change), encoding="utf-8")
    with pytest.raises(InstrumentError, match=message):
        load_instrument("sleep", [tmp_path])


def test_unknown_ids_and_bad_lists() -> None:
    with pytest.raises(InstrumentError, match="unknown instrument 'swemwbs'.*available"):
        build_survey(["ons4", "swemwbs"])
    with pytest.raises(InstrumentError, match="repeat"):
        build_survey(["ons4", "ons4"])
    with pytest.raises(InstrumentError, match="at least one"):
        build_survey([])
    with pytest.raises(InstrumentError, match="does not exist"):
        available_instruments(["/nonexistent/instruments"])


def test_surveys_package_imports_nothing_from_the_service() -> None:
    forbidden = {"tracker", "sqlalchemy", "fastapi", "twilio", "httpx", "requests", "apscheduler"}
    package = Path(surveys.__file__).parent
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"
