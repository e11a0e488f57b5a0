"""``rapport grade`` and ``rapport import``: grade transcripts offline, or import a real
conversation into History."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.shared import load_settings


def grade(
    input: Annotated[Path, typer.Argument(help="JSONL: {id, turns: [{role, text}]} per line")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output JSONL")],
) -> None:
    """Grade transcripts offline. The input and output formats are stable."""
    import json

    from tqdm import tqdm

    import bootstrap

    lines = input.read_text(encoding="utf-8").splitlines()
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            turns = rec["turns"]
            if not isinstance(rec["id"], str) or not all(
                t["role"] in ("customer", "agent") and isinstance(t["text"], str) for t in turns
            ):
                raise ValueError(
                    "id must be a string; each turn needs role customer|agent and text"
                )
        except (ValueError, KeyError, TypeError) as exc:
            typer.echo(f"{input}:{n}: {exc}", err=True)
            raise typer.Exit(1) from None
        records.append(rec)
    settings = load_settings()
    settings.ensure_dirs()
    grader = bootstrap.open_grader(settings)
    with output.open("w", encoding="utf-8") as out:
        for rec in tqdm(records, desc="Grading", unit="transcript", disable=None):
            graded = grader.grade_transcript(rec["id"], rec["turns"])
            out.write(json.dumps(graded.public(), ensure_ascii=False) + "\n")
    typer.echo(f"graded {len(records)} transcript(s) -> {output}")


def import_cmd(
    file: Annotated[Path, typer.Argument(help="A chat transcript: text, CSV or rapport JSONL")],
    speaker: Annotated[
        list[str] | None,
        typer.Option("--speaker", help="NAME=agent or NAME=customer, when speakers are names"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="auto, text, csv or jsonl")] = "auto",
    user: Annotated[
        str | None, typer.Option("--user", help="The account whose History it goes in")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
    draft: Annotated[
        Path | None,
        typer.Option("--draft-persona", help="Also write a draft persona YAML (first chat)"),
    ] = None,
) -> None:
    """Import a real conversation: mask personal data, grade it and save it in History
    (marked real), then print its feedback. Nothing is saved if the file can't be read."""
    import json

    import bootstrap
    from sim.persona import library_dir
    from storage import open_store
    from training.persona_draft import DraftError, draft_with_settings
    from training.real_import import feedback_text, import_with_roles, public_result, speaker_roles
    from training.transcripts import SpeakersUnclear, TranscriptError, read_file
    from training.users import UserStore

    settings = load_settings()
    if draft is not None and draft.resolve().parent == library_dir(settings).resolve():
        typer.echo(
            "error: write the draft outside the persona library (that would publish "
            "it unchecked), then import it in the Persona Studio",
            err=True,
        )
        raise typer.Exit(2)
    try:
        roles = speaker_roles(speaker or [])
        data = read_file(file)
    except (ValueError, TranscriptError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    settings.ensure_dirs()
    store = open_store(settings)
    try:
        if user is not None and UserStore(store).get(user) is None:
            typer.echo(f"error: no account {user!r}; see `rapport users list`", err=True)
            raise typer.Exit(2)
        grader = bootstrap.open_grader(settings)
        try:
            found = import_with_roles(store, grader, user, data, file.name, fmt, roles)
        except TranscriptError as exc:
            hint = (
                " Name them with --speaker NAME=agent." if isinstance(exc, SpeakersUnclear) else ""
            )
            typer.echo(f"error: not imported: {exc}{hint}", err=True)
            raise typer.Exit(1) from None
    finally:
        store.close()
    result: dict[str, object] = {"conversations": public_result(found)}
    if draft is not None:
        first = found[0]
        try:
            made = draft_with_settings(
                settings, first.turns, first.feedback.model_dump(mode="json"), seed=first.session_id
            )
            draft.write_text(made.yaml_text, encoding="utf-8")
        except (DraftError, OSError) as exc:
            typer.echo(f"error: imported, but no draft persona was written: {exc}", err=True)
            raise typer.Exit(1) from None
        result["draft"] = {
            "path": str(draft),
            "suggested_id": made.suggested_id,
            "source": made.source,
            "notes": made.notes,
        }
    if json_out:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    for c in found:
        typer.echo(feedback_text(c) + "\n")
    if draft is not None:
        typer.echo(f"Draft persona written to {draft} ({made.source}). " + " ".join(made.notes))
        typer.echo("Finish it, then import it in the Persona Studio to check and publish it.")
