"""What the commands share: the settings, with the provider name checked first, and a
throwaway practice for commands that play sessions nobody keeps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from common.settings import Settings
    from sim.practice import Practice


def load_settings(**overrides: Any) -> Settings:
    """``Settings`` from the environment (``RAPPORT_*``, ``.env``) and ``overrides``. A provider
    name the registry doesn't know stops the command here, with the names it knows (exit 2)."""
    from common.settings import Settings
    from providers.registry import ProviderError, factory_for

    settings = Settings(**overrides)
    try:
        factory_for(settings.provider)
    except ProviderError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return settings


@contextmanager
def throwaway_practice(settings: Settings, persona: str, prefix: str) -> Iterator[Practice]:
    """A ``Practice`` over the persona library whose sessions go to a store in a temporary
    folder (named with ``prefix``), not the trainee's history; the store is closed and the
    folder removed on the way out. A library that doesn't load stops the command (exit 1),
    and so does a ``persona`` it doesn't hold (exit 2)."""
    import tempfile
    from pathlib import Path

    import bootstrap
    from sim.persona import PersonaError, library_dir, load_personas
    from sim.practice import Practice
    from storage import SessionStore

    try:
        personas = load_personas(library_dir(settings))
    except PersonaError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if persona not in personas:
        typer.echo(f"error: no persona '{persona}'; see `rapport personas list`", err=True)
        raise typer.Exit(2)
    settings.ensure_dirs()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        practice = Practice(
            settings, SessionStore(Path(tmp) / "sessions.db"), personas, **bootstrap.grading()
        )
        try:
            yield practice
        finally:
            practice.store.close()
