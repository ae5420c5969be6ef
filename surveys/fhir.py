"""FHIR R4 mapping: a Survey as Questionnaire resources, answers as QuestionnaireResponses.

Plain JSON-ready dicts, so this module stays pure and light; `validate_r4` checks them with
`fhir.resources.R4B` models (R4B is wire-compatible with R4 for these two resources, which is
what UK Core uses). No LOINC codes exist for ONS4 or the ONS loneliness wording, so items are
coded in a local code system whose codes are the stable ``linkId``s of surveys/instruments.

Answers are integers (DESIGN section 6): scales and counts become ``valueInteger``, choices a
``valueCoding`` in a per-question local code system (code = the stored integer), yes/no a
``valueBoolean``. Responses carry no dates and no names: the subject is a pseudonymous
identifier only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from surveys.model import Question, QuestionKind, Survey

FHIR_VERSION = "4.0.1"
BASE = "urn:social-prescribing-tracker"
ITEM_CODE_SYSTEM = f"{BASE}:CodeSystem:survey-item"
_MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
_MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"

# Check-in state -> QuestionnaireResponse.status. A check-in that closed before every question
# was answered (partial, expired, cancelled, failed) is `stopped`.
RESPONSE_STATUS = {
    "completed": "completed",
    "partial": "stopped",
    "expired": "stopped",
    "cancelled": "stopped",
    "failed": "stopped",
    "missed": "stopped",
    "open": "in-progress",
    "sending": "in-progress",
    "scheduled": "in-progress",
}


def questionnaire_id(wave: int) -> str:
    return f"followup-{wave}m"


def questionnaire_url(wave: int) -> str:
    return f"{BASE}:Questionnaire:{questionnaire_id(wave)}"


def answer_system(q: Question) -> str:
    """Local code system of a choice question's answers."""
    return f"{BASE}:CodeSystem:{q.link_id}"


def questionnaire(survey: Survey, wave: int) -> dict[str, Any]:
    """The Questionnaire for one follow-up wave of this survey (version = the survey's tag)."""
    return {
        "resourceType": "Questionnaire",
        "id": questionnaire_id(wave),
        "meta": {"tag": [{"system": f"{BASE}:fhir-version", "code": FHIR_VERSION}]},
        "url": questionnaire_url(wave),
        "version": survey.version_tag,
        "name": f"FollowUp{wave}Months",
        "title": f"Follow-up check-in {wave} months after social prescribing discharge",
        "status": "active",
        "subjectType": ["Patient"],
        "description": "Asked one question per SMS. Instruments: "
        + "; ".join(f"{i.title} ({i.source}; {i.licence})" for i in survey.instruments),
        "item": [_item(q) for q in survey.questions],
    }


def _item(q: Question) -> dict[str, Any]:
    item: dict[str, Any] = {
        "linkId": q.link_id,
        "code": [{"system": ITEM_CODE_SYSTEM, "code": q.link_id, "display": q.key}],
        "text": q.text,
        "required": False,
    }
    if q.kind is QuestionKind.CHOICE:
        item["type"] = "choice"
        item["answerOption"] = [
            {"valueCoding": {"system": answer_system(q), "code": str(c.value), "display": c.label}}
            for c in q.choices
        ]
    elif q.kind is QuestionKind.YESNO:
        item["type"] = "boolean"
    else:
        low, high = q.value_range()
        item["type"] = "integer"
        item["extension"] = [
            {"url": _MIN_VALUE, "valueInteger": low},
            {"url": _MAX_VALUE, "valueInteger": high},
        ]
    return item


def answer_value(q: Question, value: int) -> dict[str, Any]:
    """One QuestionnaireResponse.item.answer for a stored integer value."""
    if q.kind is QuestionKind.CHOICE:
        labels = q.value_labels()
        return {
            "valueCoding": {
                "system": answer_system(q),
                "code": str(value),
                "display": labels.get(value, str(value)),
            }
        }
    if q.kind is QuestionKind.YESNO:
        return {"valueBoolean": bool(value)}
    return {"valueInteger": int(value)}


def questionnaire_response(
    survey: Survey,
    *,
    wave: int,
    pid: str,
    study: str,
    checkin_state: str,
    answers: Mapping[str, int | None],
) -> dict[str, Any]:
    """A QuestionnaireResponse for one patient's check-in; `answers` maps question key -> value."""
    items = []
    for q in survey.questions:
        value = answers.get(q.key)
        if value is None:
            continue
        items.append({"linkId": q.link_id, "text": q.text, "answer": [answer_value(q, value)]})
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": f"{pid}-{wave}m",
        "questionnaire": f"{questionnaire_url(wave)}|{survey.version_tag}",
        "status": RESPONSE_STATUS.get(checkin_state, "stopped"),
        "subject": {
            "identifier": {"system": f"{BASE}:study:{study}:pid", "value": pid},
            "display": "pseudonymous research participant",
        },
    }
    if items:
        resource["item"] = items
    return resource


def ndjson(resource: dict[str, Any]) -> str:
    """One resource as an NDJSON line (without the newline): compact, UTF-8 text kept as is."""
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":"))


def json_text(value: str) -> str:
    """`value` escaped as it appears inside a JSON string in `ndjson` (no quotes around it)."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


@dataclass(frozen=True)
class ResponseTemplate:
    """An NDJSON QuestionnaireResponse of one study, wave and check-in state, in fixed pieces:

        head + pid + middle + pid + tail [+ items_open + item,item,... + items_close] + end

    with `pid` as `json_text(pid)` and each item as `response_item`. For writing millions of
    responses without building each as a dict; `response_template` checks the pieces against
    `questionnaire_response` itself, so that function stays the one mapping."""

    head: str
    middle: str
    tail: str
    items_open: str
    items_close: str
    end: str

    def line(self, pid: str, items: list[str]) -> str:
        body = f"{self.items_open}{','.join(items)}{self.items_close}" if items else ""
        escaped = json_text(pid)
        return f"{self.head}{escaped}{self.middle}{escaped}{self.tail}{body}{self.end}"


def response_item(survey: Survey, question: Question, value: int) -> str:
    """The NDJSON text of one QuestionnaireResponse.item: `question` answered `value`."""
    resource = questionnaire_response(
        survey, wave=0, pid="", study="", checkin_state="", answers={question.key: value}
    )
    return ndjson(resource["item"][0])


def response_template(
    survey: Survey, *, wave: int, study: str, checkin_state: str
) -> ResponseTemplate:
    """The fixed pieces of every response line for this study, wave and check-in state."""

    def line(pid: str, answers: Mapping[str, int | None]) -> str:
        return ndjson(
            questionnaire_response(
                survey,
                wave=wave,
                pid=pid,
                study=study,
                checkin_state=checkin_state,
                answers=answers,
            )
        )

    mark = "<pid>"
    while study.count(mark) or line(mark, {}).count(mark) != 2:
        mark = f"<{mark}>"  # longer than anything in the study name eventually
    head, middle, rest = line(mark, {}).split(mark)
    tail, end = rest[:-1], rest[-1:]
    # The item list is added as the last key: find its opening and closing around one item.
    first = survey.questions[0]
    low = first.value_range()[0]
    with_item = line(mark, {first.key: low})
    item = response_item(survey, first, low)
    opened_at = len(f"{head}{mark}{middle}{mark}{tail}")
    items_open = with_item[opened_at : with_item.index(item, opened_at)]
    items_close = with_item[len(items_open) + opened_at + len(item) : -len(end)]
    template = ResponseTemplate(head, middle, tail, items_open, items_close, end)
    _check_template(template, survey, line)
    return template


def _check_template(
    template: ResponseTemplate, survey: Survey, line: Callable[[str, Mapping[str, int]], str]
) -> None:
    # The pieces must compose to exactly what questionnaire_response gives (here with every
    # question answered and with two): a mapping change that breaks this fails loudly.
    pid = 'p"1\\é'
    for questions in (survey.questions, survey.questions[-2:]):
        answers = {q.key: q.value_range()[1] for q in questions}
        items = [response_item(survey, q, answers[q.key]) for q in questions]
        if template.line(pid, items) != line(pid, answers):
            raise RuntimeError("FHIR response template does not match questionnaire_response")


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A collection Bundle (used for the Questionnaire resources of an export)."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": r.get("url", f"{BASE}:{r['resourceType']}:{r['id']}"), "resource": r}
            for r in resources
        ],
    }


# Required value-set bindings that fhir.resources does not check itself.
_R4_CODES = {
    ("QuestionnaireResponse", "status"): {
        "in-progress", "completed", "amended", "entered-in-error", "stopped",
    },
    ("Questionnaire", "status"): {"draft", "active", "retired", "unknown"},
    ("Bundle", "type"): {
        "document", "message", "transaction", "transaction-response", "batch",
        "batch-response", "history", "searchset", "collection",
    },
}  # fmt: skip
_R4_ITEM_TYPES = {
    "group", "display", "question", "boolean", "decimal", "integer", "date", "dateTime",
    "time", "string", "text", "url", "choice", "open-choice", "attachment", "reference",
    "quantity",
}  # fmt: skip


def validate_r4(resource: dict[str, Any]) -> Any:
    """Parse with the fhir.resources R4B model of its resourceType and check the required
    code bindings used here (raises ValueError, or pydantic's ValidationError, if invalid)."""
    from fhir.resources.R4B import get_fhir_model_class

    kind = resource.get("resourceType", "")
    model = get_fhir_model_class(kind).model_validate(resource)
    for (rtype, element), codes in _R4_CODES.items():
        if kind == rtype and resource.get(element) not in codes:
            raise ValueError(f"{kind}.{element} {resource.get(element)!r} is not an R4 code")
    if kind == "Questionnaire":
        for item in resource.get("item", []):
            if item.get("type") not in _R4_ITEM_TYPES:
                raise ValueError(f"Questionnaire.item.type {item.get('type')!r} is not R4")
    if kind == "Bundle":
        for entry in resource.get("entry", []):
            validate_r4(entry["resource"])
    return model
