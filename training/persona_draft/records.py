"""The draft persona and its errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from sim.persona import PersonaSpec

if TYPE_CHECKING:
    pass


Phraser = Callable[[str, str], str | None]
"""``(instruction, text) -> reworded text`` (None or anything unusable keeps the text)."""
DraftSource = Literal["extracted", "extracted+phrased", "llm"]


class DraftError(ValueError):
    """No draft can be made from this conversation; the message says why."""


@dataclass
class Draft:
    """A draft persona: its validated fields, its YAML, a suggested id, and notes for the
    trainer on where each part came from and what to check."""

    spec: PersonaSpec
    yaml_text: str
    suggested_id: str
    source: DraftSource
    notes: list[str] = field(default_factory=list)
