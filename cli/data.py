"""``rapport ingest``, ``rapport backup`` and ``rapport restore``: the guidance store and the
session database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.shared import load_settings


def ingest(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="md, txt, html or pdf files or folders")
    ] = None,
    shipped: Annotated[
        bool, typer.Option("--shipped", help="Ingest the shipped guidance/ corpus")
    ] = False,
    quiet_if_unchanged: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Add guidance to the Chroma store. Re-ingesting an unchanged file adds nothing."""
    from tqdm import tqdm

    from rubric.guidance import GUIDANCE_DIR, GuidanceStore

    targets = list(paths or []) + ([GUIDANCE_DIR] if shipped else [])
    if not targets:
        typer.echo("error: give PATHs or --shipped", err=True)
        raise typer.Exit(2)
    missing = [p for p in targets if not p.exists()]
    if missing:
        typer.echo(f"error: not found: {', '.join(map(str, missing))}", err=True)
        raise typer.Exit(2)
    settings = load_settings()
    settings.ensure_dirs()
    store = GuidanceStore(settings)
    bar = tqdm(desc="Ingesting", unit="file", disable=None)

    def tick(source: str) -> None:
        bar.update(1)

    report = store.ingest(targets, progress=tick)
    bar.close()
    for src, n in report.added.items():
        typer.echo(f"added     {src} ({n} chunks)")
    for src, n in report.replaced.items():
        typer.echo(f"replaced  {src} ({n} chunks)")
    for src, why in report.skipped.items():
        typer.echo(f"skipped   {src}: {why}")
    for problem in report.errors:
        typer.echo(f"error     {problem}", err=True)
    if report.unchanged and not quiet_if_unchanged:
        typer.echo(f"unchanged {len(report.unchanged)} file(s)")
    if not quiet_if_unchanged or report.chunks_written:
        typer.echo(f"store now holds {store.count()} chunks")
    if report.errors:
        raise typer.Exit(1)


def backup_cmd(
    dest: Annotated[Path, typer.Argument(help="Backup file to write, or a folder to put it in")],
) -> None:
    """Back up the session database. Safe while the app is running."""
    from storage.backup import BackupError, backup, check_database

    settings = load_settings()
    db = settings.database_url or settings.db_path
    try:
        out = backup(db, dest)
        n = check_database(out)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"backed up {n} session(s): {db} -> {out}")


def restore_cmd(
    src: Annotated[Path, typer.Argument(help="A backup written by 'rapport backup'")],
) -> None:
    """Replace the session database with a backup (stop the app first). The backup is
    checked before anything changes; the current database is kept beside it."""
    from storage.backup import BackupError, check_database, restore

    settings = load_settings()
    db = settings.database_url or settings.db_path
    try:
        kept = restore(src, db)
        n = check_database(db)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"restored {n} session(s) from {src} into {db}")
    if kept is not None:
        typer.echo(f"the previous database is kept at {kept}")
