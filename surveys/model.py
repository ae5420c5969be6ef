"""Survey instruments as data: Instrument, Question, Choice and an assembled Survey.

An instrument is one YAML file under ``surveys/instruments/`` (see ``surveys.catalogue``);
these models validate it. A question's ``key`` is the export column name (DESIGN section 6),
its ``link_id`` the stable FHIR ``linkId``. Values are always integers: a scale or count is the
number itself, a choice its ``value`` code, a yes/no question 1 (yes) or 0 (no).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from surveys.gsm import gsm7_offenders

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")

YES = 1
NO = 0


class QuestionKind(StrEnum):
    """How a question is answered and coded."""

    SCALE = "scale"  # integer min..max with a low and a high anchor (ONS4 0-10)
    CHOICE = "choice"  # one of a few coded options (ONS direct loneliness, UCLA-3)
    COUNT = "count"  # a whole number of events (GP contacts)
    YESNO = "yesno"  # 1 yes, 0 no


class Choice(BaseModel):
    """One option of a choice question: its code, its label, and other words people use for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: int
    label: str
    synonyms: list[str] = Field(default_factory=list)


class Question(BaseModel):
    """One question: official wording for the codebook, short wording for the SMS."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(description="export column name, e.g. life_satisfaction")
    link_id: str = Field(description="stable FHIR Questionnaire.item.linkId")
    kind: QuestionKind
    text: str = Field(description="official wording, as published")
    sms_text: str = Field(description="short SMS wording, GSM-7 only")
    instrument: str = Field(default="", description="id of the instrument it belongs to")
    min: int | None = None
    max: int | None = None
    anchor_low: str | None = None
    anchor_high: str | None = None
    choices: list[Choice] = Field(default_factory=list)
    reply_hint: str | None = Field(
        default=None, description="overrides the generated 'Reply ...' hint (GSM-7 only)"
    )

    @model_validator(mode="after")
    def _check_shape(self) -> Question:
        if not _KEY.match(self.key):
            raise ValueError(f"question key {self.key!r}: use lower_case_with_underscores")
        for name in ("sms_text", "reply_hint"):
            bad = gsm7_offenders(getattr(self, name) or "")
            if bad:
                raise ValueError(
                    f"question {self.key}: {name} has characters outside GSM-7 {bad!r}; "
                    "use plain quotes and letters so the text stays one SMS"
                )
        kind = self.kind
        if kind in (QuestionKind.SCALE, QuestionKind.COUNT):
            if self.min is None or self.max is None or self.min >= self.max:
                raise ValueError(f"question {self.key}: {kind} needs min < max")
        if kind is QuestionKind.SCALE and not (self.anchor_low and self.anchor_high):
            raise ValueError(f"question {self.key}: a scale needs anchor_low and anchor_high")
        if kind is QuestionKind.CHOICE:
            values = [c.value for c in self.choices]
            if len(values) < 2 or len(set(values)) != len(values):
                raise ValueError(f"question {self.key}: a choice needs 2+ options, unique values")
        elif self.choices:
            raise ValueError(f"question {self.key}: only choice questions have choices")
        return self

    def value_range(self) -> tuple[int, int]:
        """Smallest and largest valid value."""
        if self.kind is QuestionKind.YESNO:
            return (NO, YES)
        if self.kind is QuestionKind.CHOICE:
            values = [c.value for c in self.choices]
            return (min(values), max(values))
        assert self.min is not None and self.max is not None
        return (self.min, self.max)

    def is_valid_value(self, value: int) -> bool:
        """True when ``value`` is a codable answer to this question."""
        if self.kind is QuestionKind.CHOICE:
            return any(c.value == value for c in self.choices)
        low, high = self.value_range()
        return low <= value <= high

    def value_labels(self) -> dict[int, str]:
        """Labels for codebooks: anchors of a scale, option labels, or yes/no."""
        if self.kind is QuestionKind.CHOICE:
            return {c.value: c.label for c in self.choices}
        if self.kind is QuestionKind.YESNO:
            return {YES: "yes", NO: "no"}
        if self.kind is QuestionKind.SCALE:
            assert self.min is not None and self.max is not None
            return {self.min: self.anchor_low or "", self.max: self.anchor_high or ""}
        return {}


class Instrument(BaseModel):
    """A published measure (or a local item) held in one data file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str
    version: str
    source: str = Field(description="where the wording comes from")
    licence: str = Field(description="terms of use, e.g. Crown copyright, free to reuse")
    questions: list[Question]

    @model_validator(mode="before")
    @classmethod
    def _tag_questions(cls, data: Any) -> Any:
        # Each question records its instrument so a Survey can be traced back to its files.
        if isinstance(data, dict) and isinstance(data.get("questions"), list):
            tagged = []
            for q in data["questions"]:
                if isinstance(q, dict):
                    q = {**q, "instrument": data.get("id", "")}
                tagged.append(q)
            data = {**data, "questions": tagged}
        return data

    @model_validator(mode="after")
    def _check_unique_keys(self) -> Instrument:
        if not self.questions:
            raise ValueError(f"instrument {self.id}: has no questions")
        keys = [q.key for q in self.questions]
        if len(set(keys)) != len(keys):
            raise ValueError(f"instrument {self.id}: question keys repeat")
        return self


class Survey(BaseModel):
    """The ordered questions of one check-in, assembled from instrument ids."""

    model_config = ConfigDict(frozen=True)

    instruments: list[Instrument]

    @property
    def questions(self) -> list[Question]:
        """Every question in asking order."""
        return [q for inst in self.instruments for q in inst.questions]

    @property
    def instrument_ids(self) -> list[str]:
        return [inst.id for inst in self.instruments]

    @property
    def version_tag(self) -> str:
        """e.g. ``ons4@2024.1+gp_visits@1``: store it with a check-in to know what was asked."""
        return "+".join(f"{inst.id}@{inst.version}" for inst in self.instruments)

    def __len__(self) -> int:
        return sum(len(inst.questions) for inst in self.instruments)

    def question(self, index: int) -> Question:
        """The question at 0-based ``index`` (IndexError past the end)."""
        if index < 0:
            raise IndexError(index)
        return self.questions[index]

    def index_of(self, key: str) -> int:
        """0-based position of the question with export column ``key`` (KeyError if absent)."""
        for i, q in enumerate(self.questions):
            if q.key == key:
                return i
        raise KeyError(key)

    @model_validator(mode="after")
    def _check_unique_keys(self) -> Survey:
        keys = [q.key for q in self.questions]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"survey asks {dupes} twice; pick instruments with distinct keys")
        return self
