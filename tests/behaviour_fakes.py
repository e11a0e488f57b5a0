"""A reply for :class:`providers.fake.ScriptedChatModel` that follows the director's behaviour
notes: with one of a persona's notes in the agent's message it says what the note asks for,
else a plain line (a different one each customer turn, so nothing repeats).

    fake.enqueue([NoteFollower(persona)] * 40)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage

from sim.behaviours import Cue, note
from sim.persona import Interrupts, Persona, Tangential, Vague

PLAIN = (
    "I just want this sorted.",
    "Okay, go on then.",
    "Right, and then what?",
    "Fine, I'm listening.",
    "I see, carry on.",
    "Alright, if you say so.",
    "Hmm, okay.",
    "Go on.",
)
IMPATIENT = "How long is this going to take? I need it today."
VAGUE = "Sorry, I'm not sure, it's on the screen somewhere."
_PRONOUNS = {"his": "my", "her": "my", "he": "I", "she": "I", "him": "me", "has": "have"}


def first_person(text: str) -> str:
    """The persona's third-person problem in the customer's own words, crudely."""

    def swap(m: re.Match[str]) -> str:
        word = _PRONOUNS[m.group(1).lower()]
        return word[0].upper() + word[1:] if m.group(1)[0].isupper() else word

    return re.sub(r"\b(his|her|he|she|him|has)\b", swap, text, flags=re.I)


class NoteFollower:
    """Say what the behaviour note in the last agent message asks for."""

    def __init__(self, persona: Persona) -> None:
        self.persona = persona

    def __call__(self, messages: Sequence[BaseMessage]) -> str:
        last = str(messages[-1].content)
        p = self.persona
        said = []
        for b in p.behaviours:
            if note(p, Cue(kind=b.kind, reason="")) in last:
                if b.kind == "impatient":
                    said.append(IMPATIENT)
                elif isinstance(b, Tangential):
                    said.append(b.grievance)
                elif isinstance(b, Interrupts):
                    said.append(b.second_problem)
                elif isinstance(b, Vague):
                    said.append(VAGUE)
                elif b.kind == "repeats":
                    said.append("I'll say it again. " + first_person(p.scenario.problem))
            elif (
                isinstance(b, Vague)
                and note(p, Cue(kind="vague", reason="", gives_detail=True)) in last
            ):
                said.append(b.detail)
        if said:
            return " ".join(said)
        turns = sum(isinstance(m, AIMessage) for m in messages)
        return PLAIN[turns % len(PLAIN)]
