"""FHIR R4 mapping of surveys: resources validate with fhir.resources (R4B models)."""

from __future__ import annotations

import pytest

from surveys import fhir
from surveys.catalogue import build_survey

SURVEY = build_survey()
EXTENDED = build_survey([*SURVEY.instrument_ids, "ucla3"])
ANSWERS = {
    "life_satisfaction": 8,
    "worthwhile": 7,
    "happy": 7,
    "anxious": 2,
    "lonely": 5,
    "gp_visits": 0,
    "community_activity": 1,
    "recontact_requested": 0,
}


@pytest.mark.parametrize("survey", [SURVEY, EXTENDED], ids=["core", "extended"])
@pytest.mark.parametrize("wave", [6, 12])
def test_questionnaire_validates_with_stable_link_ids(survey, wave: int) -> None:
    resource = fhir.questionnaire(survey, wave)
    model = fhir.validate_r4(resource)
    assert model.status == "active"
    assert model.version == survey.version_tag
    assert [i.linkId for i in model.item] == [q.link_id for q in survey.questions]
    # Official wording, not the SMS shortening, goes into the Questionnaire.
    anxious = next(i for i in model.item if i.linkId == "ons4.anxious")
    assert anxious.text.startswith("On a scale where nought")
    lonely = next(i for i in model.item if i.linkId == "loneliness.direct")
    assert lonely.type == "choice"
    assert [o.valueCoding.code for o in lonely.answerOption] == ["1", "2", "3", "4", "5"]
    assert all(c.system == fhir.ITEM_CODE_SYSTEM for i in model.item for c in i.code)


def test_bundle_of_questionnaires_validates() -> None:
    bundle = fhir.bundle([fhir.questionnaire(SURVEY, w) for w in (6, 12)])
    model = fhir.validate_r4(bundle)
    assert model.type == "collection" and len(model.entry) == 2


def test_completed_response_maps_each_answer_type() -> None:
    resource = fhir.questionnaire_response(
        SURVEY, wave=6, pid="0123456789abcdef", study="alpha",
        checkin_state="completed", answers=ANSWERS,
    )  # fmt: skip
    model = fhir.validate_r4(resource)
    assert model.status == "completed"
    assert model.subject.identifier.value == "0123456789abcdef"
    assert model.subject.reference is None
    assert model.questionnaire == f"{fhir.questionnaire_url(6)}|{SURVEY.version_tag}"
    answers = {i.linkId: i.answer[0] for i in model.item}
    assert answers["ons4.life_satisfaction"].valueInteger == 8
    assert answers["gp.contacts_6m"].valueInteger == 0
    assert answers["loneliness.direct"].valueCoding.display == "often or always"
    assert answers["community.taking_part"].valueBoolean is True
    assert answers["recontact.requested"].valueBoolean is False
    assert "authored" not in resource  # no calendar dates leave the service


@pytest.mark.parametrize(
    ("state", "status"),
    [("partial", "stopped"), ("expired", "stopped"), ("open", "in-progress")],
)
def test_unfinished_check_ins_are_stopped_or_in_progress(state: str, status: str) -> None:
    answers = {"happy": 4} if state == "partial" else {}
    resource = fhir.questionnaire_response(
        SURVEY, wave=12, pid="p", study="s", checkin_state=state, answers=answers
    )
    model = fhir.validate_r4(resource)
    assert model.status == status
    assert len(model.item or []) == len(answers)


def test_invalid_resource_is_rejected() -> None:
    resource = fhir.questionnaire_response(
        SURVEY, wave=6, pid="p", study="s", checkin_state="completed", answers={"happy": 3}
    )
    wrong_code = {**resource, "status": "finished"}
    with pytest.raises(ValueError, match="not an R4 code"):
        fhir.validate_r4(wrong_code)
    wrong_type = {**resource, "item": [{"linkId": "ons4.happy", "answer": [{"valueInteger": "x"}]}]}
    with pytest.raises(ValueError):
        fhir.validate_r4(wrong_type)
    with pytest.raises(ValueError):
        fhir.validate_r4({**resource, "bogus": 1})
