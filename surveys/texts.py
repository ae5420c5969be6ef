"""Service texts (opening, closing, help, crisis, ...) as data a deployment can override.

Defaults live in ``surveys/texts_default.yaml``, where a non-programmer can review them. A
deployment passes its own YAML file with only the keys it changes (``load_service_texts``).
Loading checks every text: GSM-7 characters only, and only the placeholders that text offers,
so a typo fails at start-up, not in a patient's text.
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from surveys.gsm import gsm7_offenders
from surveys.parse import ClarifyReason

DEFAULTS_PATH = Path(__file__).with_name("texts_default.yaml")

_COMMON = {"service_name", "contact_details"}
_PLACEHOLDERS: dict[str, set[str]] = {
    "service_name": set(),
    "contact_details": set(),
    "opening": _COMMON | {"question_count", "months"},
    "closing": _COMMON,
    "reminder": _COMMON | {"question"},
    "help": _COMMON,
    "crisis": _COMMON,
    "unknown_sender": set(),  # neutral on purpose: not even the service name
    "late_reply": _COMMON,
    "scale_hint": {"min", "max", "low", "high"},
    "count_hint": {"min", "max"},
    "yesno_hint": set(),
    "choice_hint": {"options"},
    "choice_option": {"value", "label"},
}
_CLARIFICATION_PLACEHOLDERS = _COMMON | {"hint"}
# Safety and compliance words a deployment's rewording must keep (DESIGN section 5).
_MUST_MENTION: dict[str, tuple[str, ...]] = {
    "opening": ("STOP", "999"),
    "help": ("STOP", "999"),
    "crisis": ("999", "111", "116 123", "85258"),
    "unknown_sender": ("999",),
}


class ServiceTextsError(ValueError):
    """A service texts file is missing, malformed, or a text breaks a rule."""


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _check(name: str, template: str, allowed: set[str]) -> None:
    bad = gsm7_offenders(template)
    if bad:
        raise ValueError(
            f"text {name!r} has characters outside GSM-7 {bad!r}: use straight quotes, "
            "plain dashes and no emoji"
        )
    try:
        used = _placeholders(template)
    except ValueError as exc:
        raise ValueError(f"text {name!r}: unbalanced braces ({exc})") from exc
    unknown = used - allowed
    if unknown:
        raise ValueError(
            f"text {name!r} uses unknown placeholders {sorted(unknown)}; "
            f"available: {sorted(allowed) or 'none'}"
        )


class ServiceTexts(BaseModel):
    """All fixed wording; field names match the keys of ``texts_default.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_name: str
    contact_details: str
    opening: str
    closing: str
    reminder: str
    help: str
    crisis: str
    unknown_sender: str
    late_reply: str
    scale_hint: str
    count_hint: str
    yesno_hint: str
    choice_hint: str
    choice_option: str
    clarification: dict[ClarifyReason, str]

    @model_validator(mode="after")
    def _check_texts(self) -> ServiceTexts:
        for name, allowed in _PLACEHOLDERS.items():
            _check(name, getattr(self, name), allowed)
        for name, words in _MUST_MENTION.items():
            absent = [w for w in words if w not in getattr(self, name)]
            if absent:
                raise ValueError(f"text {name!r} must mention {', '.join(absent)}")
        missing = set(ClarifyReason) - set(self.clarification)
        if missing:
            raise ValueError(f"clarification texts missing for {sorted(missing)}")
        for reason, template in self.clarification.items():
            _check(f"clarification.{reason}", template, _CLARIFICATION_PLACEHOLDERS)
        return self

    def fill(self, template: str, **values: Any) -> str:
        """Format ``template`` with the common placeholders plus ``values``."""
        return template.format(
            service_name=self.service_name, contact_details=self.contact_details, **values
        )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ServiceTextsError(f"cannot read service texts {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ServiceTextsError(f"{path}: not valid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ServiceTextsError(f"{path}: expected a mapping of text names to texts")
    return data


@lru_cache(maxsize=1)
def default_service_texts() -> ServiceTexts:
    """The packaged default wording."""
    return ServiceTexts.model_validate(_read_yaml(DEFAULTS_PATH))


def load_service_texts(path: Path | str | None = None) -> ServiceTexts:
    """Defaults overlaid with a deployment's YAML file (only the keys it sets change)."""
    if path is None:
        return default_service_texts()
    path = Path(path)
    merged = _read_yaml(DEFAULTS_PATH)
    override = _read_yaml(path)
    unknown = set(override) - set(ServiceTexts.model_fields)
    if unknown:
        raise ServiceTextsError(
            f"{path}: unknown text names {sorted(unknown)}; "
            f"known: {', '.join(ServiceTexts.model_fields)}"
        )
    if isinstance(override.get("clarification"), dict):
        override["clarification"] = {**merged["clarification"], **override["clarification"]}
    merged.update(override)
    try:
        return ServiceTexts.model_validate(merged)
    except ValidationError as exc:
        raise ServiceTextsError(f"{path}: {exc}") from exc
