"""``rapport personas``: list, validate and check the persona library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.shared import load_settings, throwaway_practice

personas_app = typer.Typer(no_args_is_help=True, help="List, validate and check personas.")


@personas_app.command("list")
def personas_list() -> None:
    """List the persona library."""
    from sim.persona import PersonaError, library_dir, load_personas

    try:
        personas = load_personas(library_dir(load_settings()))
    except PersonaError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    for p in personas.values():
        typer.echo(
            f"{p.id:32} {p.archetype.value:17} {p.difficulty:7} {p.name} ({p.scenario.company})"
        )


@personas_app.command("validate")
def personas_validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders; default: the library.")
    ] = None,
) -> None:
    """Validate persona files; print ``file: field: problem`` lines and exit 1 on errors."""
    from sim.persona import PersonaError, library_dir, load_persona_file, persona_paths

    files: list[Path] = []
    for p in paths or [library_dir(load_settings())]:
        files.extend(persona_paths(p) if p.is_dir() else [p])
    problems: list[str] = []
    for f in files:
        try:
            load_persona_file(f)
        except PersonaError as exc:
            problems.extend(exc.problems)
    for line in problems:
        typer.echo(line)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{len(files)} persona file(s) valid")


@personas_app.command("check")
def personas_check(
    persona: Annotated[str, typer.Argument(help="Persona id (see `rapport personas list`).")],
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (rapport.check/1).")
    ] = False,
) -> None:
    """Play probe agents (dismissive, ideal, fact questions, off-topic probes) against a
    persona with the configured model; print PASS/FAIL per check and exit 1 if any fails."""
    import json

    from providers.registry import ProviderError
    from sim.probe_check import check_persona, render_text
    from sim.simulator import SimulatorError

    # Check sessions go to a throwaway store, not the trainee's history.
    with throwaway_practice(load_settings(), persona, "rapport-check-") as practice:
        try:
            report = check_persona(practice, persona)
        except (ProviderError, SimulatorError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    typer.echo(
        json.dumps(report.model_dump(mode="json"), ensure_ascii=False)
        if json_out
        else render_text(report)
    )
    if not report.passed:
        raise typer.Exit(1)
