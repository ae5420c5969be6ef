"""Settings, read from the environment on demand (never at import).

Variables: `TRACKER_*` for the service, `TWILIO_*` for the provider. Any secret can instead be
given as a path in `<NAME>_FILE` (Docker/systemd credentials), e.g. `TRACKER_SECRET_KEY_FILE`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_DATABASE_URL = "sqlite:///tracker.db"
DEFAULT_KEY_FILE = "tracker.key"

# Variables that may be given as `<NAME>_FILE` instead (read, stripped of surrounding space).
FILE_VARIABLES = (
    "TRACKER_SECRET_KEY",
    "TRACKER_DATABASE_URL",
    "TRACKER_SESSION_SECRET",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
)

WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


_ENVIRONMENT: ContextVar[Mapping[str, str] | None] = ContextVar("tracker_env", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """Reads variables from the mapping handed to `load_settings`, not from os.environ."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        mapping = _ENVIRONMENT.get()
        if mapping is None:
            return super()._load_env_vars()
        return {key.lower(): value for key, value in mapping.items()}


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variable to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACKER_", extra="ignore", frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
    sms_backend: Literal["simulator", "twilio"] = "simulator"
    secret_key: SecretStr | None = None
    public_url: str | None = None
    service_name: str = "your social prescribing service"
    service_contact: str = "your GP practice"
    timezone: str = "Europe/London"
    # Send window: weekdays (e.g. "mon-fri" or "mon,tue,wed") and local start/end times.
    send_days: str = "mon-fri"
    send_start: time = time(8, 0)
    send_end: time = time(18, 0)
    waves_months: list[int] = Field(default_factory=lambda: [6, 12])
    response_window_days: int = Field(default=28, ge=1, le=120)
    reminder_days: list[int] = Field(default_factory=lambda: [3, 7])
    max_reminders: int = Field(default=2, ge=0, le=5)
    instruments: list[str] = Field(
        default_factory=lambda: ["ons4", "loneliness_direct", "gp_visits", "community", "recontact"]
    )
    texts_file: Path | None = None
    # Where dashboard/API exports are written (default: `exports/` beside the SQLite file,
    # else in the working directory).
    exports_dir: Path | None = None
    send_rate_per_second: float = Field(default=5.0, gt=0)
    worker_interval_seconds: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=200, ge=1, le=10_000)
    retry_base_seconds: float = Field(default=60.0, gt=0)
    retry_max_attempts: int = Field(default=6, ge=0)
    risk_alert_target_hours: float = Field(default=4.0, gt=0)
    other_alert_target_hours: float = Field(default=72.0, gt=0)
    session_secret: SecretStr | None = None
    cookie_secure: bool = True
    log_level: str = "WARNING"

    twilio_account_sid: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID")
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN")
    )
    twilio_from_number: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_FROM_NUMBER")
    )
    twilio_messaging_service_sid: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_MESSAGING_SERVICE_SID")
    )
    twilio_api_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_API_BASE_URL")
    )
    twilio_timeout_seconds: float = Field(default=10.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _MappingEnvSource(settings_cls))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use e.g. Europe/London)") from exc
        return value

    @field_validator("send_days")
    @classmethod
    def _known_days(cls, value: str) -> str:
        parse_weekdays(value)
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def weekdays(self) -> frozenset[int]:
        return parse_weekdays(self.send_days)

    @property
    def is_embedded_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for PostgreSQL / in-memory."""
        prefix = "sqlite:///"
        if not self.database_url.startswith(prefix):
            return None
        raw = self.database_url[len(prefix) :].split("?")[0]
        return None if raw in ("", ":memory:") else Path(raw)

    @property
    def default_key_path(self) -> Path:
        """Where `tracker init` keeps the generated key on the embedded default."""
        db = self.sqlite_path
        return (db.parent if db is not None else Path(".")) / DEFAULT_KEY_FILE


def parse_weekdays(spec: str) -> frozenset[int]:
    """'mon-fri' or 'mon,wed,fri' -> weekday numbers (Monday = 0)."""
    days: set[int] = set()
    for part in spec.lower().replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            first, last = part.split("-", 1)
            if first not in WEEKDAYS or last not in WEEKDAYS:
                raise ValueError(f"unknown weekday range {part!r} (use e.g. mon-fri)")
            start, end = WEEKDAYS[first], WEEKDAYS[last]
            days.update(
                range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)]
            )
        elif part in WEEKDAYS:
            days.add(WEEKDAYS[part])
        else:
            raise ValueError(f"unknown weekday {part!r} (use mon, tue, wed, thu, fri, sat, sun)")
    if not days:
        raise ValueError("the send window needs at least one weekday")
    return frozenset(days)


def _resolve_file_variables(env: Mapping[str, str]) -> dict[str, str]:
    resolved = dict(env)
    for name in FILE_VARIABLES:
        path = env.get(f"{name}_FILE")
        if path and not env.get(name):
            try:
                resolved[name] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{name}_FILE={path} cannot be read: {exc.strerror}") from exc
    return resolved


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from `env` (default: the process environment) plus explicit overrides."""
    source = _resolve_file_variables(os.environ if env is None else env)
    relevant = {
        k: v for k, v in source.items() if k.startswith("TRACKER_") or k.startswith("TWILIO_")
    }
    token = _ENVIRONMENT.set(relevant)
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    finally:
        _ENVIRONMENT.reset(token)
    check_consistency(settings)
    return settings


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "?"
        variable = field.upper() if field.startswith("TWILIO_") else f"TRACKER_{field.upper()}"
        lines.append(f"{variable}: {err['msg']}")
    return "invalid configuration: " + "; ".join(lines)


def check_consistency(settings: Settings) -> None:
    """Combinations that cannot work; each message names what to set."""
    if settings.sms_backend == "twilio":
        missing = [
            name
            for name, value in (
                ("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
                ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
                ("TRACKER_PUBLIC_URL", settings.public_url),
            )
            if not value
        ]
        if not (settings.twilio_from_number or settings.twilio_messaging_service_sid):
            missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        if missing:
            raise ConfigError(
                "TRACKER_SMS_BACKEND=twilio needs " + ", ".join(missing) + " to be set"
                " (secrets may be given as *_FILE paths)"
            )
    if settings.send_start >= settings.send_end:
        raise ConfigError("TRACKER_SEND_START must be earlier than TRACKER_SEND_END")
    if sorted(settings.reminder_days) != list(settings.reminder_days) or any(
        d <= 0 or d >= settings.response_window_days for d in settings.reminder_days
    ):
        raise ConfigError(
            "TRACKER_REMINDER_DAYS must be increasing whole days inside the response window,"
            " e.g. [3, 7]"
        )
    if not settings.waves_months or any(m <= 0 for m in settings.waves_months):
        raise ConfigError("TRACKER_WAVES_MONTHS must list positive month offsets, e.g. [6, 12]")
