"""Hints during practice: the next technique to try, with the guidance behind it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sim.director import DirectorState, listening_clauses, rules_for
from sim.persona import Persona
from storage import Session
from training.users import (
    PermissionDenied,
)

if TYPE_CHECKING:
    from sim.practice import PracticeSession


# --- hints -------------------------------------------------------------------------------
class HintsDisabled(PermissionDenied):
    """Hints are off in assessment sessions."""


class GuidanceSearch(Protocol):
    """What hints need of ``rubric.guidance.GuidanceStore``."""

    def search(self, query: str, tag: str | None = ..., k: int = ...) -> Sequence[Any]: ...


@dataclass(frozen=True)
class Hint:
    """One tip for this moment of a conversation, with the guidance passage behind it."""

    text: str
    guidance_id: str | None = None
    kind: str = "general"
    guidance_title: str | None = None
    guidance_excerpt: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


HIGH_DISTRESS = 7.0
HINT_TEXT = {
    "validate": "They have told you how they feel; name it before offering a fix.",
    "listen": "There is more to their story than they have said. Ask an open question about "
    "what happened before you suggest anything.",
    "cooperate": "They are calm enough to hear a solution: offer a concrete next step and say "
    "what you will do and when.",
    "affirm": "Check you have understood: sum up their problem in your own words and ask if "
    "that's right.",
    "over": "This conversation is over: end the session to see your feedback.",
}


def choose_hint(persona: Persona, session: Session, state: DirectorState) -> tuple[str, str | None]:
    """The tip for this moment as ``(kind, guidance tag)``; pure, for tests and the app.

    In order: the conversation is over; distress >= 7 and no validation yet -> validate;
    a hidden fact still locked and no question in the last two agent turns -> listen;
    calm enough to accept but the resolution not yet offered -> cooperate; else affirm.
    """
    if state.outcome != "open" or session.status != "open":
        return "over", None
    agent = [t for t in session.turns if t.role == "agent"]
    metas = (t.turn().meta for t in agent)
    validated = any(
        (m.signals or {}).get("validate") is True
        or any(c.get("id") == "validate" for c in (m.step or {}).get("causes", []))
        for m in metas
    )
    if state.mood >= HIGH_DISTRESS and not validated:
        return "validate", "validate"
    locked = [f for f in persona.hidden_facts if f.id not in state.unlocked]
    asked = any(listening_clauses(t.text) for t in agent[-2:])
    if locked and not asked:
        return "listen", "listen"
    rules = rules_for(persona)
    need = min(rules.offers_needed, len(persona.resolution.satisfied_by))
    met = state.cooperated and len(state.offers) >= need
    if state.mood <= rules.accept_at_or_below and not met:
        return "cooperate", "cooperate"
    return "affirm", "affirm"


def hint_for(
    session: PracticeSession, guidance: GuidanceSearch | None = None, record: bool = True
) -> Hint:
    """One tip for the current moment of a live session, backed by the best guidance
    passage for its technique when a guidance store is given. Recorded with the session
    (``SessionStore.record_hint``) unless ``record`` is False or the session is over.
    Raises :class:`HintsDisabled` in assessment mode."""
    store = session.practice.store
    if store.session_extras(session.id)["mode"] == "assessment":
        raise HintsDisabled("Hints are off in assessment sessions.")
    rec = session.record
    kind, tag = choose_hint(session.persona, rec, session.state())
    gid = title = excerpt = None
    if guidance is not None and tag is not None:
        last = next((t.text for t in reversed(rec.turns) if t.role == "customer"), "")
        try:
            found = list(guidance.search(f"{HINT_TEXT[kind]} {last}"[:1000], tag=tag, k=1))
        except Exception:  # a guidance store problem must not cost the trainee their tip
            found = []
        if found:
            gid, title, excerpt = found[0].id, found[0].title, found[0].excerpt[:600]
    hint = Hint(HINT_TEXT[kind], gid, kind, title, excerpt)
    if record and kind != "over":
        agent_turns = sum(1 for t in rec.turns if t.role == "agent")
        store.record_hint(
            session.id,
            {"kind": kind, "text": hint.text, "guidance_id": gid, "agent_turns": agent_turns},
        )
    return hint
