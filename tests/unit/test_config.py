"""Settings: environment names, *_FILE secrets, defaults, and messages that name the variable."""

from __future__ import annotations

import os
from datetime import time
from pathlib import Path

import pytest

from tracker.config import (
    DEFAULT_DATABASE_URL,
    ConfigError,
    load_settings,
    parse_weekdays,
)


def test_defaults_are_the_embedded_setup() -> None:
    settings = load_settings({})
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///tracker.db"
    assert settings.sms_backend == "simulator"
    assert settings.timezone == "Europe/London"
    assert settings.weekdays == frozenset({0, 1, 2, 3, 4})
    assert (settings.send_start, settings.send_end) == (time(8), time(18))
    assert settings.waves_months == [6, 12]
    assert settings.response_window_days == 28
    assert settings.is_embedded_sqlite
    assert settings.sqlite_path == Path("tracker.db")
    assert settings.default_key_path == Path("tracker.key")


def test_environment_variables_are_read(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "TRACKER_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
            "TRACKER_SEND_DAYS": "mon,wed,fri",
            "TRACKER_SEND_START": "09:00",
            "TRACKER_WAVES_MONTHS": "[3, 6, 12]",
            "TRACKER_RESPONSE_WINDOW_DAYS": "21",
            "UNRELATED": "ignored",
        }
    )
    assert settings.weekdays == frozenset({0, 2, 4})
    assert settings.send_start == time(9)
    assert settings.waves_months == [3, 6, 12]
    assert settings.response_window_days == 21
    assert settings.default_key_path == tmp_path / "tracker.key"


def test_loading_reads_the_process_environment_only_when_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACKER_SERVICE_NAME", "Riverside Link Workers")
    assert load_settings().service_name == "Riverside Link Workers"
    monkeypatch.delenv("TRACKER_SERVICE_NAME")
    assert load_settings().service_name != "Riverside Link Workers"
    assert "TRACKER_SERVICE_NAME" not in os.environ


def test_explicit_overrides_win() -> None:
    settings = load_settings({"TRACKER_TIMEZONE": "Europe/Dublin"}, timezone="Europe/London")
    assert settings.timezone == "Europe/London"


def test_secret_file_variables(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("  c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==\n")
    settings = load_settings({"TRACKER_SECRET_KEY_FILE": str(key)})
    assert settings.secret_key is not None
    assert (
        settings.secret_key.get_secret_value() == "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
    )
    assert "c2Vj" not in repr(settings)  # secrets never print


def test_unreadable_secret_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TRACKER_SECRET_KEY_FILE=.*cannot be read"):
        load_settings({"TRACKER_SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_twilio_without_credentials_names_what_to_set() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"TRACKER_SMS_BACKEND": "twilio"})
    message = str(info.value)
    for name in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TRACKER_PUBLIC_URL",
        "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID",
    ):
        assert name in message


def test_twilio_with_credentials_loads(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret-token")
    settings = load_settings(
        {
            "TRACKER_SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": "AC123",
            "TWILIO_AUTH_TOKEN_FILE": str(token),
            "TWILIO_MESSAGING_SERVICE_SID": "MG123",
            "TRACKER_PUBLIC_URL": "https://tracker.example.org",
        }
    )
    assert settings.twilio_auth_token is not None
    assert settings.twilio_auth_token.get_secret_value() == "secret-token"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"TRACKER_TIMEZONE": "Mars/Olympus"}, "TRACKER_TIMEZONE"),
        ({"TRACKER_SEND_DAYS": "weekdays"}, "TRACKER_SEND_DAYS"),
        ({"TRACKER_SMS_BACKEND": "pigeon"}, "TRACKER_SMS_BACKEND"),
        ({"TRACKER_RESPONSE_WINDOW_DAYS": "0"}, "TRACKER_RESPONSE_WINDOW_DAYS"),
        ({"TRACKER_SEND_START": "19:00"}, "TRACKER_SEND_START"),
        ({"TRACKER_REMINDER_DAYS": "[7, 3]"}, "TRACKER_REMINDER_DAYS"),
        ({"TRACKER_REMINDER_DAYS": "[3, 40]"}, "TRACKER_REMINDER_DAYS"),
        ({"TRACKER_WAVES_MONTHS": "[]"}, "TRACKER_WAVES_MONTHS"),
        ({"TRACKER_WAVES_MONTHS": "[0, 6]"}, "TRACKER_WAVES_MONTHS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(env)


@pytest.mark.parametrize(
    ("spec", "days"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("Mon-Sat", {0, 1, 2, 3, 4, 5}),
        ("sat,sun", {5, 6}),
        ("fri-mon", {4, 5, 6, 0}),
        ("mon, wed ,fri", {0, 2, 4}),
    ],
)
def test_parse_weekdays(spec: str, days: set[int]) -> None:
    assert parse_weekdays(spec) == frozenset(days)


@pytest.mark.parametrize("spec", ["", "mon-xyz", "funday", ","])
def test_parse_weekdays_rejects_nonsense(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_weekdays(spec)
