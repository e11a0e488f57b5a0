"""Switchable behaviours: when the director lets a persona's behaviours show, and how the
actor is told.

A persona may list behaviours (``behaviours:`` in its YAML, see :mod:`sim.persona`). They are
not written into the system prompt, where a small model would play them on every line and
overdo them. The director switches each one on for a turn when its moment comes, and the
actor gets one short sentence for it in the turn's note (:data:`NOTES`):

- **impatient**: once distress is 5 or more; the more upset, the sooner it comes back (every
  other turn from 8, every third from 6.5, every fourth below that).
- **tangential**: the older grievance comes up first at turn 2 or 3, and once more at most,
  four turns later or after.
- **vague**: the first question about the detail's topics gets a vague answer (the detail is
  guarded like a locked fact); the second gets the detail.
- **repeats**: after a scored turn that neither listened, validated nor affirmed; not two turns
  running, three times at most.
- **interrupts**: the second problem cuts in at turn 2 or 3, and once more, four turns later
  or after, only if the agent never took it up.
- **non_native**: a manner, not a move: on every reply.

At most :data:`MAX_MOVES` behaviours besides ``non_native`` show on one reply (one fewer when
the reply also releases a hidden fact), taken in this order: vague (it answers the agent's
question, so it always fits), repeats, impatient, interrupts, tangential; one left out is
still due on the next turn. A reply that answers a probe shows none of them, and one that
ends the chat none but a detail asked for the second time. Which of turn 2 or 3 comes from the persona id, so a persona
always gets the same schedule for the same conversation.

Nothing here samples or calls a model. Whether a reply showed a behaviour is read by
``sim/behaviour_evidence.py`` (for the probe check).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from string import Template

from pydantic import BaseModel, ConfigDict, Field

from common.text import stem
from sim.persona import (
    BEHAVIOUR_KINDS,
    BehaviourKind,
    HiddenFact,
    Interrupts,
    NonNative,
    Persona,
    Tangential,
    Vague,
)

MAX_MOVES = 2
"""Behaviours (besides non_native) one reply may show."""
IMPATIENT_FROM = 5.0
"""Distress from which the customer gets impatient."""
IMPATIENT_GAPS: tuple[tuple[float, int], ...] = ((8.0, 1), (6.5, 2), (IMPATIENT_FROM, 3))
"""(distress at or above, turns off between two impatient replies)."""
RECUR_AFTER = 4
"""Turns before the grievance or the second problem may come up again."""
MAX_TIMES: dict[BehaviourKind, int] = {"tangential": 2, "interrupts": 2, "repeats": 3}
VAGUE_FACT_ID = "vague-detail"
"""The id the vague detail is guarded under while it is withheld."""

# The actor's note for each behaviour. Its fixed words are removed from a
# reply that echoes them (``sim/postprocess.py`` builds its pattern from :func:`echo_patterns`).
NOTES: dict[str, str] = {
    "impatient": "In this reply, be short and impatient, and push to know when it will be sorted.",
    "tangential": "In this reply, also bring up an older grievance with them, in your words: $grievance",
    "vague": "In this reply, answer vaguely and leave out the exact detail they asked for.",
    "vague_gives": "In this reply, they have asked twice, so give the detail, in your words: $detail",
    "repeats": "In this reply, they have not acknowledged your problem, so say it again in new words: $problem",
    "interrupts": "In this reply, also cut in with a second problem, in your words: $second_problem",
    "non_native": "English is your second language$first_language, so use simple words and "
    "plain grammar, with a small slip now and then.",
}


class Cue(BaseModel):
    """One behaviour switched on for one reply, and why."""

    model_config = ConfigDict(extra="forbid")

    kind: BehaviourKind
    reason: str = Field(description="Why now, in a few words.")
    gives_detail: bool = Field(False, description="vague only: the second ask, the detail given.")


class BehaviourMemory(BaseModel):
    """What the schedule remembers between turns (kept in the director's state)."""

    model_config = ConfigDict(extra="forbid")

    last: dict[str, int] = Field(default_factory=dict, description="Kind -> turn last shown.")
    times: dict[str, int] = Field(default_factory=dict, description="Kind -> turns shown.")
    asks: int = Field(0, description="vague: questions about the detail so far.")
    told: bool = Field(False, description="vague: the detail has been given.")
    addressed: bool = Field(False, description="interrupts: the agent took up the problem.")


@dataclass(frozen=True)
class TurnView:
    """What the schedule needs to know about the agent turn just directed."""

    turn: int  # this turn's number, 1 for the first agent message
    mood: float  # distress after the turn
    agent_text: str
    acknowledged: bool  # the agent listened, validated or affirmed
    scored: bool  # the grader gave verdicts (an unscored turn acknowledges nothing, nor fails to)
    facts: int = 0  # hidden facts released on this turn
    probe: bool = False  # the message was an injection or off-topic probe
    closing: bool = False  # the customer accepts or gives up on this turn
    asks: Callable[[Sequence[str]], bool] = lambda topics: False
    """Whether the agent's message asks about any of these topics (the director's reading)."""


_STOP_TEXT = (
    "about after again also and any are been before being but can could did does doing "
    "done for from get got had has have her hers him his how its just like made make may "
    "more much need not now off one only our out over own said same say see she some "
    "still than that the their them then there these they this too very want was way "
    "were what when where which who why will with would yes yet you your yours"
)
_STOP = frozenset(_STOP_TEXT.split())


def content_words(text: str) -> set[str]:
    """Stemmed words of three letters or more that are not common filler, plus numbers
    ("logged" and "log in" share "log", "charge" and "charged" share "charg")."""
    words = re.findall(r"[a-z0-9£$€]+", text.lower().replace("\u2019", "'"))
    return {
        stem(w, undouble=True, trim_e=True)
        for w in words
        if (len(w) >= 3 and w not in _STOP) or w.isdigit()
    }


def mentions(reply: str, text: str, need: int = 2) -> bool:
    """Whether ``reply`` shares ``need`` content words with ``text`` (all, if it has fewer)."""
    want = content_words(text)
    return len(want & content_words(reply)) >= min(need, len(want))


def _seed(persona_id: str, kind: str) -> int:
    return int(hashlib.sha256(f"{persona_id}:{kind}".encode()).hexdigest()[:8], 16)


def first_turn(persona_id: str, kind: str) -> int:
    """The turn (2 or 3) a timed behaviour first comes up for this persona."""
    return 2 + _seed(persona_id, kind) % 2


def _impatience_gap(mood: float) -> int | None:
    return next((gap for level, gap in IMPATIENT_GAPS if mood >= level), None)


def schedule(
    persona: Persona, memory: BehaviourMemory, view: TurnView
) -> tuple[list[Cue], BehaviourMemory]:
    """The behaviours on for this turn's reply and the memory after it. Pure."""
    if not persona.behaviours:
        return [], memory
    mem = memory.model_copy(deep=True)
    kinds = {b.kind for b in persona.behaviours}
    moves: list[Cue] = []

    def since(kind: str) -> float:
        last = mem.last.get(kind)
        return float("inf") if last is None else view.turn - last

    vague = persona.behaviour("vague")
    if isinstance(vague, Vague) and not mem.told and not view.probe and view.asks(vague.topics):
        mem.asks += 1
        if mem.asks >= 2:
            mem.told = True
            moves.append(
                Cue(kind="vague", reason="asked again: gives the detail", gives_detail=True)
            )
        elif not view.closing:
            moves.append(Cue(kind="vague", reason="first ask: leaves the detail out"))
    second = persona.behaviour("interrupts")
    if (
        isinstance(second, Interrupts)
        and mem.times.get("interrupts")
        and mentions(view.agent_text, second.second_problem)
    ):
        mem.addressed = True

    if not (view.closing or view.probe):
        if (
            "repeats" in kinds
            and view.scored
            and not view.acknowledged
            and since("repeats") >= 2
            and mem.times.get("repeats", 0) < MAX_TIMES["repeats"]
        ):
            moves.append(Cue(kind="repeats", reason="the agent did not acknowledge the problem"))
        gap = _impatience_gap(view.mood)
        if "impatient" in kinds and gap is not None and since("impatient") > gap:
            moves.append(Cue(kind="impatient", reason=f"distress {view.mood:.1f}"))
        times = mem.times.get("interrupts", 0)
        if "interrupts" in kinds and view.turn >= first_turn(persona.id, "interrupts"):
            if times == 0:
                moves.append(Cue(kind="interrupts", reason="a second problem comes up"))
            elif times == 1 and not mem.addressed and since("interrupts") >= RECUR_AFTER:
                moves.append(Cue(kind="interrupts", reason="the second problem was not taken up"))
        times = mem.times.get("tangential", 0)
        if (
            "tangential" in kinds
            and view.turn >= first_turn(persona.id, "tangential")
            and times < MAX_TIMES["tangential"]
            and since("tangential") >= RECUR_AFTER
        ):
            moves.append(Cue(kind="tangential", reason="an older grievance comes back to mind"))

    budget = MAX_MOVES - (1 if view.facts else 0)
    cues: list[Cue] = []
    for cue in moves:
        if cue.kind == "vague" or len(cues) < budget:
            cues.append(cue)
    for cue in cues:
        mem.last[cue.kind] = view.turn
        mem.times[cue.kind] = mem.times.get(cue.kind, 0) + 1
    if "non_native" in kinds:
        cues.append(Cue(kind="non_native", reason="every reply"))
    return cues, mem


def withheld(persona: Persona, memory: BehaviourMemory) -> list[HiddenFact]:
    """The vague detail, guarded like a locked fact until it has been given."""
    vague = persona.behaviour("vague")
    if not isinstance(vague, Vague) or memory.told:
        return []
    return [detail_fact(vague)]


def detail_fact(vague: Vague) -> HiddenFact:
    """The vague detail as a hidden fact, for the guard's leak check."""
    return HiddenFact(id=VAGUE_FACT_ID, fact=vague.detail, topics=vague.topics)


def note(persona: Persona, cue: Cue) -> str:
    """The actor's sentence for one cue."""
    b = persona.behaviour(cue.kind)
    key = "vague_gives" if cue.gives_detail else cue.kind
    values = {
        "grievance": "",
        "detail": "",
        "second_problem": "",
        "first_language": "",
        "problem": persona.scenario.problem,
    }
    if isinstance(b, Tangential):
        values["grievance"] = b.grievance
    elif isinstance(b, Vague):
        values["detail"] = b.detail
    elif isinstance(b, Interrupts):
        values["second_problem"] = b.second_problem
    elif isinstance(b, NonNative) and b.first_language:
        values["first_language"] = f" (your first is {b.first_language})"
    return Template(NOTES[key]).substitute(values)


def notes(persona: Persona, cues: Sequence[Cue]) -> list[str]:
    return [note(persona, c) for c in cues]


def echo_patterns() -> list[str]:
    """A regex for the fixed words of every note, for the reply cleaner to remove an echo: a
    persona's words inside a note are matched loosely, the words a note ends with (the
    grievance, the second problem: what the customer is meant to say) are kept."""
    out = []
    for text in NOTES.values():
        pieces = re.split(r"\$\w+", text)
        if len(pieces) > 1 and not pieces[-1].strip(" ."):
            pieces = pieces[:-1]
        last = pieces[-1].strip().rstrip(".:")
        pieces = [*pieces[:-1], last]
        out.append(r"[^.\n]{0,80}?".join(re.escape(p) for p in pieces))
    return out


__all__ = [
    "BEHAVIOUR_KINDS",
    "MAX_MOVES",
    "NOTES",
    "BehaviourMemory",
    "Cue",
    "TurnView",
    "content_words",
    "detail_fact",
    "echo_patterns",
    "first_turn",
    "mentions",
    "note",
    "notes",
    "schedule",
    "withheld",
]
