"""What a realism finding is, the kinds there are, and how each kind is repaired."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sim.notes import HINTS

RealismKind = Literal[
    "narrates",
    "recites_backstory",
    "repeats_itself",
    "obeys_instruction",
    "ungranted_thanks",
    "too_long",
    "too_short",
]
RepairPath = Literal["drop_sentences", "truncate", "regenerate"]

KINDS: tuple[RealismKind, ...] = (
    "narrates",
    "recites_backstory",
    "repeats_itself",
    "obeys_instruction",
    "ungranted_thanks",
    "too_long",
    "too_short",
)
REPAIR_PATHS: dict[RealismKind, RepairPath] = {
    "narrates": "drop_sentences",
    "recites_backstory": "drop_sentences",
    "repeats_itself": "drop_sentences",
    "ungranted_thanks": "drop_sentences",
    "too_long": "truncate",
    "too_short": "regenerate",
    "obeys_instruction": "regenerate",
}
SOFT: frozenset[RealismKind] = frozenset({"too_long", "too_short"})
"""Kinds that never cost the trainee a stock line: at the last attempt the reply is kept."""

# What the correction tells the model, per kind, when a reply is asked for again (worded in
# sim/notes.py, beside the patterns that strip an echo of it).
_HINTS: dict[RealismKind, str] = {k: HINTS[k] for k in KINDS}


@dataclass(frozen=True)
class Finding:
    """One reason a reply does not sound like a person."""

    kind: RealismKind
    detail: str
    sentences: tuple[str, ...] = ()  # the sentences to drop, where dropping them is the fix

    @property
    def repair(self) -> RepairPath:
        return REPAIR_PATHS[self.kind]

    @property
    def soft(self) -> bool:
        return self.kind in SOFT


@dataclass(frozen=True)
class Granted:
    """What the director has given the customer reason to thank the agent for."""

    offered: bool = False  # a resolution step offered, or the agent cooperated, so far
    soothed: bool = False  # this turn calmed them by more than a question
    resolved: bool = False  # the customer accepts: thanks and satisfaction are due

    @classmethod
    def from_step(cls, step: Any) -> Granted:
        """From a ``sim.director.Step``."""
        state = step.state
        return cls(
            offered=bool(state.offers) or bool(state.cooperated),
            soothed=any(c.delta < 0 and c.id != "listen" for c in step.causes),
            resolved=step.outcome == "resolved" or bool(step.resolution_met),
        )
