"""A command-line tool: it tells its user, it is not the server's error path."""

import typer

from app.services.openrouter_client import list_models


def check() -> None:
    try:
        list_models()
    except Exception as exc:  # CLEAN (reported on the console)
        typer.secho(f"failed: {exc}", fg="red", err=True)
