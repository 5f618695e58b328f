"""Settings: defaults, the TOML file, MAILBRIDGE_* overrides, passwords, every problem at once."""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date, time
from pathlib import Path

import pytest

from mailbridge.config import (
    _DEFAULTS,
    ConfigError,
    Endpoint,
    check_settings,
    load_settings,
    setting_origins,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "config" / "mailbridge.example.toml"
EXAMPLE_DIRECTORY = REPO / "config" / "directory.example.toml"


@pytest.fixture(autouse=True)
def no_developer_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own MAILBRIDGE_* variables must not change what these tests see."""
    for name in [n for n in os.environ if n.startswith("MAILBRIDGE_")]:
        monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "mailbridge.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors(problems) -> list:
    return [p for p in problems if p.severity == "error"]


# ----- defaults and layers -------------------------------------------------------------------


def test_with_no_config_at_all_the_daemon_uses_sqlite_maildir_and_file_outbox_in_var() -> None:
    settings, _ = check_settings(None, env={})

    assert settings is not None
    assert settings.database_url == "sqlite:///var/mailbridge.db"
    assert settings.source.endpoint.scheme == "maildir"
    assert settings.source.endpoint.path == "var/inbox"
    assert settings.outbox.scheme == "file"
    assert settings.outbox.path == "var/outbox"
    assert settings.source.folders == ("INBOX",)
    assert settings.references.format(2026, 123) == "ME-2026-00123"
    assert settings.clock.cutoff == time(17, 0)
    assert settings.clock.response_days == 5
    assert settings.config_file is None


def test_with_no_directory_file_there_is_only_a_warning_that_everyone_goes_to_triage() -> None:
    settings, problems = check_settings(None, env={})

    assert settings is not None
    assert [(p.key, p.severity) for p in problems] == [("directory.file", "warning")]
    assert "triage" in problems[0].message


def test_the_file_overrides_the_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [mailbox]
        address = "Members.Enquiries@Council.Example.gov.uk"
        [references]
        prefix = "MEQ"
        width = 6
        [clock]
        cutoff = "16:30"
        response_days = 10
    """.replace("        ", ""),
    )

    settings = load_settings(path, env={})

    assert settings.mailbox_address == "members.enquiries@council.example.gov.uk"
    assert settings.own_addresses == {"members.enquiries@council.example.gov.uk"}
    assert settings.references.format(2026, 7) == "MEQ-2026-000007"
    assert settings.clock.cutoff == time(16, 30)
    assert settings.clock.response_days == 10
    assert settings.config_file == path


def test_environment_overrides_beat_the_file(tmp_path: Path) -> None:
    directory = write(tmp_path, "", "directory.toml")
    path = write(
        tmp_path,
        """
        [mailbox]
        address = "file@council.example.gov.uk"
        [source]
        url = "maildir:from-the-file"
        [database]
        url = "sqlite:///from-the-file.db"
        [outbox]
        url = "file:from-the-file"
        [directory]
        file = "no-such-file.toml"
    """.replace("        ", ""),
    )
    env = {
        "MAILBRIDGE_ADDRESS": "env@council.example.gov.uk",
        "MAILBRIDGE_SOURCE": "imaps://enquiries@imap.example.gov.uk/INBOX",
        "MAILBRIDGE_DATABASE_URL": "postgresql+psycopg://mailbridge@db.example.gov.uk/mb",
        "MAILBRIDGE_OUTBOX": "smtp://relay.example.gov.uk:587",
        "MAILBRIDGE_DIRECTORY": str(directory),
    }

    settings, problems = check_settings(path, env=env)

    assert problems == []  # the file's missing directory is never looked at
    assert settings is not None
    assert settings.mailbox_address == "env@council.example.gov.uk"
    assert settings.source.endpoint.host == "imap.example.gov.uk"
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.outbox.port == 587
    assert settings.directory_file == directory


def test_mailbridge_config_names_the_file_when_no_path_is_given(tmp_path: Path) -> None:
    path = write(tmp_path, '[mailbox]\naddress = "me@council.example.gov.uk"\n')

    settings = load_settings(None, env={"MAILBRIDGE_CONFIG": str(path)})

    assert settings.mailbox_address == "me@council.example.gov.uk"
    assert settings.config_file == path


def test_each_setting_knows_whether_it_came_from_the_default_the_file_or_the_environment(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, '[source]\nurl = "maildir:x"\n[clock]\ncutoff = "16:00"\n')

    origins = setting_origins(path, env={"MAILBRIDGE_SOURCE": "maildir:y"})

    assert origins["source.url"] == "env MAILBRIDGE_SOURCE"
    assert origins["clock.cutoff"] == str(path)
    assert origins["database.url"] == "default"


def test_an_empty_environment_variable_does_not_override_anything(tmp_path: Path) -> None:
    settings = load_settings(None, env={"MAILBRIDGE_SOURCE": "", "MAILBRIDGE_ADDRESS": ""})

    assert settings.source.endpoint.path == "var/inbox"
    assert settings.mailbox_address == "mailbridge@localhost"


# ----- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "path"),
    [
        ("imap://imap.example.gov.uk", "imap", "imap.example.gov.uk", 143, ""),
        ("imaps://imap.example.gov.uk", "imaps", "imap.example.gov.uk", 993, ""),
        (
            "imaps://imap.example.gov.uk:1993/Members",
            "imaps",
            "imap.example.gov.uk",
            1993,
            "Members",
        ),
        ("IMAPS://IMAP.Example.gov.uk/INBOX", "imaps", "imap.example.gov.uk", 993, "INBOX"),
        ("imaps://[::1]/INBOX", "imaps", "::1", 993, "INBOX"),
        ("maildir:var/inbox", "maildir", "", None, "var/inbox"),
        ("maildir:///var/mail/enquiries", "maildir", "", None, "/var/mail/enquiries"),
        ("maildir://./var/inbox", "maildir", "", None, "./var/inbox"),
        ("maildir:var/my%20inbox", "maildir", "", None, "var/my inbox"),
    ],
)
def test_source_urls_parse_with_ports_defaulted(url, scheme, host, port, path) -> None:
    settings = load_settings(None, env={"MAILBRIDGE_SOURCE": url})

    endpoint = settings.source.endpoint
    assert (endpoint.scheme, endpoint.host, endpoint.port, endpoint.path) == (
        scheme,
        host,
        port,
        path,
    )


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "path"),
    [
        ("smtp://relay.example.gov.uk", "smtp", "relay.example.gov.uk", 25, ""),
        ("smtp://relay.example.gov.uk:587", "smtp", "relay.example.gov.uk", 587, ""),
        ("smtps://relay.example.gov.uk", "smtps", "relay.example.gov.uk", 465, ""),
        ("file:var/outbox", "file", "", None, "var/outbox"),
        ("file:///var/spool/mailbridge", "file", "", None, "/var/spool/mailbridge"),
    ],
)
def test_outbox_urls_parse_with_ports_defaulted(url, scheme, host, port, path) -> None:
    settings = load_settings(None, env={"MAILBRIDGE_OUTBOX": url})

    outbox = settings.outbox
    assert (outbox.scheme, outbox.host, outbox.port, outbox.path) == (scheme, host, port, path)


def test_a_url_carries_a_user_name_and_a_percent_encoded_password() -> None:
    url = "imaps://members.enquiries%40council.example.gov.uk:p%40ss%3Aw%2Frd@imap.example.gov.uk/"

    endpoint = load_settings(None, env={"MAILBRIDGE_SOURCE": url}).source.endpoint

    assert endpoint.username == "members.enquiries@council.example.gov.uk"
    assert endpoint.password == "p@ss:w/rd"


def test_the_imap_folder_in_the_url_is_the_folder_watched() -> None:
    settings = load_settings(None, env={"MAILBRIDGE_SOURCE": "imaps://u@imap.example/Members"})

    assert settings.source.folders == ("Members",)


def test_a_redacted_url_never_shows_the_password_but_shows_that_there_is_one() -> None:
    url = "imaps://enquiries:hunter2@imap.example.gov.uk/INBOX"
    endpoint = load_settings(None, env={"MAILBRIDGE_SOURCE": url}).source.endpoint

    assert "hunter2" not in endpoint.redacted()
    assert "hunter2" not in repr(endpoint)
    assert endpoint.redacted() == "imaps://enquiries:***@imap.example.gov.uk:993/INBOX"
    assert Endpoint(url="x", scheme="smtp", host="h", port=25, username="u").redacted() == (
        "smtp://u@h:25/"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("pop3://mail.example.gov.uk", "unsupported scheme 'pop3'"),
        ("var/inbox", "unsupported scheme"),
        ("imaps://", "needs a host"),
        ("imaps://imap.example.gov.uk:port/", "port must be a number"),
        ("imaps://[::1", "not a valid URL"),
        ("maildir:", "needs a path"),
        ("maildir://var/inbox", "maildir:relative/path"),  # would silently have meant /inbox
    ],
)
def test_a_bad_source_url_is_one_problem_naming_the_variable(url: str, message: str) -> None:
    settings, problems = check_settings(None, env={"MAILBRIDGE_SOURCE": url})

    assert settings is None
    [problem] = errors(problems)
    assert (problem.where, problem.key) == ("env MAILBRIDGE_SOURCE", "source.url")
    assert message in problem.message


def test_a_smtp_url_is_not_a_source_and_an_imap_url_is_not_an_outbox() -> None:
    env = {"MAILBRIDGE_SOURCE": "smtp://relay.example", "MAILBRIDGE_OUTBOX": "imap://imap.example"}

    _, problems = check_settings(None, env=env)

    assert {p.key for p in errors(problems)} == {"source.url", "outbox.url"}


# ----- passwords -----------------------------------------------------------------------------


def test_a_password_comes_from_password_file_with_the_newline_stripped(tmp_path: Path) -> None:
    secret = write(tmp_path, "from-the-file\n", "imap-password")
    path = write(
        tmp_path,
        f"""
        [source]
        url = "imaps://enquiries:in-the-url@imap.example.gov.uk/"
        password_file = "{secret}"
        password_env = "IMAP_PASSWORD"
    """.replace("        ", ""),
    )
    env = {"IMAP_PASSWORD": "from-env", "MAILBRIDGE_SOURCE_PASSWORD": "from-standard-env"}

    settings = load_settings(path, env=env)

    assert settings.source.endpoint.password == "from-the-file"


def test_a_password_comes_from_the_variable_named_by_password_env(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [outbox]
        url = "smtps://enquiries@relay.example.gov.uk"
        password_env = "SMTP_PASSWORD"
    """.replace("        ", ""),
    )

    settings = load_settings(
        path, env={"SMTP_PASSWORD": "from-env", "MAILBRIDGE_OUTBOX_PASSWORD": "not-this"}
    )

    assert settings.outbox.password == "from-env"


def test_a_password_comes_from_mailbridge_source_password_over_the_url() -> None:
    env = {
        "MAILBRIDGE_SOURCE": "imaps://enquiries:in-the-url@imap.example.gov.uk/",
        "MAILBRIDGE_SOURCE_PASSWORD": "from-standard-env",
        "MAILBRIDGE_OUTBOX": "smtp://relay.example.gov.uk",
        "MAILBRIDGE_OUTBOX_PASSWORD": "smtp-secret",
    }

    settings = load_settings(None, env=env)

    assert settings.source.endpoint.password == "from-standard-env"
    assert settings.outbox.password == "smtp-secret"


def test_without_any_password_setting_the_url_password_is_used() -> None:
    env = {"MAILBRIDGE_SOURCE": "imaps://enquiries:in-the-url@imap.example.gov.uk/"}

    assert load_settings(None, env=env).source.endpoint.password == "in-the-url"


def test_an_unreadable_password_file_and_an_unset_password_env_are_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        [source]
        url = "imaps://enquiries@imap.example.gov.uk/"
        password_file = "{tmp_path / "missing"}"
        [outbox]
        url = "smtp://relay.example.gov.uk"
        password_env = "NOT_SET_ANYWHERE"
    """.replace("        ", ""),
    )

    _, problems = check_settings(path, env={})

    found = {p.key: p for p in errors(problems)}
    assert set(found) == {"source.password_file", "outbox.password_env"}
    assert "NOT_SET_ANYWHERE" in found["outbox.password_env"].message
    assert all(p.where == str(path) for p in found.values())


def test_an_empty_password_file_is_a_warning(tmp_path: Path) -> None:
    secret = write(tmp_path, "\n", "empty")
    path = write(
        tmp_path,
        f"""
        [source]
        url = "imaps://enquiries@imap.example.gov.uk/"
        password_file = "{secret}"
    """.replace("        ", ""),
    )

    settings, problems = check_settings(path, env={})

    assert settings is not None
    assert ("source.password_file", "warning") in [(p.key, p.severity) for p in problems]


# ----- every problem at once -----------------------------------------------------------------


def test_every_problem_is_reported_at_once_with_its_file_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [mailbox]
        address = "not an address"
        colour = "blue"

        [source]
        url = "pop3://mail.example.gov.uk"
        poll_seconds = "often"

        [clock]
        cutoff = "5pm"
        closure_days = [2026-12-29, "Boxing Day"]

        [directory]
        file = "nowhere/directory.toml"

        [printer]
        colour = true
    """.replace("        ", ""),
    )

    settings, problems = check_settings(path, env={})

    assert settings is None
    found = {p.key: p.message for p in problems}
    assert set(found) == {
        "mailbox.address",
        "mailbox.colour",
        "source.url",
        "source.poll_seconds",
        "clock.cutoff",
        "clock.closure_days[1]",
        "directory.file",
        "printer",
    }
    assert "not an email address" in found["mailbox.address"]
    assert "unknown key" in found["mailbox.colour"]
    assert "unsupported scheme 'pop3'" in found["source.url"]
    assert "expected a whole number" in found["source.poll_seconds"]
    assert "HH:MM" in found["clock.cutoff"]
    assert "Boxing Day" in found["clock.closure_days[1]"]
    assert "file not found" in found["directory.file"]
    assert "unknown section" in found["printer"]
    assert all(p.where == str(path) and p.severity == "error" for p in problems)


def test_load_settings_raises_one_error_listing_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, '[mailbox]\naddress = "nope"\n[references]\nwidth = 1\n')

    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})

    assert [p.key for p in caught.value.problems] == ["mailbox.address", "references.width"]
    assert f"{path}: mailbox.address: error: " in str(caught.value)


def test_a_problem_reads_file_key_severity_message(tmp_path: Path) -> None:
    path = write(tmp_path, '[references]\nprefix = "me"\n')

    _, problems = check_settings(path, env={})

    [problem] = errors(problems)
    assert re.fullmatch(rf"{re.escape(str(path))}: references\.prefix: error: .+", str(problem))


def test_a_problem_from_an_environment_variable_names_the_variable() -> None:
    _, problems = check_settings(None, env={"MAILBRIDGE_DATABASE_URL": "mysql://db/mb"})

    [problem] = errors(problems)
    assert (problem.where, problem.key) == ("env MAILBRIDGE_DATABASE_URL", "database.url")


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[source]\nidle = 1\n", "source.idle"),
        ("[source]\nbatch_size = true\n", "source.batch_size"),
        ("[source]\nbatch_size = 0\n", "source.batch_size"),
        ("[source]\nidle_renew_seconds = 1800\n", "source.idle_renew_seconds"),
        ("[source]\nprocessed = 'delete'\n", "source.processed"),
        ("[source]\nauth = 'kerberos'\n", "source.auth"),
        ("[source]\nworkers = -1\n", "source.workers"),
        ("[source]\nworkers = 'many'\n", "source.workers"),
        ("[source]\nworkers = true\n", "source.workers"),
        ("[source]\nfolders = []\n", "source.folders"),
        ("[source]\nfolders = 'INBOX'\n", "source.folders"),
        ("[clock]\ntimezone = 'Europe/Londres'\n", "clock.timezone"),
        ("[clock]\nresponse_days = 0\n", "clock.response_days"),
        ("[clock]\ncutoff = '25:00'\n", "clock.cutoff"),
        ("[clock]\ncutoff = '17:00+01:00'\n", "clock.cutoff"),
        ("[clock]\nclosure_days = [2026-12-29T09:00:00]\n", "clock.closure_days[0]"),
        ("[references]\nwidth = 12\n", "references.width"),
        ("[templates]\ndir = '/no/such/templates'\n", "templates.dir"),
        ("mailbox = 'x@y'\n", "mailbox"),
    ],
)
def test_a_bad_value_is_reported_against_its_key(tmp_path: Path, toml: str, key: str) -> None:
    path = write(tmp_path, toml)

    _, problems = check_settings(path, env={})

    assert [p.key for p in errors(problems)] == [key]


def test_workers_are_one_per_core_beyond_the_daemons_own_unless_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert load_settings(None, env={}).source.workers == 1
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert load_settings(None, env={}).source.workers == 4
    assert load_settings(write(tmp_path, "[source]\nworkers = 0\n"), env={}).source.workers == 0


def test_dates_and_times_may_be_toml_values_or_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path, "[clock]\ncutoff = 16:30:00\nclosure_days = [2026-12-29, '2026-12-30']\n"
    )

    clock = load_settings(path, env={}).clock

    assert clock.cutoff == time(16, 30)
    assert clock.closure_days == (date(2026, 12, 29), date(2026, 12, 30))


@pytest.mark.parametrize("content", [b"[mailbox\naddress = 1", b"\xff\xfe not utf-8"])
def test_a_file_that_is_not_toml_is_one_problem_not_a_crash(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.toml"
    path.write_bytes(content)

    _, problems = check_settings(path, env={})

    assert [(p.where, p.key) for p in errors(problems)] == [(str(path), "-")]
    assert "not valid TOML" in problems[0].message


def test_a_missing_config_file_or_a_directory_given_as_one_is_a_problem(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.toml", tmp_path):
        _, problems = check_settings(path, env={})
        assert [(p.where, p.key) for p in errors(problems)] == [(str(path), "-")]


# ----- the shipped examples ------------------------------------------------------------------


def test_the_example_config_loads_cleanly_from_the_repository(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)  # its directory file is relative, as in a fresh clone

    settings, problems = check_settings(EXAMPLE_CONFIG, env={})

    assert problems == []
    assert settings is not None
    assert settings.directory_file == Path("config/directory.example.toml")


def test_the_example_config_holds_every_setting_at_its_default(tmp_path: Path) -> None:
    env = {"MAILBRIDGE_DIRECTORY": str(EXAMPLE_DIRECTORY)}

    from_example = load_settings(EXAMPLE_CONFIG, env=env)
    from_defaults = load_settings(None, env=env)

    assert from_example.source == from_defaults.source
    assert from_example.database_url == from_defaults.database_url
    assert from_example.outbox == from_defaults.outbox
    assert from_example.references == from_defaults.references
    assert from_example.clock == from_defaults.clock
    assert from_example.mailbox_address == from_defaults.mailbox_address


def test_the_example_config_mentions_every_key(tmp_path: Path) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    for section, keys in _DEFAULTS.items():
        assert f"[{section}]" in text
        for key in keys:
            assert re.search(rf"^#? ?{key} = ", text, re.MULTILINE), f"{section}.{key}"
    for variable in (
        "MAILBRIDGE_SOURCE",
        "MAILBRIDGE_DATABASE_URL",
        "MAILBRIDGE_OUTBOX",
        "MAILBRIDGE_ADDRESS",
        "MAILBRIDGE_DIRECTORY",
        "MAILBRIDGE_SOURCE_PASSWORD",
    ):
        assert variable in text


def test_the_production_example_in_the_comments_is_valid(tmp_path: Path) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    after_heading = text.split("a production example")[1].split("\n", 1)[1]
    block = after_heading.split("# ------")[0]
    toml = "\n".join(line.removeprefix("#").removeprefix(" ") for line in block.splitlines())
    tomllib.loads(toml)
    path = write(tmp_path, toml)

    _, problems = check_settings(path, env={"SMTP_PASSWORD": "x"})

    # Only the files that exist on a production host are missing here.
    assert {p.key for p in problems} == {"source.password_file", "directory.file"}
