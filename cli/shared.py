"""What the commands share: the settings, with the provider name checked first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from common.settings import Settings


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
