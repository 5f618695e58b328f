"""`mailbridge config check` and `config show`, run through the real command line."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailbridge.cli import app
from mailbridge.config import check_settings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "config" / "mailbridge.example.toml"
EXAMPLE_DIRECTORY = REPO / "config" / "directory.example.toml"


@pytest.fixture(autouse=True)
def no_developer_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own MAILBRIDGE_* variables must not leak into the command under test."""
    for name in [n for n in os.environ if n.startswith("MAILBRIDGE_")]:
        monkeypatch.delenv(name)


def run(*args: str, **env: str):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **env})
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def write(tmp_path: Path, text: str, name: str = "mailbridge.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ----- config check --------------------------------------------------------------------------


def test_check_passes_the_example_config_and_directory() -> None:
    result = run(
        "--config",
        str(EXAMPLE_CONFIG),
        "config",
        "check",
        MAILBRIDGE_DIRECTORY=str(EXAMPLE_DIRECTORY),
    )

    assert result.exit_code == 0, result.stdout
    assert result.stdout == "ok: settings and directory are valid\n"


def test_check_reads_the_file_named_by_mailbridge_config(tmp_path: Path) -> None:
    path = write(tmp_path, '[references]\nprefix = "lower"\n')

    result = run("config", "check", MAILBRIDGE_CONFIG=str(path))

    assert result.exit_code == 1
    assert f"{path}: references.prefix: error: " in result.stdout


def test_check_names_every_problem_and_exits_non_zero(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [mailbox]
        address = "not an address"
        colour = "blue"
        [source]
        url = "pop3://mail.example.gov.uk"
        batch_size = "lots"
        [clock]
        cutoff = "5pm"
        closure_days = ["Boxing Day"]
        [directory]
        file = "nowhere/directory.toml"
        [printer]
    """.replace("        ", ""),
    )

    result = run("--config", str(path), "config", "check")

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    for key in (
        "mailbox.address",
        "mailbox.colour",
        "source.url",
        "source.batch_size",
        "clock.cutoff",
        "clock.closure_days[0]",
        "directory.file",
        "printer",
    ):
        assert any(line.startswith(f"{path}: {key}: error: ") for line in lines), key
    assert lines[-1] == "8 errors, 0 warnings"


def test_check_reports_an_environment_override_against_its_variable(tmp_path: Path) -> None:
    result = run(
        "config", "check", MAILBRIDGE_OUTBOX="smtps://", MAILBRIDGE_DIRECTORY=str(EXAMPLE_DIRECTORY)
    )

    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "env MAILBRIDGE_OUTBOX: outbox.url: error: smtps URL needs a host, "
        "e.g. smtps://user@mail.example.org",
        "1 error, 0 warnings",
    ]


def test_check_reports_the_directory_problems_with_their_entries(tmp_path: Path) -> None:
    directory = write(
        tmp_path,
        """
[[officers]]
id = "o-singh"
addresses = ["harpreet.singh@council.example.gov.uk"]
manager = "o-gone"
shoe_size = 9
""",
        "directory.toml",
    )

    result = run("config", "check", MAILBRIDGE_DIRECTORY=str(directory))

    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{directory}: officers[o-singh].shoe_size: error: unknown field "
        "(known: id, name, addresses, delivery_unit, manager, deputy, active, absent_until)",
        f"{directory}: officers[o-singh].manager: error: unknown officer 'o-gone'",
        "2 errors, 0 warnings",
    ]


def test_check_with_only_warnings_exits_zero() -> None:
    result = run("config", "check")  # no file, no directory: the defaults, with a warning

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("defaults: directory.file: warning: ")
    assert lines[-1] == "0 errors, 1 warning"


@pytest.mark.parametrize("content", [b"[mailbox\naddress = ", b"\xff\xfe\x00", b"x = [1,"])
def test_check_of_a_broken_file_is_a_message_never_a_traceback(tmp_path: Path, content) -> None:
    path = tmp_path / "mailbridge.toml"
    path.write_bytes(content)

    result = run("--config", str(path), "config", "check")

    assert result.exit_code == 1
    assert result.stdout.startswith(f"{path}: -: error: not valid TOML")


def test_check_of_a_missing_file_or_a_folder_is_a_message(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.toml", tmp_path):
        result = run("--config", str(path), "config", "check")
        assert result.exit_code == 1
        assert result.stdout.startswith(f"{path}: -: error: ")


def test_check_of_a_broken_directory_file_is_a_message(tmp_path: Path) -> None:
    directory = write(tmp_path, "[[members]\n", "directory.toml")

    result = run("config", "check", MAILBRIDGE_DIRECTORY=str(directory))

    assert result.exit_code == 1
    assert result.stdout.startswith(f"{directory}: -: error: not valid TOML")


# ----- config show ---------------------------------------------------------------------------


def test_show_prints_the_settings_with_passwords_hidden_and_origins_noted(tmp_path: Path) -> None:
    path = write(tmp_path, '[outbox]\nurl = "smtps://enquiries:smtp-s3cret@relay.example.gov.uk"\n')

    result = run(
        "--config",
        str(path),
        "config",
        "show",
        MAILBRIDGE_SOURCE="imaps://enquiries%40council.example.gov.uk@imap.example.gov.uk/INBOX",
        MAILBRIDGE_SOURCE_PASSWORD="imap-s3cret",
        MAILBRIDGE_DATABASE_URL="postgresql+psycopg://mailbridge:db-s3cret@db.example.gov.uk/mb",
        MAILBRIDGE_DIRECTORY=str(EXAMPLE_DIRECTORY),
    )

    assert result.exit_code == 0, result.stderr
    assert "s3cret" not in result.stdout
    shown = tomllib.loads(result.stdout)
    assert shown["source"]["url"] == (
        "imaps://enquiries%40council.example.gov.uk:***@imap.example.gov.uk:993/INBOX"
    )
    assert shown["outbox"]["url"] == "smtps://enquiries:***@relay.example.gov.uk:465/"
    assert shown["database"]["url"] == ("postgresql+psycopg://mailbridge:***@db.example.gov.uk/mb")
    assert shown["clock"]["cutoff"] == "17:00"
    assert shown["source"]["processed_flag"] == "\\Seen"
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("url = ") and line.endswith("# env MAILBRIDGE_SOURCE") for line in lines
    )
    assert any(line.startswith("url = ") and line.endswith(f"# {path}") for line in lines)
    assert any(line.startswith("width = 5") and line.endswith("# default") for line in lines)


def test_show_as_toml_loads_back_as_the_same_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        [mailbox]
        address = "members.enquiries@council.example.gov.uk"
        [source]
        folders = ["INBOX", "Members"]
        [directory]
        file = "{EXAMPLE_DIRECTORY}"
        [clock]
        cutoff = "16:30"
        closure_days = [2026-12-29, 2026-12-30]
    """.replace("        ", ""),
    )
    original, _ = check_settings(path, env={})

    result = run("--config", str(path), "config", "show")
    shown = write(tmp_path, result.stdout, "shown.toml")
    reloaded, problems = check_settings(shown, env={})

    assert problems == []
    assert reloaded.source == original.source
    assert reloaded.clock == original.clock
    assert reloaded.mailbox_address == original.mailbox_address
    assert reloaded.directory_file == original.directory_file


def test_show_as_json_gives_settings_and_origins(tmp_path: Path) -> None:
    result = run(
        "config",
        "show",
        "--format",
        "json",
        MAILBRIDGE_SOURCE="imaps://u:pw-s3cret@imap.example.gov.uk/INBOX",
        MAILBRIDGE_DIRECTORY=str(EXAMPLE_DIRECTORY),
    )

    assert result.exit_code == 0, result.stderr
    assert "s3cret" not in result.stdout
    doc = json.loads(result.stdout)
    assert doc["config_file"] is None
    assert doc["settings"]["source"]["url"] == "imaps://u:***@imap.example.gov.uk:993/INBOX"
    assert doc["settings"]["database"]["url"] == "sqlite:///var/mailbridge.db"
    assert doc["settings"]["templates"]["dir"] is None
    assert doc["origins"]["source.url"] == "env MAILBRIDGE_SOURCE"
    assert doc["origins"]["database.url"] == "default"


def test_show_with_bad_settings_lists_the_problems_on_stderr_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, '[mailbox]\naddress = "nope"\n')

    result = run("--config", str(path), "config", "show")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{path}: mailbox.address: error: " in result.stderr


def test_show_rejects_an_unknown_format() -> None:
    result = run("config", "show", "--format", "yaml")

    assert result.exit_code == 2


# ----- help ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["config"], ["config", "check"], ["config", "show"]])
def test_every_config_command_has_help_ending_with_an_example(command: list[str]) -> None:
    result = run(*command, "--help")

    assert result.exit_code == 0
    text = [line.strip(" │") for line in result.stdout.splitlines() if line.strip(" │")]
    examples = [line for line in text if line.startswith("Example: mailbridge ")]
    assert examples, result.stdout
    assert examples[-1].startswith(
        "Example: mailbridge --config /etc/mailbridge/mailbridge.toml config "
    )
