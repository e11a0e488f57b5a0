"""``rapport rulings``: trainers' rulings on disputed verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.shared import load_settings

rulings_app = typer.Typer(no_args_is_help=True, help="Trainers' rulings on disputed verdicts.")


@rulings_app.command("export")
def rulings_export(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="JSONL file to write (rapport eval --input)")
    ],
) -> None:
    """Write every ruling as labelled data in the `rapport eval --input` format. Rulings on
    private turns the trainee did not share are left out."""
    from storage import StoreError
    from training.disputes import export_rulings

    try:
        data = export_rulings(load_settings(), output)
    except (StoreError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    note = (
        f"; left out {data.skipped_private} on private turns the trainee did not share"
        if data.skipped_private
        else ""
    )
    typer.echo(f"wrote {len(data.records)} ruling(s) to {output}{note}")
