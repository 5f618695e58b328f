"""The `mailbridge` command: a thin shell over the library, one module per command group."""

from __future__ import annotations

from typing import Annotated

import typer

from mailbridge.cli import (
    case_links,
    cases,
    config_cmd,
    daemon_cmd,
    db_cmd,
    directory,
    history,
    messages,
    outbox,
    reports,
    schedule,
)
from mailbridge.cli.context import AppContext

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals would print passwords
    help="mailbridge: Members' Enquiries by email.",
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", envvar="MAILBRIDGE_CONFIG", help="TOML settings file."),
    ] = None,
) -> None:
    """Settings come from --config (or MAILBRIDGE_CONFIG) and MAILBRIDGE_* variables.

    Example: mailbridge --config /etc/mailbridge/mailbridge.toml case list --status triage
    """
    ctx.obj = AppContext(config_file=config)


app.add_typer(config_cmd.app, name="config")
app.add_typer(db_cmd.app, name="db")
app.add_typer(directory.app, name="directory")
app.add_typer(cases.app, name="case")
case_links.register(cases.app)  # split, link, merge
app.add_typer(messages.app, name="message")
app.add_typer(outbox.app, name="outbox")
app.add_typer(reports.app, name="report")
app.add_typer(history.import_app, name="import")
app.add_typer(history.export_app, name="export")
daemon_cmd.register(app)
app.add_typer(schedule.app, name="schedule")
schedule.register(app)  # mailbridge sweep


def main() -> None:
    app(prog_name="mailbridge")
