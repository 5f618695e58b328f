"""`mailbridge db`: schema migrations."""

from __future__ import annotations

import typer

from mailbridge.store.db import upgrade

app = typer.Typer(no_args_is_help=True, help="The database schema.")


@app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Bring the database schema up to date (the daemon also does this when it starts).

    Example: mailbridge db upgrade
    """
    url = ctx.obj.settings.database_url
    upgrade(url)
    typer.echo("database schema is up to date")
