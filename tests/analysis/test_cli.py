import json

import typer
from typer.testing import CliRunner

from analysis.cli import app as analyse_app
from tests.analysis.conftest import write_export


def _root() -> typer.Typer:
    # Mounted as the integrator does: tracker analyse ...
    root = typer.Typer()

    @root.callback()
    def _cb() -> None:
        """root"""

    root.add_typer(analyse_app, name="analyse")
    return root


def test_analyse_path_out_dir_runs_the_default_command(tmp_path, small_cohort):
    folder = write_export(tmp_path / "export", small_cohort)
    result = CliRunner().invoke(
        _root(), ["analyse", str(folder), "--out", str(tmp_path / "r"), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "analysed 400 patients" in result.output
    assert (tmp_path / "r" / "report.html").exists()


def test_explicit_run_and_no_suppression(tmp_path, small_cohort):
    folder = write_export(tmp_path / "export", small_cohort)
    result = CliRunner().invoke(
        _root(),
        [
            "analyse",
            "run",
            str(folder),
            "--out",
            str(tmp_path / "r"),
            "--no-suppression",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "suppression is OFF" in (tmp_path / "r" / "report.html").read_text()


def test_input_errors_exit_non_zero_with_the_message(tmp_path):
    bad = tmp_path / "outcomes.csv"
    bad.write_text("pid,site\n1,a\n")
    result = CliRunner().invoke(_root(), ["analyse", str(bad), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "missing columns pattern, sessions" in result.output


def test_power_subcommand_json():
    result = CliRunner().invoke(
        _root(), ["analyse", "power", "--patients", "200", "--sims", "10", "--seed", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["n_patients"] == 200 and payload["sims"] == 10
    assert 0.0 <= payload["power"] <= 1.0


def test_help_lists_both_commands():
    result = CliRunner().invoke(_root(), ["analyse", "--help"])
    assert result.exit_code == 0
    assert "run" in result.output and "power" in result.output
