"""What the grader is made of, as types: a :class:`Scorer` gives the verdicts for one agent
turn, a :class:`Judge` gives its own verdicts for a whole transcript.

The judge is a pure function of what it is given: the turns and a :class:`JudgeBrief` (the
rubric and the guidance passages to quote). It never calls back into the grader; the grader
combines its :class:`Judgement` with the scorer's verdicts (``rubric.grader.combine``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from common.turns import Turn
from rubric.techniques import Rubric

if TYPE_CHECKING:
    from rubric.grader import Verdict
    from rubric.guidance import Passage

Verdicts = tuple[dict[str, "Verdict"], dict[str, "Verdict"]]
"""One agent turn's verdicts per technique, and per marker."""


@runtime_checkable
class Scorer(Protocol):
    """Scores one agent turn from its text and the customer's words before it."""

    def classify_turn(self, agent_text: str, customer_text: str) -> Verdicts: ...


class JudgeVerdict(BaseModel):
    """The judge's verdict on one technique in one agent turn, as it answered."""

    model_config = ConfigDict(extra="forbid", strict=True)

    used: bool
    evidence: str | None = None


@dataclass(frozen=True)
class JudgeBrief:
    """What the judge is told besides the transcript: the rubric, and for each technique id
    the guidance passages to quote with its definition (none without a guidance store)."""

    rubric: Rubric
    guidance: Mapping[str, Sequence[Passage]] = field(default_factory=dict)


class Judgement(NamedTuple):
    """The judge's answer: per agent turn index and technique id, its verdict, or None where
    it gave none that validated; ``error`` says why it gave none at all (the call failed)."""

    verdicts: dict[int, dict[str, JudgeVerdict | None]]
    error: str | None = None


@runtime_checkable
class Judge(Protocol):
    """Grades a whole transcript's agent turns on the rubric's techniques."""

    def judge(self, turns: Sequence[Turn], brief: JudgeBrief) -> Judgement: ...


__all__ = ["Judge", "JudgeBrief", "JudgeVerdict", "Judgement", "Scorer", "Verdicts"]
