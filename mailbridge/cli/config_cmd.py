"""`mailbridge config`: check the settings and directory before a deploy, and show what is in force.

Both commands are thin: the rules live in mailbridge.config and mailbridge.directory, which
collect every problem; this module only prints them for ops and chooses the exit code.
"""

from __future__ import annotations

import json
from datetime import date, time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from mailbridge.config import (
    SLA_KEYS,
    WEEKDAYS,
    Problem,
    Settings,
    check_settings,
    setting_origins,
)
from mailbridge.directory import load_directory

app = typer.Typer(
    no_args_is_help=True,
    help="Check and show the settings (TOML file + MAILBRIDGE_* variables) and the directory.\n\n"
    "Example: mailbridge --config /etc/mailbridge/mailbridge.toml config check",
)


class ShowFormat(StrEnum):
    toml = "toml"
    json = "json"


@app.command("check")
def check(ctx: typer.Context) -> None:
    """List every problem in the settings and the directory; exit 1 if any is an error.

    One line per problem, "file: key: severity: message"; warnings alone exit 0.

    Example: mailbridge --config /etc/mailbridge/mailbridge.toml config check
    """
    config_file = ctx.obj.config_file
    try:
        problems = _all_problems(config_file)
    except Exception as exc:  # a bug in the checks must still not greet ops with a traceback
        problems = [
            Problem(
                str(config_file or "settings"),
                "-",
                f"could not be checked: {type(exc).__name__}: {exc}",
            )
        ]
    for problem in problems:
        typer.echo(str(problem))
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    if not problems:
        typer.echo("ok: settings and directory are valid")
    else:
        typer.echo(f"{_count(errors, 'error')}, {_count(warnings, 'warning')}")
    if errors:
        raise typer.Exit(code=1)


def _all_problems(config_file: str | None) -> list[Problem]:
    """Settings problems, then (if the settings load) the directory file's problems."""
    settings, problems = check_settings(config_file)
    if settings is not None:
        problems = problems + load_directory(settings.directory_file)[1]
    return problems


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@app.command("show")
def show(
    ctx: typer.Context,
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="toml or json.")] = (
        ShowFormat.toml
    ),
) -> None:
    """Print the settings in force, passwords as ***, with where each value came from.

    TOML notes each value's origin in a comment; JSON is {config_file, settings, origins}.

    Example: mailbridge --config /etc/mailbridge/mailbridge.toml config show --format json
    """
    settings: Settings = ctx.obj.settings  # exits 2 with the problems if they do not load
    values = effective(settings)
    origins = setting_origins(ctx.obj.config_file)
    if origins["source.folders"] == "default":
        origins["source.folders"] = "default: the folder in source.url, else INBOX"
    config_file = str(settings.config_file) if settings.config_file else None
    if fmt is ShowFormat.json:
        doc = {"config_file": config_file, "settings": values, "origins": origins}
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False, default=_json_default))
    else:
        typer.echo(_to_toml(values, origins, config_file))


def effective(s: Settings) -> dict[str, dict[str, Any]]:
    """The settings as the file's sections and keys, secrets redacted, ready to print."""
    src = s.source
    return {
        "mailbox": {"address": s.mailbox_address, "plus_addressing": s.plus_addressing},
        "source": {
            "url": src.endpoint.redacted(),
            "folders": list(src.folders),
            "processed": src.processed,
            "processed_folder": src.processed_folder,
            "processed_flag": src.processed_flag,
            "idle": src.idle,
            "idle_renew_seconds": src.idle_renew_seconds,
            "poll_seconds": src.poll_seconds,
            "batch_size": src.batch_size,
            "batch_bytes": src.batch_bytes,
            "workers": src.workers,  # "auto" shown as what it came to on this machine
            "auth": src.auth,
        },
        "database": {"url": redact_url(s.database_url)},
        "outbox": {"url": s.outbox.redacted()},
        "directory": {"file": str(s.directory_file) if s.directory_file else None},
        "references": {"prefix": s.references.prefix, "width": s.references.width},
        "clock": {
            "timezone": s.clock.timezone,
            "cutoff": s.clock.cutoff.strftime("%H:%M"),
            "response_days": s.clock.response_days,
            "closure_days": list(s.clock.closure_days),
            **{key: getattr(s.clock, key) for key in SLA_KEYS},
            "units": s.clock.units,
            "digest": s.clock.digest,
            "digest_weekday": WEEKDAYS[s.clock.digest_weekday].title(),
            "digest_time": s.clock.digest_time.strftime("%H:%M"),
            "sweep_seconds": s.clock.sweep_seconds,
        },
        "templates": {"dir": str(s.template_dir) if s.template_dir else None},
    }


def redact_url(url: str) -> str:
    """An SQLAlchemy URL with its password (if any) replaced by ***."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def _json_default(value: Any) -> str:
    if isinstance(value, (date, time, Path)):
        return str(value)
    raise TypeError(f"cannot show {type(value).__name__}")


def _to_toml(
    values: dict[str, dict[str, Any]], origins: dict[str, str], config_file: str | None
) -> str:
    """A TOML document that loads back as the same settings (bar passwords), origins noted."""
    lines = [f"# effective settings; file: {config_file or '(none: defaults and environment)'}"]
    for section, keys in values.items():
        lines += ["", f"[{section}]"]
        for key, value in keys.items():
            origin = origins.get(f"{section}.{key}", "default")
            if value is None:  # TOML has no null: leave the key out, as the default does
                lines.append(f"# {key} is not set  # {origin}")
            else:
                lines.append(f"{key} = {_toml_value(value)}  # {origin}")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, date)):
        return str(value)  # TOML integers and local dates are written as Python prints them
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, e.g. [clock] units
        pairs = (f"{_toml_value(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    # JSON string escapes are valid TOML basic-string escapes; DEL must be escaped in TOML too.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
