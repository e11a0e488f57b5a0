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
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Role = Literal["customer", "agent"]
ROLES: tuple[Role, ...] = ("customer", "agent")


GuardAction = Literal["repaired", "regenerated", "kept", "fallback"]


class GuardLog(BaseModel):
    """One attempt at a customer reply that the guard or a realism check stopped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempt: int = Field(ge=1)
    violations: list[str] = Field(description="kind, or kind:detail, of each problem found.")
    action: GuardAction = Field(description="What was done about it.")


class TurnMeta(BaseModel):
    """What the app records with a turn beside its words: the ``meta_json`` of a stored turn.

    Every field is optional; None means the key is absent. :meth:`dump` writes the others in
    the order below, so the JSON is the same as when these were plain dict keys. The
    director's step and state are the JSON of ``sim.director.Step`` and ``DirectorState``
    (this package can't import ``sim``); ``sim`` validates them when it reads them.

    Unknown keys: built directly, the model refuses them (a misspelt key is an error). Read
    from storage with :meth:`load`, a key this version does not know (written by another
    version of the app, or by a test), or a known key whose value does not fit its type, is
    kept as it was in :attr:`other`, and :meth:`dump` writes it back after the known ones: an
    old session always loads, and nothing in it is lost.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # agent turns: the director's decision (sim/practice.py)
    step: dict[str, Any] | None = Field(None, description="The director's Step, as JSON.")
    signals: dict[str, bool | None] | None = Field(
        None, description="The grader's verdict per technique, and the dismissive marker."
    )
    directive: str | None = Field(None, description="The director's note to the actor.")
    behaviours: list[str] | None = Field(None, description="Behaviours this reply was to show.")
    context_cut: int | None = Field(
        None, ge=0, description="Oldest messages the model's prompt left out."
    )
    grading_note: str | None = Field(None, description="Why the turn was not scored.")
    # customer turns
    opening: bool | None = Field(None, description="The persona's opening line.")
    regenerated: bool | None = Field(None, description="The reply took more than one attempt.")
    breaks: list[str] | None = Field(None, description="Kinds of problem found on the way.")
    fallback: bool | None = Field(None, description="The scripted in-character line was used.")
    guard: list[GuardLog] | None = Field(None, description="Each stopped attempt.")
    director_state: dict[str, Any] | None = Field(
        None, description="The director's DirectorState after this turn, as JSON."
    )
    other: dict[str, Any] = Field(
        default_factory=dict, exclude=True, description="Keys this version does not know."
    )

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> TurnMeta:
        """From a stored turn's metadata; what doesn't fit goes to :attr:`other`."""
        known = {k: v for k, v in raw.items() if k in cls.model_fields and k != "other"}
        try:
            return cls.model_validate({**known, "other": _rest(raw, known)})
        except ValidationError as exc:
            bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
            known = {k: v for k, v in known.items() if k not in bad}
            return cls.model_validate({**known, "other": _rest(raw, known)})

    def dump(self) -> dict[str, Any]:
        """The JSON object stored: the fields that are not None, then :attr:`other`."""
        out = self.model_dump(mode="json")
        return {**{k: v for k, v in out.items() if v is not None}, **self.other}


def _rest(raw: Mapping[str, Any], known: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in known}


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


__all__ = ["ROLES", "GuardAction", "GuardLog", "Role", "Turn", "TurnMeta"]
