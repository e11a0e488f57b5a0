"""``rapport chat`` and ``rapport simulate``: a session in the terminal, or an agent script
played against a persona."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.shared import load_settings, throwaway_practice


def chat(
    persona: Annotated[str, typer.Option("--persona", "-p", help="Persona id")],
    resume: Annotated[str | None, typer.Option(help="Resume this session id")] = None,
) -> None:
    """Practise in the terminal against the same simulator the app uses."""
    import bootstrap
    from sim.practice import InputRejected
    from sim.simulator import SimulatorError

    practice = bootstrap.open_practice(load_settings())
    if persona not in practice.personas:
        typer.echo(f"error: unknown persona {persona!r}; see 'rapport personas list'", err=True)
        raise typer.Exit(2)
    session = practice.resume(resume) if resume else practice.start(persona)
    p = session.persona
    typer.echo(f"[{p.name} · {p.scenario.company} · {p.difficulty}] {p.trainee_brief}")
    typer.echo("Type your replies as the agent. /end finishes the session.\n")
    for t in session.record.turns:
        typer.echo(f"{'Customer' if t.role == 'customer' else 'You'}: {t.text}")
    while True:
        try:
            text = input("You: ")
        except EOFError:
            break
        if text.strip() == "/end":
            break
        if not text.strip():
            continue
        try:
            sys.stdout.write("Customer: ")
            last = ""
            for partial in session.respond(text):
                if partial.startswith(last):
                    sys.stdout.write(partial[len(last) :])
                else:
                    sys.stdout.write("\n(rephrased) " + partial)
                sys.stdout.flush()
                last = partial
            sys.stdout.write("\n")
        except InputRejected as exc:
            typer.echo(f"\n{exc}")
        except SimulatorError as exc:
            typer.echo(f"\n{exc}\nYour message is saved; send it again to retry.", err=True)
    session.end()
    typer.echo(f"\nSession {session.id} saved.")


def simulate(
    persona: Annotated[str, typer.Option(help="Persona id (see `rapport personas list`).")],
    agent_script: Annotated[
        Path, typer.Option(help="Text file: one agent message per line (# starts a comment).")
    ],
    seed: Annotated[int | None, typer.Option(help="Sampling seed for the customer model.")] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the stable JSON format (rapport.simulate/1).")
    ] = False,
) -> None:
    """Play an agent script against a persona: replies, mood, facts, verdicts, guard, outcome."""
    import json

    from providers.registry import ProviderError
    from sim.simulate import read_script, render_text
    from sim.simulate import simulate as run_simulation

    try:
        lines = read_script(agent_script.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"error: cannot read {agent_script}: {exc}", err=True)
        raise typer.Exit(2) from None
    if not lines:
        typer.echo(f"error: {agent_script} has no agent lines", err=True)
        raise typer.Exit(2)
    settings = load_settings() if seed is None else load_settings(seed=seed)
    # Simulated sessions go to a throwaway store, not the trainee's history.
    with throwaway_practice(settings, persona, "rapport-simulate-") as practice:
        try:
            result = run_simulation(practice, persona, lines, seed)
        except ProviderError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    typer.echo(
        json.dumps(result, ensure_ascii=False, indent=None) if json_out else render_text(result)
    )
