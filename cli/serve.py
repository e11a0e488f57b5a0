"""``rapport serve``: start the web app."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.shared import load_settings


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 7860)")] = None,
    allow_public: Annotated[
        bool,
        typer.Option(
            "--allow-public",
            help="Confirm serving a non-loopback host with sign-in off (RAPPORT_ALLOW_PUBLIC).",
        ),
    ] = False,
) -> None:
    """Start the web app. With RAPPORT_AUTH=on, trainees and trainers sign in."""
    import app as webapp

    overrides: dict[str, object] = {}
    if host:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if allow_public:
        overrides["allow_public"] = True
    webapp.main(load_settings(**overrides))
