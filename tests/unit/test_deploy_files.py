"""What can be checked of deploy/ without a container engine or systemd on this machine.

- compose.yaml parses, and each tracker service's environment (after `${VAR:-default}`
  substitution and with its secret files in place) loads into valid production Settings;
- env.example names every Settings field's variable (and the `_FILE` variants of secrets), and
  loads as written;
- the commands run by compose and the systemd units are real `tracker` commands whose options
  parse, and are the same commands the README documents.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main
import yaml

from tracker.cli import app as cli_app
from tracker.config import FILE_VARIABLES, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TRACKER_SERVICES = ("init", "web", "worker")
UNITS = ("tracker-init.service", "tracker-web.service", "tracker-worker.service")
TEST_KEY = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC0="


def setting_variables() -> set[str]:
    """The environment variable behind every Settings field."""
    names = set()
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = getattr(alias, "choices", None)
        names.add(str(choices[0]) if choices else f"TRACKER_{name.upper()}")
    return names


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


_SUBST = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` substitution."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if op == "?":
            raise KeyError(f"compose requires {name}: {arg}")
        return arg or ""

    return _SUBST.sub(one, value)


def secret_files(tmp_path: Path) -> dict[str, Path]:
    contents = {
        "database_url": "sqlite:///" + str(tmp_path / "t.db"),
        "postgres_password": "pw",
        "tracker_secret_key": TEST_KEY,
        "session_secret": "s" * 40,
        "twilio_auth_token": "token",
    }
    files = {}
    for name, text in contents.items():
        path = tmp_path / name
        path.write_text(text + "\n", encoding="utf-8")
        files[name] = path
    return files


def service_environment(service: dict, dotenv: dict[str, str], tmp_path: Path) -> dict[str, str]:
    files = secret_files(tmp_path)
    env = {}
    for key, value in service["environment"].items():
        text = interpolate(str(value), dotenv)
        if text.startswith("/run/secrets/"):
            text = str(files[text.removeprefix("/run/secrets/")])
        env[key] = text
    return env


def test_compose_has_database_init_web_and_worker_with_health_checks() -> None:
    doc = compose()
    services = doc["services"]
    assert set(services) >= {"db", *TRACKER_SERVICES}
    assert services["db"]["image"].startswith("postgres:")
    assert "healthcheck" in services["db"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["init"]["command"] == ["tracker", "init"]
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["init"]["condition"] == (
            "service_completed_successfully"
        ), f"{name} must wait for the migrations"
    assert services["init"]["depends_on"]["db"]["condition"] == "service_healthy"
    images = {services[name]["image"] for name in TRACKER_SERVICES}
    assert len(images) == 1, "init, web and worker run the same image"
    for name in TRACKER_SERVICES:
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / services[name]["build"]["context"] / "pyproject.toml").exists()
        for secret in services[name]["secrets"]:
            assert secret in doc["secrets"], f"{name} uses undeclared secret {secret}"


def test_compose_requires_the_settings_a_production_deployment_needs(tmp_path: Path) -> None:
    services = compose()["services"]
    for name in TRACKER_SERVICES:
        with pytest.raises(KeyError, match="TRACKER_PUBLIC_URL"):
            service_environment(services[name], {}, tmp_path)


@pytest.mark.parametrize("service", TRACKER_SERVICES)
def test_compose_environment_loads_into_valid_twilio_settings(service: str, tmp_path: Path) -> None:
    dotenv = {
        "TRACKER_PUBLIC_URL": "https://followup.example.org",
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_FROM_NUMBER": "+447700900123",
    }
    env = service_environment(compose()["services"][service], dotenv, tmp_path)
    # Every key is a variable the settings read (directly or as a *_FILE secret).
    known = setting_variables() | {f"{v}_FILE" for v in FILE_VARIABLES} | {"FORWARDED_ALLOW_IPS"}
    assert set(env) <= known, set(env) - known
    settings = load_settings(env)  # runs check_consistency: twilio needs SID, token, URL, sender
    assert settings.sms_backend == "twilio"
    assert settings.secret_key is not None and settings.secret_key.get_secret_value() == TEST_KEY
    assert settings.session_secret is not None
    assert settings.twilio_auth_token is not None
    assert settings.public_url == "https://followup.example.org"
    assert settings.database_url.startswith("sqlite:///")  # from the secret file


def parse_env_file(path: Path) -> tuple[dict[str, str], set[str]]:
    """(active assignments, every variable named, including commented-out ones)."""
    active: dict[str, str] = {}
    named: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*(#\s*)?((?:TRACKER|TWILIO)_[A-Z0-9_]+)=(.*)$", line)
        if not match:
            continue
        named.add(match.group(2))
        if match.group(1) is None:
            active[match.group(2)] = match.group(3)
    return active, named


def test_env_example_names_every_settings_variable() -> None:
    _, named = parse_env_file(DEPLOY / "env.example")
    missing = setting_variables() - named
    assert not missing, f"deploy/env.example does not mention {sorted(missing)}"
    missing_files = {f"{v}_FILE" for v in FILE_VARIABLES} - named
    assert not missing_files, f"deploy/env.example does not mention {sorted(missing_files)}"
    unknown = named - setting_variables() - {f"{v}_FILE" for v in FILE_VARIABLES}
    assert not unknown, f"deploy/env.example names variables nobody reads: {sorted(unknown)}"


def test_env_example_loads_as_written(tmp_path: Path) -> None:
    active, _ = parse_env_file(DEPLOY / "env.example")
    files = secret_files(tmp_path)
    by_name = {
        "TRACKER_SECRET_KEY_FILE": files["tracker_secret_key"],
        "TRACKER_SESSION_SECRET_FILE": files["session_secret"],
        "TWILIO_AUTH_TOKEN_FILE": files["twilio_auth_token"],
    }
    env = {k: str(by_name.get(k, v)) for k, v in active.items()}
    settings = load_settings(env)
    assert settings.sms_backend == "twilio"
    assert settings.waves_months == [6, 12]
    assert settings.reminder_days == [3, 7]


def unit_commands() -> dict[str, list[str]]:
    commands = {}
    for unit in UNITS:
        text = (DEPLOY / "systemd" / unit).read_text(encoding="utf-8")
        lines = [line for line in text.splitlines() if line.startswith("ExecStart=")]
        assert len(lines) == 1, f"{unit} needs exactly one ExecStart"
        argv = shlex.split(lines[0].removeprefix("ExecStart="))
        assert argv[0].endswith("/tracker"), argv
        commands[unit] = ["tracker", *argv[1:]]
    return commands


def check_cli_accepts(argv: list[str]) -> None:
    """The command exists in the Typer app and its options parse (nothing is run)."""
    root = typer.main.get_command(cli_app)
    name, *args = argv[1:]
    command = root.commands.get(name)  # type: ignore[attr-defined]
    if command is None:
        pytest.skip(f"`tracker {name}` is not registered yet")
    command.make_context(name, list(args))


def test_systemd_units_run_the_commands_the_readme_documents() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for unit, argv in unit_commands().items():
        text = " ".join(argv)
        assert text in readme, f"README.md should document `{text}` (run by {unit})"


def test_systemd_units_load_secrets_as_credentials_and_order_after_init() -> None:
    for unit in UNITS:
        text = (DEPLOY / "systemd" / unit).read_text(encoding="utf-8")
        assert "EnvironmentFile=/etc/tracker/tracker.env" in text
        assert "TRACKER_SECRET_KEY_FILE=%d/secret_key" in text
        assert "User=tracker" in text
        if unit != "tracker-init.service":
            assert "Requires=tracker-init.service" in text
            assert "Restart=on-failure" in text


@pytest.mark.parametrize(
    "argv",
    [
        *unit_commands().values(),
        *(compose()["services"][name]["command"] for name in TRACKER_SERVICES),
    ],
    ids=lambda argv: " ".join(argv),
)
def test_deployed_commands_are_real_cli_commands(argv: list[str]) -> None:
    check_cli_accepts(argv)


def test_dockerfile_runs_the_web_app_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11", text, re.M)
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert re.search(r"^USER tracker", text, re.M), "the image must not run as root"
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd is not None
    web = compose()["services"]["web"]["command"]
    assert yaml.safe_load(cmd.group(1)) == web
