"""Column definitions of the research export and the codebook built from them.

The outcome and contact columns are described once, here; the dataset builder uses the same
list for column order and the writers use it for Stata/SPSS variable and value labels. Question
columns take their wording and codes from the survey instruments (surveys/instruments/*.yaml).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from surveys.model import Question, QuestionKind, Survey
from tracker.domain import (
    PATTERN_RULE_TEXT,
    PATTERN_RULE_VERSION,
    AnswerOutcome,
    CheckInState,
    Direction,
    MessageStatus,
    Pattern,
)

# DESIGN section 6: these names and this order are a promise to researchers.
OUTCOME_QUESTION_KEYS = (
    "life_satisfaction",
    "worthwhile",
    "happy",
    "anxious",
    "lonely",
    "gp_visits",
    "community_activity",
    "recontact_requested",
)
WAVES = (0, 6, 12)
BASELINE_STATE = "baseline"
NOT_SCHEDULED_STATE = "not_scheduled"
MESSAGE_PURPOSES = (
    "opening",
    "question",
    "clarification",
    "reminder",
    "closing",
    "crisis",
    "help",
    "neutral",
    "reply",
)


@dataclass(frozen=True)
class Column:
    """One exported column: what it holds and which values it may take."""

    name: str
    type: str  # string | integer | number
    label: str  # short (Stata allows 80 characters)
    description: str = ""
    allowed_values: list[Any] | None = None
    min: int | float | None = None
    max: int | float | None = None
    value_labels: dict[int, str] = field(default_factory=dict)
    question_text: str | None = None
    instrument: str | None = None
    link_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v not in (None, {}, "")}
        if self.value_labels:
            data["value_labels"] = {str(k): v for k, v in self.value_labels.items()}
        return data


def _question_column(q: Question) -> Column:
    low, high = q.value_range()
    allowed: list[Any] | None = None
    if q.kind in (QuestionKind.CHOICE, QuestionKind.YESNO):
        allowed = sorted(q.value_labels())
    labels = q.value_labels()
    if q.kind is QuestionKind.SCALE:
        # Stata/SPSS label every value, so spell the anchors out with their numbers.
        labels = {low: f"{low} {q.anchor_low}", high: f"{high} {q.anchor_high}"}
    return Column(
        name=q.key,
        type="integer",
        label=_short(q.sms_text),
        description=f"{q.kind.value} answer; empty when not answered (or not responded)",
        allowed_values=allowed,
        min=None if allowed else low,
        max=None if allowed else high,
        value_labels=labels,
        question_text=q.text,
        instrument=q.instrument,
        link_id=q.link_id,
    )


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def extra_question_keys(survey: Survey) -> list[str]:
    """Keys of configured questions beyond the core set (e.g. UCLA-3), in asking order."""
    return [q.key for q in survey.questions if q.key not in OUTCOME_QUESTION_KEYS]


def outcome_columns(survey: Survey) -> list[Column]:
    """Every column of outcomes.<ext>, in file order."""
    by_key = {q.key: q for q in survey.questions}
    patterns = [p.value for p in Pattern]
    head = [
        Column(
            "pid",
            "string",
            "Pseudonymous patient id",
            "keyed HMAC-SHA256 of the service's patient reference under a per-study key "
            "(16 hex digits); stable within a study, unlinkable across studies",
        ),
        Column("site", "string", "Service site", "site of the exported episode"),
        Column(
            "pattern",
            "string",
            "Engagement pattern",
            "rapid: quickly connected to external support; anchored: intensive link-worker "
            "support first, then connected; with_only: connected with the link worker but never "
            "to external support. Recorded by the service, or derived by rule "
            f"{PATTERN_RULE_VERSION}: {PATTERN_RULE_TEXT}",
            allowed_values=patterns,
        ),
        Column("sessions", "integer", "Link-worker sessions", min=0),
        Column(
            "age",
            "integer",
            "Age in years at referral (approximate)",
            "referral year minus birth year: only the birth year is stored, so this may be one "
            "year more than the exact age",
            min=0,
            max=120,
        ),
        Column("gender", "string", "Gender as recorded by the service"),
        Column(
            "imd_quintile",
            "integer",
            "IMD quintile (1 most deprived)",
            "Index of Multiple Deprivation quintile of the patient's area",
            allowed_values=[1, 2, 3, 4, 5],
            value_labels={1: "1 most deprived", 5: "5 least deprived"},
        ),
        Column(
            "wave",
            "integer",
            "Months after discharge (0 = baseline)",
            "0 = baseline answers recorded by the service at referral; 6 and 12 = SMS check-ins "
            "that many calendar months after discharge",
            allowed_values=list(WAVES),
            value_labels={0: "baseline", 6: "6 months", 12: "12 months"},
        ),
        Column(
            "responded",
            "integer",
            "Responded at this wave",
            "wave 0: 1 if any baseline answer was recorded; waves 6/12: 1 if at least one "
            "answer was parsed inside the response window (late, skipped and unreadable "
            "replies do not count)",
            allowed_values=[0, 1],
            value_labels={0: "no", 1: "yes"},
        ),
        Column(
            "days_from_due",
            "integer",
            "Days from due date to first answer",
            "calendar days (service time zone) from the check-in's nominal due date "
            "(discharge + wave months) to its first parsed answer; empty at baseline or "
            "without answers",
        ),
    ]
    questions = [
        _question_column(by_key[k]) if k in by_key else _missing(k) for k in OUTCOME_QUESTION_KEYS
    ]
    state = Column(
        "checkin_state",
        "string",
        "Check-in state at export",
        "state of the wave's check-in; 'baseline' at wave 0; 'not_scheduled' when no "
        "check-in exists (e.g. no SMS consent)",
        allowed_values=[BASELINE_STATE, NOT_SCHEDULED_STATE, *[s.value for s in CheckInState]],
    )
    extra = [_question_column(by_key[k]) for k in extra_question_keys(survey)]
    return [*head, *questions, state, *extra]


def _missing(key: str) -> Column:
    """A core column whose instrument is switched off: kept (empty) so the layout never moves."""
    return Column(
        key, "integer", key.replace("_", " "), "instrument not in this deployment's survey"
    )


def contact_columns(*, include_free_text: bool) -> list[Column]:
    """Every column of contacts.<ext>, in file order."""
    columns = [
        Column("pid", "string", "Pseudonymous patient id", "same pid as in outcomes"),
        Column(
            "wave",
            "integer",
            "Check-in wave (months after discharge)",
            "empty for texts outside a check-in (e.g. help or crisis replies)",
            allowed_values=[6, 12],
            value_labels={6: "6 months", 12: "12 months"},
        ),
        Column(
            "direction",
            "string",
            "Direction of the text",
            allowed_values=[d.value for d in Direction],
        ),
        Column(
            "purpose",
            "string",
            "Purpose of the text",
            "opening, question, clarification, reminder, closing, crisis signposting, help, "
            "neutral reply, or reply (inbound)",
            allowed_values=list(MESSAGE_PURPOSES),
        ),
        Column("question_key", "string", "Question asked or answered (outcome column name)"),
        Column("attempt", "integer", "Send attempt number", min=1),
        Column(
            "sent_day",
            "integer",
            "Day sent/received, relative to discharge",
            "calendar days (service time zone) from discharge to when the text was sent "
            "(outbound) or received (inbound); no calendar dates are exported",
        ),
        Column(
            "status",
            "string",
            "Delivery status",
            "last provider status (outbound) or received (inbound)",
            allowed_values=[s.value for s in MessageStatus],
        ),
        Column("error_code", "string", "Provider error code", "e.g. Twilio 30003; empty if none"),
        Column("segments", "integer", "SMS segments billed", min=0),
        Column(
            "reply_delay_hours",
            "number",
            "Hours to the patient's next text",
            "outbound texts only: hours from sending to the patient's next inbound text; "
            "empty if none followed",
            min=0,
        ),
        Column(
            "invalid_replies",
            "integer",
            "Unreadable replies in this check-in",
            "replies in this check-in that could not be read as an answer (each earned a "
            "clarification text or was recorded as invalid); repeated on each row of the "
            "check-in; empty outside a check-in",
            min=0,
        ),
        Column(
            "late",
            "integer",
            "Reply after the response window",
            allowed_values=[0, 1],
            value_labels={0: "no", 1: "yes"},
        ),
    ]
    if include_free_text:
        columns.append(
            Column(
                "body",
                "string",
                "Text of the message (free text)",
                "exported only with --include-free-text; sequences that look like phone "
                "numbers are replaced by [number removed]",
            )
        )
    return columns


# An unreadable reply either earns one clarification text (first failure; ambiguous replies are
# also stored as answers then) or is stored as an `invalid` answer (second failure). Counting
# clarification texts plus invalid answers counts each unreadable reply once.
ANSWER_OUTCOMES_COUNTED_INVALID = (AnswerOutcome.INVALID.value,)


def codebook(
    *,
    study: str,
    created_at: str,
    software_version: str,
    survey: Survey,
    outcomes: list[Column],
    contacts: list[Column],
    row_counts: dict[str, int],
) -> dict[str, Any]:
    """The codebook.json document."""
    outcome_json = [c.as_json() for c in outcomes]
    return {
        "study": study,
        "pattern_rule_version": PATTERN_RULE_VERSION,
        "pattern_rule": PATTERN_RULE_TEXT,
        "created_at": created_at,
        "software_version": software_version,
        "survey_version": survey.version_tag,
        "instruments": [
            {
                "id": inst.id,
                "title": inst.title,
                "version": inst.version,
                "source": inst.source,
                "licence": inst.licence,
            }
            for inst in survey.instruments
        ],
        "notes": [
            "One row per patient and wave (0, 6, 12) in outcomes; every wave is present.",
            "Patients who withdrew from research or whose data were erased are left out.",
            "Patients with several episodes: the earliest discharged episode is exported.",
            "No names, phone numbers or calendar dates: days are counted from discharge.",
        ],
        "row_counts": row_counts,
        "tables": {
            "outcomes": {"columns": outcome_json},
            "contacts": {"columns": [c.as_json() for c in contacts]},
        },
        "columns": outcome_json,
    }


CSV_FIELDS = (
    "table",
    "name",
    "type",
    "label",
    "description",
    "allowed_values",
    "min",
    "max",
    "value_labels",
    "question_text",
    "instrument",
    "link_id",
)


def write_codebook(folder: Path, document: dict[str, Any]) -> list[Path]:
    """Write codebook.json and codebook.csv (one row per column of each table)."""
    json_path = folder / "codebook.json"
    json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    csv_path = folder / "codebook.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for table, spec in document["tables"].items():
            for col in spec["columns"]:
                writer.writerow(
                    [
                        table,
                        col["name"],
                        col["type"],
                        col.get("label", ""),
                        col.get("description", ""),
                        "|".join(str(v) for v in col.get("allowed_values", [])),
                        col.get("min", ""),
                        col.get("max", ""),
                        "|".join(f"{k}={v}" for k, v in col.get("value_labels", {}).items()),
                        col.get("question_text", ""),
                        col.get("instrument", ""),
                        col.get("link_id", ""),
                    ]
                )
    return [json_path, csv_path]
