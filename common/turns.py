"""A turn of a conversation: who spoke (the customer or the agent) and what they said.

One type for every place a conversational turn is meant: a practice session's history as
the simulator sees it, a real transcript as read, a conversation being graded. What the app
recorded with a turn travels with it, typed, in :class:`TurnMeta`.

Not a turn in this sense: a chat model's message (LangChain's, with a ``system`` role), which
``sim.prompt.build_messages`` makes from turns, and a stored turn (``storage.StoredTurn``),
which adds the row's index and time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["customer", "agent"]
ROLES: tuple[Role, ...] = ("customer", "agent")


class TurnMeta(BaseModel):
    """What the app records with a turn beside its words."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    directive: str | None = Field(
        None, description="Agent turns: the director's note to the actor, if any."
    )


@dataclass(frozen=True)
class Turn:
    """One turn: ``role`` is ``customer`` or ``agent``."""

    role: Role
    text: str
    meta: TurnMeta = field(default_factory=TurnMeta)

    @classmethod
    def from_dict(cls, d: Mapping[str, str]) -> Turn:
        """From ``{"role": ..., "text": ...}`` (the ``rapport grade`` turn shape). The role is
        taken as given: a caller that needs it checked checks it."""
        return cls(cast(Role, d["role"]), d["text"])

    def as_dict(self) -> dict[str, str]:
        """The ``{"role", "text"}`` shape of the ``rapport grade`` input."""
        return {"role": self.role, "text": self.text}


__all__ = ["ROLES", "Role", "Turn", "TurnMeta"]
