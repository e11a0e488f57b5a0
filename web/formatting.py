"""Small display helpers every tab shares: escaping, status lines, dates, tables, the
filter and picker choices, and files to download. Every piece of stored or typed text is
escaped here; nothing here checks permissions."""

from __future__ import annotations

import html
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

import pandas as pd

from sim.persona import Archetype, Persona

NO_FILTER = ""
"""The dropdown value meaning "all" (all archetypes, every trainee, any difficulty)."""


def dataframe(rows: list[list[str]], headers: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=headers)


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def archetype_label(value: str | None) -> str:
    return (value or "other").replace("_", " ")


def archetype_choices(all_label: str = "All customer types") -> list[tuple[str, str]]:
    return [(all_label, NO_FILTER)] + [(archetype_label(a.value), a.value) for a in Archetype]


def difficulty_choices(all_label: str = "Any difficulty") -> list[tuple[str, str]]:
    return [(all_label, NO_FILTER)] + [(d, d) for d in ("easy", "medium", "hard")]


def or_none(value: str | None) -> str | None:
    """A filter dropdown's value as a filter argument: "" (or None) means no filter."""
    return value or None


def persona_choices(personas: Mapping[str, Persona]) -> list[tuple[str, str]]:
    """The Practice tab's customer picker: ``name — archetype, difficulty``."""
    return [
        (f"{p.name} — {archetype_label(p.archetype.value)}, {p.difficulty}", p.id)
        for p in personas.values()
    ]


StatusKind = Literal["ok", "error", "info"]


def status_html(text: str, kind: StatusKind = "info") -> str:
    """A one-line status message (escaped), styled by kind."""
    colour = {"ok": "#1e6b34", "error": "#a52a1a", "info": "#3c4043"}[kind]
    icon = {"ok": "✓ ", "error": "⚠️ ", "info": ""}[kind]
    return f'<div class="rp-status rp-{kind}" style="color:{colour}">{icon}{esc(text)}</div>'


def short_date(iso: str) -> str:
    """``2025-01-02T03:04:05.678+00:00`` -> ``2025-01-02 03:04``."""
    return iso[:16].replace("T", " ")


def write_download(text: str, filename: str, folder: Path | None = None) -> Path:
    """Write ``text`` to ``folder/filename`` (a fresh temp folder by default) for a download.

    ``filename`` is reduced to safe characters; the file is UTF-8.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("._") or "export.txt"
    out = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="rapport-export-"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / safe
    path.write_text(text, encoding="utf-8")
    return path


def trainee_choices(names: Iterable[str], all_label: str = "Everyone") -> list[tuple[str, str]]:
    return [(all_label, NO_FILTER)] + [(n, n) for n in names]


__all__ = [
    "NO_FILTER",
    "StatusKind",
    "archetype_choices",
    "archetype_label",
    "dataframe",
    "difficulty_choices",
    "esc",
    "or_none",
    "persona_choices",
    "short_date",
    "status_html",
    "trainee_choices",
    "write_download",
]
